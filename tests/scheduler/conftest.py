"""Fixtures: the simulated TorBox in-process over real HTTP (every request it answers observed),
a real TorBoxClient, and for whole-poll tests a userstore process with the scheduler in this loop.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import scheduler_service_pb2_grpc as spb_grpc
from torbox.automation.v1 import userstore_service_pb2 as upb
from torbox.automation.v1 import userstore_service_pb2_grpc as upb_grpc

from common import grpc_client
from common.auth import auth_id_for
from scheduler_svc.app import SchedulerApp
from scheduler_svc.config import SchedulerSettings
from scheduler_svc.torbox.client import ClientConfig, TorBoxClient
from simulator.app import create_app
from simulator.config import SimConfig
from tests.e2e.stack import Stack, eventually

API_PREFIX = "/v1/api/"


@dataclass(frozen=True, slots=True)
class Hit:
    """One TorBox request the simulator answered, timed on the wall clock."""

    key: str | None
    endpoint: str
    query: dict[str, str]
    started: float
    ended: float
    status: int


@dataclass
class SimServer:
    """The simulator behind a real HTTP server, its admin API, and what it was asked."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    # Requests received (answered or not yet), per (key, endpoint).
    received: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    in_flight: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    max_in_flight: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    http: aiohttp.ClientSession | None = None

    def middleware(self) -> Any:
        """An aiohttp middleware recording every /v1/api request (it observes, never answers)."""

        @web.middleware
        async def observe(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if not request.path.startswith(API_PREFIX):
                return await handler(request)
            header = request.headers.get("Authorization", "")
            key = header.removeprefix("Bearer ").strip() or None
            pair = (key, request.path.removeprefix(API_PREFIX))
            started = time.time()
            self.received[pair] += 1
            self.in_flight[pair] += 1
            self.max_in_flight[pair] = max(self.max_in_flight[pair], self.in_flight[pair])
            status = 0
            try:
                response = await handler(request)
                status = response.status
                return response
            finally:
                self.in_flight[pair] -= 1
                self.hits.append(
                    Hit(key, pair[1], dict(request.query), started, time.time(), status)
                )

        return observe

    def of(self, key: str, endpoint: str | None = None) -> list[Hit]:
        """The answered requests of one key (optionally one endpoint), in the order they ended."""
        return [
            h for h in self.hits if h.key == key and (endpoint is None or h.endpoint == endpoint)
        ]

    def polls(self, key: str) -> list[Hit]:
        """First-page mylist requests of a key: one per poll."""
        return [h for h in self.of(key, "torrents/mylist") if h.query.get("offset", "0") == "0"]

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the /_sim admin API (expects success)."""
        assert self.http is not None
        async with self.http.request(method, self.url + path, json=body) as response:
            text = await response.text()
            assert response.status < 300, (response.status, text)
            return json.loads(text)

    async def account(self, **spec: Any) -> dict[str, Any]:
        """A new simulated account."""
        result: dict[str, Any] = await self.admin("POST", "/_sim/accounts", spec)
        return result

    async def fault(self, key: str, kind: str, **extra: Any) -> None:
        """Schedule a fault for the key's next requests."""
        await self.admin("POST", "/_sim/faults", {"api_key": key, "kind": kind, **extra})

    async def clear_faults(self, key: str) -> None:
        """Drop the key's pending faults."""
        await self.admin("DELETE", f"/_sim/faults/{key}")

    async def state(self, key: str) -> dict[str, Any]:
        """The account as the simulator sees it, with its control log and pending faults."""
        result: dict[str, Any] = await self.admin("GET", f"/_sim/accounts/{key}")
        return result


@pytest.fixture
async def sim(aiohttp_server: AiohttpServer) -> AsyncIterator[SimServer]:
    """A simulator with frozen torrent life and short fault hangs, observed request by request."""
    holder = SimServer()
    app = create_app(SimConfig(time_scale=0.0, max_hang_seconds=4.0))
    app.middlewares.append(holder.middleware())
    server: TestServer = await aiohttp_server(app)
    holder.url = str(server.make_url("")).rstrip("/")
    holder.http = aiohttp.ClientSession()
    try:
        yield holder
    finally:
        await holder.http.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The one aiohttp session a TorBoxClient uses."""
    async with aiohttp.ClientSession() as session:
        yield session


ClientFactory = Callable[..., TorBoxClient]


@pytest.fixture
def make_client(sim: SimServer, http: aiohttp.ClientSession) -> ClientFactory:
    """A TorBoxClient against the simulator, with short timeouts and back-offs by default."""

    def build(**overrides: Any) -> TorBoxClient:
        settings: dict[str, Any] = {
            "base_url": sim.url,
            "timeout_seconds": 1.0,
            "retry_backoff_seconds": 0.05,
            **overrides,
        }
        return TorBoxClient(http, ClientConfig(**settings))

    return build


# Whole polls: a userstore process, the scheduler in this event loop ---------------------------


@dataclass
class Scheduler:
    """A scheduler running in the test's event loop, and gRPC stubs to it and its userstore."""

    app: SchedulerApp
    stub: Any
    userstore: Any
    channels: list[grpc.aio.Channel]

    @property
    def poller(self) -> Any:
        assert self.app.poller is not None
        return self.app.poller

    async def ensure(self, key: str) -> spb.EnsureUserResponse:
        """ensure-db for a key."""
        response: spb.EnsureUserResponse = await self.stub.EnsureUser(
            spb.EnsureUserRequest(api_key=key), timeout=30
        )
        return response

    async def status(self) -> spb.GetStatusResponse:
        """The scheduler's figures."""
        response: spb.GetStatusResponse = await self.stub.GetStatus(
            spb.GetStatusRequest(), timeout=10
        )
        return response

    async def applied(self) -> int:
        """Snapshots the userstore applied so far."""
        stats = await self.userstore.GetStats(upb.GetStatsRequest(), timeout=10)
        return int(stats.snapshots_applied)

    async def user(self, key: str) -> upb.User:
        """The user's registry row."""
        response = await self.userstore.GetUser(
            upb.GetUserRequest(auth_id=auth_id_for(key)), timeout=10
        )
        user: upb.User = response.user
        return user

    async def torrents(self, key: str, *, include_removed: bool = True) -> upb.ListTorrentsResponse:
        """What the userstore knows of the user's torrents."""
        response: upb.ListTorrentsResponse = await self.userstore.ListTorrents(
            upb.ListTorrentsRequest(auth_id=auth_id_for(key), include_removed=include_removed),
            timeout=10,
        )
        return response

    async def save_rules(self, key: str, rules: list[dict[str, Any]]) -> None:
        """Replace the user's rules."""
        await self.userstore.SaveRules(
            upb.SaveRulesRequest(auth_id=auth_id_for(key), rules_json=json.dumps(rules)),
            timeout=10,
        )

    async def polled_after(self, key: str, when: float) -> bool:
        """Whether a snapshot observed after `when` was applied for the user."""
        observed = (await self.torrents(key)).observed_at
        return observed > when


SchedulerFactory = Callable[..., Awaitable[Scheduler]]


@pytest.fixture
async def userstore(tmp_path: Path) -> AsyncIterator[Stack]:
    """One userstore process (through the e2e Stack, which knows how to configure it)."""
    stack = Stack(tmp_path)
    await stack.start_userstore(0)
    try:
        yield stack
    finally:
        await stack.stop()


@pytest.fixture
async def make_scheduler(sim: SimServer, userstore: Stack) -> AsyncIterator[SchedulerFactory]:
    """Start the scheduler in-process against the simulator and the userstore process."""
    started: list[Scheduler] = []

    async def build(**env: str) -> Scheduler:
        settings = SchedulerSettings.from_env(
            {
                "SCHEDULER_PORT": "0",
                "USERSTORE_ADDRS": ",".join(userstore.userstore_addrs),
                "TORBOX_API_BASE": sim.url,
                "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "POLL_INTERVAL_SECONDS": "1",
                "IDLE_POLL_INTERVAL_SECONDS": "1",
                "MIN_POLL_INTERVAL_SECONDS": "0.5",
                "REGISTRY_SYNC_SECONDS": "0.3",
                "BREAKER_PROBE_SECONDS": "1",
                "TORBOX_TIMEOUT_SECONDS": "1",
                "SHUTDOWN_GRACE_SECONDS": "1",
                "LOG_FORMAT": "text",
                **env,
            }
        )
        app = SchedulerApp(settings)
        port = await app.start()
        own = grpc_client.channel(f"127.0.0.1:{port}")
        shard = grpc_client.channel(userstore.userstore_addrs[0])
        scheduler = Scheduler(
            app,
            spb_grpc.SchedulerServiceStub(own),
            upb_grpc.UserstoreServiceStub(shard),
            [own, shard],
        )
        started.append(scheduler)
        for stream in app.streams:
            assert await stream.wait_connected(20), "the ingest stream did not connect"
        return scheduler

    try:
        yield build
    finally:
        for scheduler in started:
            await scheduler.app.stop()
            for channel in scheduler.channels:
                await channel.close()


async def first_poll(scheduler: Scheduler, key: str, *, timeout: float = 30.0) -> None:
    """Wait until a snapshot of the user was applied."""

    async def polled() -> bool:
        try:
            return (await scheduler.torrents(key)).HasField("observed_at")
        except grpc.aio.AioRpcError:
            return False

    await eventually(polled, timeout=timeout, what="the user's first applied poll")


REANNOUNCE_ALL = {
    "name": "Reannounce everything seeding",
    "enabled": True,
    "assetTypes": ["torrent"],
    "trigger": {"type": "interval", "value": 0},
    "logicOperator": "and",
    "groups": [
        {"logicOperator": "and", "conditions": [{"type": "RATIO", "operator": "gte", "value": 0}]}
    ],
    "action": {"type": "reannounce"},
}
