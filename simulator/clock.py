"""The simulated clock: scaled real time plus manual advances, and its mapping back to wall time."""

from __future__ import annotations

import time


class SimClock:
    """Simulated seconds = real elapsed seconds x scale + seconds advanced by hand.

    Only torrent life runs on this clock; every date the API reports is real wall-clock time.
    """

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._start = time.monotonic()
        self._advanced = 0.0

    def now(self) -> float:
        """The current simulated time in seconds since the simulator started."""
        return (time.monotonic() - self._start) * self.time_scale + self._advanced

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by hand and return the new simulated time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._advanced += seconds
        return self.now()

    def wall_at(self, sim_time: float, *, not_before: float) -> float:
        """Estimate the wall-clock moment of a past simulated instant, for dates like cached_at.

        The estimate assumes the scale held throughout; manual advances have no wall-clock
        counterpart, so the result is clamped between `not_before` and now.
        """
        wall_now = time.time()
        if self.time_scale <= 0:
            return wall_now
        estimate = wall_now - (self.now() - sim_time) / self.time_scale
        return min(wall_now, max(not_before, estimate))
