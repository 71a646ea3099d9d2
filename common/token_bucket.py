"""A token bucket: `rate` tokens per second with at most `capacity` saved up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Classic token bucket (used for outbound TorBox limits and inbound per-user limits)."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, capacity: float, now: float) -> TokenBucket:
        """A bucket that starts with all its tokens."""
        return cls(rate, capacity, capacity, now)

    def wait_time(self, now: float) -> float:
        """Take one token if available (0.0), else how long until one is (nothing taken)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
