"""GET /api/automation/events: a user's live events as Server-Sent Events.

Fed by the userstore's WatchEvents stream; a ``: ping`` comment every heartbeat keeps proxies
from closing an idle connection. aiohttp does not cancel a handler whose client went away, so the
loop looks at the connection at least every DISCONNECT_CHECK_SECONDS and cancels the gRPC stream
as soon as the client is gone (the userstore then drops its subscription).

The 200 goes out only once the userstore holds the subscription (it sends its headers right after
subscribing), so a client that acts the moment the stream opens still sees that action's event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import grpc
from aiohttp import web
from torbox.automation.v1 import userstore_service_pb2 as pb

from common.errors import AutomationError
from gateway.api import Route
from gateway.handlers import Handlers
from gateway.jsonview import to_json
from gateway.middleware import failure_response

DISCONNECT_CHECK_SECONDS = 0.5
# TBM's frontend stops reconnecting its event stream for good on a 503 (its backend sends one
# only when disabled); a shard down for a moment must leave it retrying, with its backoff.
BACKEND_DOWN_STATUS = 502
# An older userstore sends its headers with its first event: answer anyway after this long.
SUBSCRIBED_WAIT_SECONDS = 5.0


def _frame(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def frame_for(item: pb.WatchEventsResponse) -> bytes:
    """One SSE frame for a WatchEvents item."""
    if item.WhichOneof("kind") == "changed":
        return _frame({"event": "changed", **to_json(item.changed)})
    event = to_json(item.event)
    return _frame({"event": event.pop("type"), **event})


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _subscribed(call: grpc.aio.Call) -> None:
    """Wait for the userstore's headers: they mean the subscription exists.

    A call that ended instead (the userstore unreachable, the user removed) raises its error, so
    the client gets the JSON error a request would, not a 200 that breaks at once.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(call.initial_metadata(), SUBSCRIBED_WAIT_SECONDS)
    if call.done():
        code = await call.code()
        if code != grpc.StatusCode.OK:
            raise grpc.aio.AioRpcError(
                code,
                await call.initial_metadata(),
                await call.trailing_metadata(),
                await call.details(),
            )


async def events(handlers: Handlers, request: web.Request) -> web.StreamResponse:
    """Stream a user's events until they disconnect or the gateway shuts down.

    Errors before the stream are the contract's JSON errors, but a backend that is down for now
    answers 502, never 503 (see BACKEND_DOWN_STATUS).
    """
    try:
        return await _stream(handlers, request)
    except (AutomationError, grpc.aio.AioRpcError) as error:
        response = failure_response(request, error)
        if response.status == 503:
            response.set_status(BACKEND_DOWN_STATUS)
        return response


async def _stream(handlers: Handlers, request: web.Request) -> web.StreamResponse:
    caller = await handlers.caller(request)
    stub = handlers.b.userstore(caller.auth_id)
    # Fail before answering 200 when the user is unknown (a plain 404 beats a broken stream).
    await stub.GetUser(pb.GetUserRequest(auth_id=caller.auth_id), **handlers.b.opts())
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",
        }
    )
    task = asyncio.current_task()
    if task is not None:
        handlers.streams.add(task)
    call = stub.WatchEvents(
        pb.WatchEventsRequest(auth_id=caller.auth_id), metadata=handlers.b.opts()["metadata"]
    )
    try:
        # Nothing is answered before this: a failure is a JSON error, a shutdown no 200.
        await _subscribed(call)
        await response.prepare(request)
        await _relay(call, request, response, handlers.settings.sse_heartbeat_seconds)
    finally:
        call.cancel()
        if task is not None:
            handlers.streams.discard(task)
    return response


async def _relay(
    call: grpc.aio.UnaryStreamCall[pb.WatchEventsRequest, pb.WatchEventsResponse],
    request: web.Request,
    response: web.StreamResponse,
    heartbeat: float,
) -> None:
    """Write the watch's items and a ping every heartbeat until the client or the watch ends."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[pb.WatchEventsResponse] | None = None
    try:
        await response.write(b": connected\n\n")
        reader = call.__aiter__()
        next_ping = loop.time() + heartbeat
        while not _client_gone(request):
            if pending is None:
                pending = asyncio.ensure_future(reader.__anext__())
            wait = min(DISCONNECT_CHECK_SECONDS, max(0.0, next_ping - loop.time()))
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if done:
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    break
                pending = None
                await response.write(frame_for(item))
            if loop.time() >= next_ping:
                await response.write(b": ping\n\n")
                next_ping = loop.time() + heartbeat
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client left, or the gateway is shutting down
    except Exception:
        # The userstore ended the stream (restart, user removed): say so, so the client reconnects.
        with contextlib.suppress(Exception):
            await response.write(_frame({"event": "error", "message": "event stream interrupted"}))
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/automation/events",
        events,
        "Server-Sent Events: heartbeats, `changed` after a poll, synthetic events, "
        "`protection_changed`",
        errors=(401, 403, 404, 502),
        stream=True,
    ),
)
