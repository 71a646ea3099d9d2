"""Outbound rate limits: a token bucket per key and endpoint, a global rate, and 429 back-offs.

TorBox allows 300 requests per minute per key and endpoint; we stay under it with a bucket whose
rate and burst together never exceed that in any minute. A 429 blocks the key until TorBox says
it may be used again, and nothing is sent with that key before then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from common.token_bucket import TokenBucket


class RateLimitWait(Exception):
    """A token (or the end of a 429 block) is further away than the caller may wait."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"{wait:.3f}s")
        self.wait = wait


class RateLimiter:
    """Buckets per (key, endpoint), one global bucket, and per-key 429 blocks."""

    def __init__(
        self,
        *,
        per_key_per_minute: float,
        global_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._per_key_rate = per_key_per_minute / 60.0
        # Burst + a minute of refill must stay under TorBox's 300/min: keep the burst small.
        self._per_key_burst = max(1.0, min(per_key_per_minute / 10.0, 300.0 - per_key_per_minute))
        self._global = (
            TokenBucket.full(global_per_second, max(1.0, global_per_second), clock())
            if global_per_second > 0
            else None
        )
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._blocked_until: dict[str, float] = {}
        self._clock = clock
        self._wall = wall

    def block(self, key_id: str, until_epoch: float) -> None:
        """After a 429: nothing is sent for this key before `until_epoch` (wall clock)."""
        self._blocked_until[key_id] = max(self._blocked_until.get(key_id, 0.0), until_epoch)

    def blocked_until(self, key_id: str) -> float | None:
        """The wall-clock time a key's 429 block ends, or None when it may send."""
        return self._blocked_until.get(key_id) if self.blocked_for(key_id) > 0 else None

    def blocked_for(self, key_id: str) -> float:
        """Seconds left on a key's 429 block (0 when it may send)."""
        until = self._blocked_until.get(key_id)
        if until is None:
            return 0.0
        left = until - self._wall()
        if left <= 0:
            del self._blocked_until[key_id]
            return 0.0
        return left

    def forget(self, key_id: str) -> None:
        """Drop a removed user's buckets."""
        self._blocked_until.pop(key_id, None)
        for bucket_key in [k for k in self._buckets if k[0] == key_id]:
            del self._buckets[bucket_key]

    async def acquire(self, key_id: str, endpoint: str, *, max_wait: float) -> None:
        """Wait out the key's 429 block, then take a key/endpoint token and a global one.

        Raises :class:`RateLimitWait` when the wait would exceed `max_wait` (the caller gives up
        instead of holding a poll slot for minutes); nothing is taken from the buckets then.
        """
        deadline = self._clock() + max_wait
        # Each step is tried at once and awaited only when it must wait (the usual call waits
        # for nothing: no coroutine is made for it).
        if self.blocked_for(key_id) > 0:
            await self.wait_unblocked(key_id, deadline)
        bucket = self._buckets.get((key_id, endpoint))
        if bucket is None:
            bucket = self._buckets[(key_id, endpoint)] = TokenBucket.full(
                self._per_key_rate, self._per_key_burst, self._clock()
            )
        if bucket.wait_time(self._clock()) != 0.0:
            await self._take(bucket, deadline)
        if self._global is not None and self._global.wait_time(self._clock()) != 0.0:
            await self._take(self._global, deadline)
        # A 429 for this key may have arrived while we waited for tokens.
        if self.blocked_for(key_id) > 0:
            await self.wait_unblocked(key_id, deadline)

    async def wait_unblocked(self, key_id: str, deadline: float) -> None:
        """Sleep until the key's 429 block is over (RateLimitWait if that is past `deadline`)."""
        while True:
            left = self.blocked_for(key_id)
            if left <= 0:
                return
            if self._clock() + left > deadline:
                raise RateLimitWait(left)
            await asyncio.sleep(left)

    async def _take(self, bucket: TokenBucket, deadline: float) -> None:
        while True:
            wait = bucket.wait_time(self._clock())
            if wait == 0.0:
                return
            if self._clock() + wait > deadline:
                raise RateLimitWait(wait)
            await asyncio.sleep(wait)
