"""Fixtures: an in-process simulator over real HTTP, frozen in time, and a small typed client."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy
from pytest_aiohttp import AiohttpClient

from simulator.app import create_app
from simulator.config import SimConfig

API = "/v1/api"


class Reply:
    """One HTTP answer: status, headers, raw body, and the body parsed as JSON when it is JSON."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Sim:
    """A thin typed helper over the aiohttp test client for the TorBox and admin routes."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        async with self.client.request(
            method, path, params=params, json=json_body, data=data, headers=sent
        ) as response:
            body = await response.read()
            return Reply(response.status, response.headers, body)

    async def account(self, **body: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/_sim/accounts", json_body=body)
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json
        return result

    async def add(self, key: str, **spec: Any) -> dict[str, Any]:
        reply = await self.call("POST", f"/_sim/accounts/{key}/torrents", json_body=spec)
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json
        return result

    async def state(self, key: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/_sim/accounts/{key}")
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json
        return result

    async def advance(self, seconds: float) -> None:
        reply = await self.call("POST", "/_sim/clock/advance", json_body={"seconds": seconds})
        assert reply.status == 200, reply.body

    async def fault(self, key: str, kind: str, **extra: Any) -> dict[str, Any]:
        body = {"api_key": key, "kind": kind, **extra}
        reply = await self.call("POST", "/_sim/faults", json_body=body)
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json
        return result

    async def patch(self, key: str, torrent_id: int, **body: Any) -> Reply:
        return await self.call(
            "PATCH", f"/_sim/accounts/{key}/torrents/{torrent_id}", json_body=body
        )

    async def mylist(self, key: str, **params: str) -> Reply:
        return await self.call("GET", f"{API}/torrents/mylist", key=key, params=params)

    async def fresh(self, key: str, **params: str) -> Reply:
        return await self.mylist(key, bypass_cache="true", **params)

    async def torrent(self, key: str, torrent_id: int) -> dict[str, Any]:
        reply = await self.fresh(key, id=str(torrent_id))
        assert reply.status == 200, reply.body
        data: dict[str, Any] = reply.json["data"]
        return data

    async def control(self, key: str, **body: Any) -> Reply:
        return await self.call("POST", f"{API}/torrents/controltorrent", key=key, json_body=body)


SimFactory = Callable[..., Awaitable[Sim]]


@pytest.fixture
def make_sim(aiohttp_client: AiohttpClient) -> SimFactory:
    """Build a simulator with config overrides; time is frozen (scale 0) unless asked otherwise."""

    async def build(**overrides: Any) -> Sim:
        settings: dict[str, Any] = {"time_scale": 0.0, **overrides}
        client = await aiohttp_client(create_app(SimConfig(**settings)))
        return Sim(client)

    return build


@pytest.fixture
async def sim(make_sim: SimFactory) -> Sim:
    """A simulator with default settings and frozen time."""
    return await make_sim()
