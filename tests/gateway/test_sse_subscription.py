"""The event stream answers 200 only once the userstore holds its subscription.

A client acts the moment its stream opens (TBM protects a download, then waits for
`protection_changed`): were the 200 sent before the userstore subscribed, that event could be
published to nobody. The real gateway runs against a shard that subscribes only when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common.processes import ManagedProcess
from tests.e2e.stack import FAST_POLLING
from tests.gateway.support import GENEROUS_LIMITS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
KEY = "0f0e0d0c-0b0a-4908-8706-050403020100"


def _open(http: aiohttp.ClientSession, base: str) -> Any:
    return http.get(
        f"{base}/api/automation/events",
        headers={"x-api-key": KEY},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
    )


class _LateShard(pb_grpc.UserstoreServiceServicer):
    """Knows every user; subscribes a WatchEvents call only once `release` is set, then sends
    its headers (as the userstore does right after subscribing) and one event. Its rules are
    never available."""

    def __init__(self, refuse: grpc.StatusCode | None = None, refuse_users: bool = False) -> None:
        self.called = asyncio.Event()
        self.release = asyncio.Event()
        self.subscribed = False
        self.refuse = refuse
        self.refuse_users = refuse_users

    async def GetUser(
        self, request: pb.GetUserRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.GetUserResponse:
        if self.refuse_users:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the shard is starting")
        return pb.GetUserResponse(user=pb.User(auth_id=request.auth_id))

    async def ListRules(
        self, request: pb.ListRulesRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ListRulesResponse:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the shard is starting")
        raise AssertionError("abort returned")

    async def WatchEvents(
        self, request: pb.WatchEventsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.WatchEventsResponse]:
        self.called.set()
        await self.release.wait()
        if self.refuse is not None:
            await context.abort(self.refuse, "the shard is draining")
        self.subscribed = True
        await context.send_initial_metadata(())
        yield pb.WatchEventsResponse(
            event=pb.Event(id=1, type="protection_changed", observed_at=1_800_000_000.0)
        )
        await asyncio.Event().wait()  # open until the gateway cancels


@contextlib.asynccontextmanager
async def _gateway(shard: _LateShard) -> AsyncIterator[tuple[str, ManagedProcess]]:
    server = grpc.aio.server()
    pb_grpc.add_UserstoreServiceServicer_to_server(shard, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway = ManagedProcess(
        "gateway-late-shard",
        "gateway",
        {
            **FAST_POLLING,
            **GENEROUS_LIMITS,
            "PORT": "0",
            "USERSTORE_ADDRS": f"127.0.0.1:{port}",
            "SCHEDULER_ADDR": "127.0.0.1:1",
        },
    )
    try:
        yield f"http://127.0.0.1:{await gateway.start()}", gateway
    finally:
        await gateway.stop()
        await server.stop(None)


async def test_the_stream_answers_only_once_subscribed() -> None:
    """No 200 while the shard has not subscribed; after it has, the 200 and then its event."""
    shard = _LateShard()  # type: ignore[abstract]  # only GetUser and WatchEvents are served
    async with _gateway(shard) as (base, _), aiohttp.ClientSession() as http:
        opening = asyncio.create_task(_open(http, base))
        await asyncio.wait_for(shard.called.wait(), 20)
        # The gateway is now waiting for the subscription; nothing may have answered yet.
        done, _ = await asyncio.wait({opening}, timeout=1.0)
        assert not done, "the stream answered before the userstore subscribed"
        shard.release.set()
        response = await opening
        try:
            assert response.status == 200
            assert shard.subscribed
            assert await response.content.readline() == b": connected\n"
            assert await response.content.readline() == b"\n"
            data = await response.content.readline()
            assert json.loads(data.decode()[len("data: ") :])["event"] == "protection_changed"
        finally:
            response.close()


async def test_a_watch_that_fails_before_subscribing_is_an_error_not_a_stream() -> None:
    """The shard ends the watch with UNAVAILABLE before its headers: a JSON 502 (TBM's frontend
    retries it; a 503 would stop its stream for good), no 200."""
    shard = _LateShard(refuse=grpc.StatusCode.UNAVAILABLE)  # type: ignore[abstract]
    shard.release.set()
    async with (
        _gateway(shard) as (base, _),
        aiohttp.ClientSession() as http,
        _open(http, base) as response,
    ):
        assert response.status == 502
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
        assert body["success"] is False
        assert shard.called.is_set()


async def test_a_shard_down_for_now_is_502_on_the_event_stream_only() -> None:
    """The user's shard refuses with UNAVAILABLE: the event stream answers 502 (retried by TBM's
    frontend), while any other route keeps the contract's 503."""
    shard = _LateShard(refuse_users=True)  # type: ignore[abstract]
    async with _gateway(shard) as (base, _), aiohttp.ClientSession() as http:
        async with _open(http, base) as response:
            assert response.status == 502
            body = await response.json()
            assert (body["success"], body["code"]) == (False, "UNAVAILABLE")
        async with http.get(f"{base}/api/automation/rules", headers={"x-api-key": KEY}) as other:
            assert other.status == 503
        assert not shard.called.is_set()


async def test_a_gateway_stopping_before_the_subscription_answers_no_200() -> None:
    """SIGTERM while the gateway waits for the subscription: the client never sees a 200 (a
    client that did would believe itself connected); the gateway exits 0."""
    shard = _LateShard()  # type: ignore[abstract]  # never subscribes
    async with _gateway(shard) as (base, gateway), aiohttp.ClientSession() as http:
        opening = asyncio.create_task(_open(http, base))
        await asyncio.wait_for(shard.called.wait(), 20)
        assert await gateway.stop() == 0
        try:
            response = await opening
        except aiohttp.ClientError:
            return  # the connection closed without an answer
        async with response:
            assert response.status != 200
