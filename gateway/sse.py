"""GET /api/automation/events: a user's live events as Server-Sent Events.

Fed by the userstore's WatchEvents stream; a ``: ping`` comment every heartbeat keeps proxies
from closing an idle connection. A client that disconnects cancels its gRPC stream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web
from torbox.automation.v1 import userstore_service_pb2 as pb

from gateway.handlers import Handlers
from gateway.jsonview import to_json

# The tasks serving open streams, so shutdown can end them instead of waiting for clients.
STREAMS: web.AppKey[set[asyncio.Task[object]]] = web.AppKey("sse_streams")


def _frame(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def frame_for(item: pb.WatchEventsResponse) -> bytes:
    """One SSE frame for a WatchEvents item."""
    if item.WhichOneof("kind") == "changed":
        return _frame({"event": "changed", **to_json(item.changed)})
    event = to_json(item.event)
    return _frame({"event": event.pop("type"), **event})


async def events(handlers: Handlers, request: web.Request) -> web.StreamResponse:
    """Stream a user's events until they disconnect or the gateway shuts down."""
    caller = await handlers.caller(request)
    stub = handlers.b.userstore(caller.auth_id)
    # Fail before answering 200 when the user is unknown (a plain 404 beats a broken stream).
    await stub.GetUser(pb.GetUserRequest(auth_id=caller.auth_id), **handlers.b.opts())
    call = stub.WatchEvents(
        pb.WatchEventsRequest(auth_id=caller.auth_id), metadata=handlers.b.opts()["metadata"]
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    task = asyncio.current_task()
    if task is not None:
        request.app[STREAMS].add(task)
    heartbeat = handlers.settings.sse_heartbeat_seconds
    reader = call.__aiter__()
    try:
        await response.write(b": connected\n\n")
        pending: asyncio.Task[pb.WatchEventsResponse] | None = None
        while True:
            if pending is None:
                pending = asyncio.ensure_future(reader.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                await response.write(b": ping\n\n")
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                break
            pending = None
            await response.write(frame_for(item))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except Exception:
        with contextlib.suppress(Exception):
            await response.write(_frame({"event": "error", "message": "event stream interrupted"}))
    finally:
        call.cancel()
        if task is not None:
            request.app[STREAMS].discard(task)
    return response
