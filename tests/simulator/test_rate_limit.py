"""The per-key, per-endpoint rate limit and its 429 answer."""

from __future__ import annotations

import time

from simulator.ratelimit import RateLimiter
from tests.simulator.conftest import API, SimFactory


async def test_429_after_the_limit_with_headers(make_sim: SimFactory) -> None:
    """Past the limit, mylist answers 429 with a bare detail body and retry/limit headers."""
    sim = await make_sim(rate_limit_per_minute=3)
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    remaining = []
    for _ in range(3):
        reply = await sim.fresh(key)
        assert reply.status == 200
        assert reply.headers["x-ratelimit-limit"] == "3"
        remaining.append(int(reply.headers["x-ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    refused = await sim.fresh(key)
    assert refused.status == 429
    assert refused.json == {"detail": "3 per 1 minute"}
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    reset = float(refused.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 61


async def test_limits_are_per_endpoint_and_per_key(make_sim: SimFactory) -> None:
    """Exhausting mylist for one key leaves its other endpoints and other keys alone."""
    sim = await make_sim(rate_limit_per_minute=2)
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    other = (await sim.account(mix={"seeding": 1}))["api_key"]
    for _ in range(2):
        await sim.fresh(key)
    assert (await sim.fresh(key)).status == 429
    assert (await sim.call("GET", f"{API}/user/me", key=key)).status == 200
    assert (await sim.fresh(other)).status == 200


async def test_zero_disables_the_limit(make_sim: SimFactory) -> None:
    """With a limit of 0 nothing is refused and no rate-limit headers are sent."""
    sim = await make_sim(rate_limit_per_minute=0)
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    for _ in range(20):
        reply = await sim.fresh(key)
        assert reply.status == 200
    assert "x-ratelimit-limit" not in reply.headers


async def test_refused_control_requests_are_logged(make_sim: SimFactory) -> None:
    """A control request stopped by the limiter is in the control log as RATE_LIMITED."""
    sim = await make_sim(rate_limit_per_minute=1)
    account = await sim.account(mix={"seeding": 1})
    key, tid = account["api_key"], account["torrent_ids"][0]
    assert (await sim.control(key, torrent_id=tid, operation="reannounce")).status == 200
    assert (await sim.control(key, torrent_id=tid, operation="delete")).status == 429
    log = (await sim.state(key))["requests"]
    assert [(e["operation"], e["id"], e["result"]) for e in log] == [
        ("reannounce", tid, "ok"),
        ("delete", tid, "RATE_LIMITED"),
    ]
    assert (await sim.torrent(key, tid))["id"] == tid


def test_the_window_rolls() -> None:
    """A slot frees up exactly one minute after the request that used it."""
    limiter = RateLimiter(2)
    assert limiter.hit("e", 0.0).allowed
    assert limiter.hit("e", 30.0).allowed
    refused = limiter.hit("e", 59.0)
    assert not refused.allowed
    assert refused.reset_in == 1.0
    assert limiter.hit("e", 60.0).allowed
    assert not limiter.hit("e", 61.0).allowed
