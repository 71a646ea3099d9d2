"""REST rate limits: per user, and per client address for callers whose key has not worked yet."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from common.errors import RateLimited
from common.token_bucket import TokenBucket
from gateway.config import GatewaySettings

# Most buckets kept per kind: the least recently used go first. A dropped bucket comes back full,
# so a flood of new keys or addresses can cost some users their limiter state but never the
# process its memory (each entry is a few hundred bytes).
MAX_BUCKETS = 50_000
MAX_KNOWN = 100_000
# What a request that did not authenticate answered: missing or malformed key, a declaration
# that does not match, a key TorBox refuses, or a key no user has registered.
REFUSED_CODES = frozenset(
    {"API_KEY_REQUIRED", "INVALID_API_KEY", "AUTH_ID_MISMATCH", "USER_NOT_REGISTERED"}
)
ERROR_CODE = "error_code"  # the machine code of a request's error answer (set by the mapping)
AUTH_ID = "auth_id"  # the auth id a request authenticated as (set by Handlers.caller)


class Buckets:
    """Token buckets by name, at most `limit` of them (least recently used dropped)."""

    def __init__(self, rate_per_minute: float, burst: int, limit: int = MAX_BUCKETS) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.limit = limit
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, name: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket.full(self.rate, self.burst, now)
            while len(self._buckets) > self.limit:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(name)
        return bucket

    def take(self, name: str, now: float) -> float:
        """Take a token from `name`'s bucket: 0.0, or how long until one is there (none taken)."""
        return self._bucket(name, now).wait_time(now)

    def empty(self, name: str, now: float) -> float:
        """How long until `name` has a token (0.0: it has one); takes nothing, creates nothing."""
        bucket = self._buckets.get(name)
        if bucket is None:
            return 0.0
        tokens = min(bucket.capacity, bucket.tokens + (now - bucket.updated) * bucket.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / bucket.rate


class Known:
    """Auth ids whose key has worked through this gateway (bounded, least recently used out)."""

    def __init__(self, limit: int = MAX_KNOWN) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, auth_id: object) -> bool:
        return auth_id in self._ids

    def add(self, auth_id: str) -> None:
        """Remember `auth_id` (or refresh it)."""
        self._ids[auth_id] = None
        self._ids.move_to_end(auth_id)
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)


class ClientLimiter:
    """Both REST limits.

    Every authenticated request takes a token from its user's bucket. A request that fails to
    authenticate takes one from its client address's bucket; while that bucket is empty, the
    address may only send keys that have worked here before (anything else: 429 before any
    backend call). So random keys cost their sender, not the backends, and the users behind a
    shared address (TBM's server) are not held back by a stranger's bad keys.
    """

    def __init__(self, settings: GatewaySettings) -> None:
        self.users = Buckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.addresses = Buckets(settings.address_limit_per_minute, settings.address_limit_burst)
        self.known = Known()
        self.proxy_hops = settings.trusted_proxy_hops

    def address(self, request: web.BaseRequest) -> str:
        """The client's address: the TCP peer, or the one the trusted proxies say they served."""
        peer = request.remote or "unknown"
        if self.proxy_hops == 0:
            return peer
        forwarded = [
            part.strip()
            for value in request.headers.getall("X-Forwarded-For", ())
            for part in value.split(",")
            if part.strip()
        ]
        # Each proxy appends the address it was called from; entries left of ours are the
        # client's own claims and are never trusted.
        if len(forwarded) < self.proxy_hops:
            return peer
        return forwarded[-self.proxy_hops]

    def admit_unknown(self, request: web.BaseRequest, auth_id: str | None) -> None:
        """Refuse (429) a caller whose key has not worked here while its address is exhausted."""
        if auth_id is not None and auth_id in self.known:
            return
        wait = self.addresses.empty(self.address(request), time.monotonic())
        if wait > 0:
            raise RateLimited(
                "Too many requests with unknown or missing API keys from this address",
                retry_after=wait,
            )

    def admit_user(self, auth_id: str) -> None:
        """Take a token from the user's bucket (429 when there is none)."""
        wait = self.users.take(auth_id, time.monotonic())
        if wait > 0:
            raise RateLimited("Too many requests; slow down", retry_after=wait)

    def settle(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """After the answer: charge the address for a refused key, remember a key that worked."""
        auth_id = request.get(AUTH_ID)
        if response.status == 401 or request.get(ERROR_CODE) in REFUSED_CODES:
            self.addresses.take(self.address(request), time.monotonic())
        elif isinstance(auth_id, str) and response.status < 400:
            self.known.add(auth_id)

    def middleware(self) -> Middleware:
        """A middleware settling every request once its answer is known."""

        @web.middleware
        async def settle(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            response = await handler(request)
            self.settle(request, response)
            return response

        return settle
