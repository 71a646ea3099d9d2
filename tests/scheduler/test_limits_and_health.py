"""The rate limiter, key health and the outage breaker, driven by explicit clocks."""

from __future__ import annotations

import asyncio
import time
from collections import deque

import pytest

from scheduler_svc.health import HOUR, HealthTotals, KeyHealth, OutageBreaker
from scheduler_svc.torbox.ratelimit import RateLimiter, RateLimitWait


class Clock:
    """A clock the test moves by hand (monotonic and wall time together)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_default_bucket_never_exceeds_300_in_any_minute() -> None:
    """Hammering one key and endpoint for three minutes: no 60 s window holds more than 300."""
    clock = Clock()
    limiter = RateLimiter(per_key_per_minute=250, global_per_second=0, clock=clock, wall=clock)
    granted: list[float] = []
    start = clock.now
    while clock.now - start < 180:
        try:
            await limiter.acquire("key", "mylist", max_wait=0)
            granted.append(clock.now)
        except RateLimitWait:
            pass
        clock.now += 0.01
    window: deque[float] = deque()
    busiest = 0
    for when in granted:
        window.append(when)
        while window[0] <= when - 60:
            window.popleft()
        busiest = max(busiest, len(window))
    assert busiest <= 300
    # And it does not starve either: the configured 250/min is what a steady caller gets.
    assert len([t for t in granted if t >= start + 120]) >= 245


async def test_a_429_block_holds_every_endpoint_of_that_key_only() -> None:
    """block() stops the key on all endpoints until the given time; other keys go on."""
    clock = Clock()
    limiter = RateLimiter(per_key_per_minute=250, global_per_second=0, clock=clock, wall=clock)
    limiter.block("key", clock.now + 5)
    for endpoint in ("mylist", "control"):
        with pytest.raises(RateLimitWait) as raised:
            await limiter.acquire("key", endpoint, max_wait=1)
        assert raised.value.wait == pytest.approx(5)
    await limiter.acquire("other", "mylist", max_wait=0)
    assert limiter.blocked_until("key") == clock.now + 5
    clock.now += 5
    assert limiter.blocked_for("key") == 0
    assert limiter.blocked_until("key") is None
    await limiter.acquire("key", "mylist", max_wait=0)
    # A later block never shortens an earlier one.
    limiter.block("key", clock.now + 10)
    limiter.block("key", clock.now + 2)
    assert limiter.blocked_for("key") == pytest.approx(10)
    limiter.forget("key")
    assert limiter.blocked_for("key") == 0


async def test_the_global_bucket_applies_across_keys() -> None:
    """With a global rate of 2/s, the third immediate call (any key) must wait."""
    clock = Clock()
    limiter = RateLimiter(per_key_per_minute=250, global_per_second=2, clock=clock, wall=clock)
    await limiter.acquire("a", "mylist", max_wait=0)
    await limiter.acquire("b", "mylist", max_wait=0)
    with pytest.raises(RateLimitWait):
        await limiter.acquire("c", "mylist", max_wait=0)


async def test_a_429_that_arrives_while_waiting_for_a_token_is_waited_out() -> None:
    """A call that waits for its token never goes out into a block that began meanwhile."""
    # 600/min: a token every 0.1 s and a burst of one, so the second call has to wait.
    limiter = RateLimiter(per_key_per_minute=600, global_per_second=0)
    await limiter.acquire("key", "mylist", max_wait=5)
    waiting = asyncio.create_task(limiter.acquire("key", "mylist", max_wait=5))
    await asyncio.sleep(0)  # the call is now asleep, waiting for its token
    assert not waiting.done()
    limiter.block("key", time.time() + 0.3)
    await waiting
    assert limiter.blocked_for("key") == 0


async def test_a_call_with_its_tokens_at_hand_still_takes_them() -> None:
    """The call that waits for nothing takes a token from its key's bucket and the global one."""
    clock = Clock()
    # 6/min: a burst of one and a token every 10 s per key; one global token a second.
    limiter = RateLimiter(per_key_per_minute=6, global_per_second=1, clock=clock, wall=clock)
    await limiter.acquire("a", "mylist", max_wait=0)
    with pytest.raises(RateLimitWait):
        await limiter.acquire("b", "mylist", max_wait=0)  # the global token is gone
    clock.now += 1
    with pytest.raises(RateLimitWait):
        await limiter.acquire("a", "mylist", max_wait=0)  # the key's bucket is empty
    await limiter.acquire("c", "mylist", max_wait=0)  # the global token "a" did not take
    with pytest.raises(RateLimitWait):
        await limiter.acquire("d", "mylist", max_wait=0)


def test_key_health_states_and_24_hour_figures() -> None:
    """Failures make a key degraded, three in a row failing; figures cover the last 24 hours."""
    health = KeyHealth()
    now = 100 * HOUR
    health.success(now, 0.5)
    assert health.state(now) == "healthy"
    health.failure(now + 1, "HTTP_502", auth=False)
    assert health.state(now + 1) == "degraded"
    health.failure(now + 2, "HTTP_502", auth=False)
    health.failure(now + 3, "HTTP_502", auth=False)
    assert health.state(now + 3) == "failing"
    assert health.consecutive_failures == 3
    assert health.totals(now + 3) == (4, 3)
    assert health.failure_rate(now + 3) == pytest.approx(0.75)
    assert health.last_error_code == "HTTP_502"
    assert health.last_success_at == now
    assert health.last_failure_at == now + 3
    health.success(now + 4, 1.5)
    assert health.consecutive_failures == 0
    assert health.avg_response_seconds == pytest.approx(0.5 * 0.8 + 1.5 * 0.2)
    # A day later the old hour has rolled out of the figures.
    later = now + 24 * HOUR
    health.success(later, 0.5)
    assert health.totals(later) == (1, 0)
    assert health.failure_rate(later) == 0.0
    assert health.state(later) == "healthy"


def test_auth_failures_count_in_a_row_and_reset_on_revalidation() -> None:
    """Only consecutive refusals count; a new key or ensure-db starts them over."""
    health = KeyHealth()
    health.failure(1.0, "BAD_TOKEN", auth=True)
    health.failure(2.0, "BAD_TOKEN", auth=True)
    health.failure(3.0, "HTTP_502", auth=False)
    assert health.consecutive_auth_failures == 0
    health.failure(4.0, "BAD_TOKEN", auth=True)
    assert health.consecutive_auth_failures == 1
    health.reset_auth()
    assert health.consecutive_auth_failures == 0
    assert health.consecutive_failures == 0


def test_health_totals_sum_the_keys() -> None:
    """Totals count states, 24 h requests and failures, the failure rate and the latest times."""
    now = 10 * HOUR
    good, bad, stopped = KeyHealth(), KeyHealth(), KeyHealth()
    good.success(now, 1.0)
    for i in range(3):
        bad.failure(now + i, "TIMEOUT", auth=False)
    stopped.failure(now + 5, "BAD_TOKEN", auth=True)
    totals = HealthTotals.build([(good, False), (bad, False), (stopped, True)], now + 10)
    assert (totals.healthy, totals.degraded, totals.failing, totals.auth_failed) == (1, 0, 1, 1)
    assert (totals.requests_24h, totals.failures_24h) == (5, 4)
    assert totals.failure_rate_24h == pytest.approx(0.8)
    assert totals.avg_response_seconds == pytest.approx(1.0)
    assert totals.last_success_at == now
    assert totals.last_failure_at == now + 5
    assert HealthTotals.build([], now).failure_rate_24h == 0.0


def test_the_breaker_opens_on_mostly_unreachable_polls_and_a_probe_closes_it() -> None:
    """Four unreachable polls in five open it; probes are spaced; a good probe closes it."""
    breaker = OutageBreaker(min_polls=5, failure_ratio=0.8, probe_seconds=30)
    assert not breaker.record(unreachable=False, now=0)
    for i in range(3):
        assert not breaker.record(unreachable=True, now=i)
    assert breaker.record(unreachable=True, now=4)
    assert breaker.state == "open"
    assert not breaker.probe_due(10)
    assert breaker.probe_due(34)
    breaker.probed(ok=False, now=34)
    assert breaker.open
    assert not breaker.probe_due(40)
    breaker.probed(ok=True, now=64)
    assert breaker.state == "closed"
    # A fresh start: one bad poll after recovery does not reopen it.
    assert not breaker.record(unreachable=True, now=65)
