"""The REST limiter's bounds and its reading of the client address (issue 20 item 3)."""

from __future__ import annotations

import secrets

from aiohttp.test_utils import make_mocked_request

from gateway.config import GatewaySettings
from gateway.limiter import Buckets, ClientLimiter, Known


def test_buckets_keep_at_most_their_limit() -> None:
    """20,000 random keys leave at most `limit` buckets; the most recent ones stay."""
    buckets = Buckets(60.0, 3, limit=100)
    names = [secrets.token_hex(16) for _ in range(20_000)]
    for name in names:
        assert buckets.take(name, 0.0) == 0.0
    assert len(buckets) == 100
    assert buckets.take(names[-1], 0.0) == 0.0  # still tracked: its second token
    assert buckets.take(names[-1], 0.0) == 0.0
    assert buckets.take(names[-1], 0.0) > 0.0


def test_looking_does_not_create_a_bucket() -> None:
    """Checking an address that never failed costs no memory."""
    buckets = Buckets(60.0, 3, limit=100)
    for _ in range(1000):
        assert buckets.empty(secrets.token_hex(8), 0.0) == 0.0
    assert len(buckets) == 0


def test_known_ids_are_bounded() -> None:
    """The ids whose key worked here are bounded too (oldest forgotten first)."""
    known = Known(limit=10)
    for index in range(1000):
        known.add(str(index))
    assert "999" in known
    assert "0" not in known


def settings(**env: str) -> GatewaySettings:
    """Gateway settings from `env` only."""
    return GatewaySettings.from_env(env)


def test_address_is_the_peer_unless_proxies_are_trusted() -> None:
    """X-Forwarded-For is ignored by default; with N hops the N-th entry from the right counts."""
    forwarded = {"X-Forwarded-For": "6.6.6.6, 10.0.0.1, 10.0.0.2"}
    request = make_mocked_request("GET", "/", headers=forwarded)
    peer = request.remote or "unknown"  # a mocked request has no transport
    assert ClientLimiter(settings()).address(request) == peer
    assert ClientLimiter(settings(TRUSTED_PROXY_HOPS="1")).address(request) == "10.0.0.2"
    assert ClientLimiter(settings(TRUSTED_PROXY_HOPS="2")).address(request) == "10.0.0.1"
    # Fewer entries than trusted hops: the request skipped a proxy; the peer is all we know.
    assert ClientLimiter(settings(TRUSTED_PROXY_HOPS="4")).address(request) == peer
