"""GET /api/automation/events: Server-Sent Events from the userstore's stream, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import aiohttp
import grpc
import pytest
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common.auth import auth_id_for
from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import SECURITY_HEADERS, GatewayStack, User, assert_error

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
STACK_ENV = {"SSE_HEARTBEAT_SECONDS": "0.5"}


class Stream:
    """An open event stream: every line read in the background, waited on by predicate."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.lines: list[str] = []
        self.ended = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while line := await self.response.content.readline():
                self.lines.append(line.decode().rstrip("\n"))
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()

    def events(self) -> list[dict[str, Any]]:
        """The data frames received so far, decoded."""
        return [
            json.loads(line[len("data: ") :]) for line in self.lines if line.startswith("data: ")
        ]

    async def wait(self, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        """Wait until `check()` is truthy (the stream keeps reading meanwhile)."""

        async def probe() -> Any:
            return check()

        return await eventually(probe, timeout=timeout, interval=0.1, what=what)

    async def close(self) -> None:
        """Disconnect, as a browser tab closing would."""
        self.response.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def open_stream(
    stack: GatewayStack, key: str, base: str | None = None
) -> AsyncIterator[Stream]:
    """Connect to the events endpoint of a gateway (the stack's by default)."""
    assert stack.http is not None
    response = await stack.http.get(
        f"{base or stack.gw_url}/api/automation/events",
        headers={"x-api-key": key},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
    )
    assert response.status == 200, await response.text()
    stream = Stream(response)
    try:
        yield stream
    finally:
        await stream.close()


async def open_streams(stack: GatewayStack, base: str) -> int:
    """How many event streams the gateway at `base` is serving."""
    _, body, _ = await stack.call(base, "GET", "/api/backend/status")
    count: int = body["gateway"]["sse_streams"]
    return count


async def streams_back_to(stack: GatewayStack, base: str, count: int) -> None:
    """Wait until the gateway at `base` serves `count` streams again."""

    async def back() -> bool:
        return await open_streams(stack, base) == count

    await eventually(back, timeout=15, what=f"the gateway to serve {count} streams")


async def first_poll(user: User) -> None:
    """Wait until the user's torrents have been polled once."""

    async def polled() -> bool:
        body = await user.ok("GET", "/api/automation/torrents")
        return len(body["torrents"]) == len(user.torrent_ids)

    await eventually(polled, timeout=30, what="the first poll")


async def test_stream_opens_with_connected_then_heartbeats(user: User) -> None:
    """The stream answers text/event-stream, says ": connected", then ": ping" every heartbeat."""
    async with open_stream(user.stack, user.key) as stream:
        headers = stream.response.headers
        assert headers["Content-Type"].startswith("text/event-stream")
        assert headers["Cache-Control"].startswith("no-cache")
        assert len(headers["X-Request-Id"]) > 0
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value
        await stream.wait(lambda: stream.lines, "the first line")
        assert stream.lines[0] == ": connected"
        await stream.wait(lambda: stream.lines.count(": ping") >= 3, "three heartbeats")


async def test_changed_and_synthetic_events_after_a_poll(user: User) -> None:
    """A poll that sees a new torrent sends `changed` and TORRENT_ADDED to every open stream."""
    await first_poll(user)
    async with open_stream(user.stack, user.key) as one, open_stream(user.stack, user.key) as two:
        await one.wait(lambda: one.lines and two.lines, "both streams to connect")
        added = await user.stack.sim(
            "POST", f"/_sim/accounts/{user.key}/torrents", json={"profile": "downloading"}
        )
        new_id = added["torrent_id"]

        def seen(stream: Stream) -> dict[str, Any] | None:
            kinds = {
                e["event"]: e for e in stream.events() if e.get("torrent_id", new_id) == new_id
            }
            return kinds if {"changed", "TORRENT_ADDED"} <= set(kinds) else None

        for stream in (one, two):
            kinds = await stream.wait(partial(seen, stream), "changed and TORRENT_ADDED")
            changed = kinds["changed"]
            assert changed["changed_torrents"] >= 1
            assert changed["observed_at"].endswith("Z")
            event = kinds["TORRENT_ADDED"]
            assert event["torrent_id"] == new_id
            assert isinstance(event["id"], int)
            assert event["observed_at"].endswith("Z")
            assert isinstance(event["data"], dict)


async def test_disconnecting_frees_the_stream(make_user: MakeUser) -> None:
    """Closing the connection ends the gateway's stream and its userstore subscription."""
    person = await make_user()
    stack = person.stack
    base = await stack.start_gateway("gateway-sse-free", SSE_HEARTBEAT_SECONDS="30")
    await first_poll(person)
    assert await open_streams(stack, base) == 0
    async with open_stream(stack, person.key, base) as stream:
        await stream.wait(lambda: stream.lines, "the stream to connect")
        assert await open_streams(stack, base) == 1
    # A 30 s heartbeat: freeing cannot wait for a failed write, it must notice the disconnect.
    await streams_back_to(stack, base, 0)
    # Events published after the disconnect meet no subscriber: nothing to drop, nothing fails.
    await stack.sim("POST", f"/_sim/accounts/{person.key}/torrents", json={"profile": "seeding"})

    async def new_torrent_seen() -> bool:
        body = await person.ok("GET", "/api/automation/torrents")
        return len(body["torrents"]) == len(person.torrent_ids) + 1

    await eventually(new_torrent_seen, timeout=30, what="the added torrent")
    userstore = stack.userstores[0].output()
    assert "too slow" not in userstore
    assert '"severity": "ERROR"' not in userstore


async def test_many_connects_and_disconnects_leave_nothing_open(user: User) -> None:
    """Twenty streams opened and dropped leave the gateway serving none of them."""
    base = await user.stack.start_gateway("gateway-sse-churn")
    for _ in range(20):
        async with open_stream(user.stack, user.key, base) as stream:
            await stream.wait(partial(bool, stream.lines), "the stream to connect")
    await streams_back_to(user.stack, base, 0)


async def test_stream_errors_are_json_before_streaming(make_user: MakeUser) -> None:
    """No key is 401, an unregistered key 404 and a bad key 400, as JSON errors, not streams."""
    stranger = await make_user(register=False)
    stack = stranger.stack
    assert_error(await stack.gw("GET", "/api/automation/events"), 401)
    assert_error(
        await stranger.call("GET", "/api/automation/events"), 404, code="USER_NOT_REGISTERED"
    )
    bad = await stack.gw("GET", "/api/automation/events", headers={"x-api-key": "bad key"})
    assert_error(bad, 400, field="apiKey")


async def test_gateway_shutdown_ends_open_streams(user: User) -> None:
    """SIGTERM with a stream open: the client's stream ends and the gateway exits 0."""
    stack = user.stack
    base = await stack.start_gateway("gateway-sse", SSE_HEARTBEAT_SECONDS="30")
    process = stack.extra[-1]
    async with open_stream(stack, user.key, base) as stream:
        await stream.wait(lambda: stream.lines, "the stream to connect")
        assert await process.stop(timeout=15) == 0, process.output()[-2000:]
        await asyncio.wait_for(stream.ended.wait(), 10)


async def test_the_userstore_answers_a_watch_once_subscribed(make_user: MakeUser) -> None:
    """WatchEvents sends its headers as soon as the subscription exists, before any event (the
    gateway waits for them before its 200); the gateway's stream is subscribed when it answers."""
    person = await make_user(mix={})  # no torrents: its polls publish nothing
    stack = person.stack
    channel = grpc.aio.insecure_channel(stack.userstore_addrs[0])
    stub = pb_grpc.UserstoreServiceStub(channel)

    async def watched() -> int:
        stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
        return int(stats.watch_streams)

    async def none_watched() -> bool:
        return await watched() == 0

    try:
        await eventually(none_watched, timeout=15, what="no stream on the userstore")
        call = stub.WatchEvents(pb.WatchEventsRequest(auth_id=auth_id_for(person.key)))
        await asyncio.wait_for(call.initial_metadata(), 10)
        assert await watched() == 1
        assert not call.done()
        call.cancel()
        await eventually(none_watched, timeout=15, what="the watch to end")
        async with open_stream(stack, person.key):
            assert await watched() == 1
    finally:
        await channel.close()
