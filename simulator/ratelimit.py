"""TorBox's rate limit: so many requests per key and endpoint in any rolling minute."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

WINDOW_SECONDS = 60.0


class Verdict(NamedTuple):
    """The limiter's answer for one request, with what the x-ratelimit-* headers report."""

    allowed: bool
    remaining: int
    reset_in: float


class RateLimiter:
    """A sliding log per endpoint: exact, and cheap at a few hundred entries per window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, deque[float]] = {}

    def hit(self, endpoint: str, now: float) -> Verdict:
        """Count one request at monotonic time `now`, unless the window is already full."""
        window = self._windows.get(endpoint)
        if window is None:
            window = self._windows[endpoint] = deque()
        horizon = now - WINDOW_SECONDS
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= self.per_minute:
            return Verdict(False, 0, window[0] + WINDOW_SECONDS - now)
        window.append(now)
        return Verdict(True, self.per_minute - len(window), window[0] + WINDOW_SECONDS - now)
