"""Key health per user and the platform-outage breaker.

Key health answers "is this user's key working?": consecutive failures, the last 24 hours of
requests and failures in hourly buckets, an average response time, last success and failure.
The breaker answers "is TorBox itself down?": when most recent polls could not reach TorBox at
all, polling pauses (no snapshots, no actions) and one probe at a time checks for recovery.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

HOUR = 3600.0
HEALTHY, DEGRADED, FAILING = "healthy", "degraded", "failing"
# A key never fetched with yet (or a user this replica does not know) has no health to report.
UNKNOWN, AUTH_FAILED_STATE = "unknown", "auth_failed"


@dataclass(slots=True)
class KeyHealth:
    """One key's recent record."""

    consecutive_failures: int = 0
    consecutive_auth_failures: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_error_code: str | None = None
    avg_response_seconds: float | None = None
    # (hour index, requests, failures), newest last, at most 24 entries.
    hours: deque[list[int]] = field(default_factory=lambda: deque(maxlen=24))

    def _bucket(self, now: float) -> list[int]:
        hour = int(now // HOUR)
        if not self.hours or self.hours[-1][0] != hour:
            self.hours.append([hour, 0, 0])
        return self.hours[-1]

    def success(self, now: float, elapsed: float) -> None:
        """A poll's fetch worked."""
        self._bucket(now)[1] += 1
        self.consecutive_failures = 0
        self.consecutive_auth_failures = 0
        self.last_success_at = now
        previous = self.avg_response_seconds
        self.avg_response_seconds = elapsed if previous is None else previous * 0.8 + elapsed * 0.2

    def failure(self, now: float, code: str, *, auth: bool) -> None:
        """A poll's fetch failed with `code`."""
        bucket = self._bucket(now)
        bucket[1] += 1
        bucket[2] += 1
        self.consecutive_failures += 1
        self.consecutive_auth_failures = self.consecutive_auth_failures + 1 if auth else 0
        self.last_failure_at = now
        self.last_error_code = code

    def totals(self, now: float) -> tuple[int, int]:
        """(requests, failures) in the last 24 hours."""
        oldest = int(now // HOUR) - 23
        requests = sum(b[1] for b in self.hours if b[0] >= oldest)
        failures = sum(b[2] for b in self.hours if b[0] >= oldest)
        return requests, failures

    def failure_rate(self, now: float) -> float:
        """Failures over requests in the last 24 hours (0.0 without requests)."""
        requests, failures = self.totals(now)
        return failures / requests if requests else 0.0

    def reset_auth(self) -> None:
        """The key was validated again (ensure-db) or replaced: auth failures start over."""
        self.consecutive_auth_failures = 0
        self.consecutive_failures = 0

    @property
    def tried(self) -> bool:
        """Whether any fetch with this key has succeeded or failed yet."""
        return self.last_success_at is not None or self.last_failure_at is not None

    def state(self, now: float) -> str:
        """healthy, degraded (some failures) or failing (3+ in a row)."""
        if self.consecutive_failures >= 3:
            return FAILING
        requests, failures = self.totals(now)
        if self.consecutive_failures > 0 or (requests and failures / requests > 0.2):
            return DEGRADED
        return HEALTHY


@dataclass(slots=True)
class HealthTotals:
    """Key health summed over a replica's users, for /api/backend/status."""

    healthy: int = 0
    degraded: int = 0
    failing: int = 0
    auth_failed: int = 0
    requests_24h: int = 0
    failures_24h: int = 0
    # Mean of the keys' average fetch times; None before any successful fetch.
    avg_response_seconds: float | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None

    @property
    def failure_rate_24h(self) -> float:
        """Failures over requests in the last 24 hours, all keys together."""
        return self.failures_24h / self.requests_24h if self.requests_24h else 0.0

    def add(self, health: KeyHealth, now: float, *, auth_failed: bool) -> None:
        """Count one key."""
        if auth_failed:
            self.auth_failed += 1
        else:
            state = health.state(now)
            if state == HEALTHY:
                self.healthy += 1
            elif state == DEGRADED:
                self.degraded += 1
            else:
                self.failing += 1
        requests, failures = health.totals(now)
        self.requests_24h += requests
        self.failures_24h += failures
        self.last_success_at = _latest(self.last_success_at, health.last_success_at)
        self.last_failure_at = _latest(self.last_failure_at, health.last_failure_at)

    @staticmethod
    def build(items: list[tuple[KeyHealth, bool]], now: float) -> HealthTotals:
        """Totals over (health, auth_failed) pairs."""
        totals = HealthTotals()
        averages: list[float] = []
        for health, auth_failed in items:
            totals.add(health, now, auth_failed=auth_failed)
            if health.avg_response_seconds is not None:
                averages.append(health.avg_response_seconds)
        if averages:
            totals.avg_response_seconds = sum(averages) / len(averages)
        return totals


def _latest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class OutageBreaker:
    """Opens when most of the recent polls could not reach TorBox; a probe closes it."""

    def __init__(self, *, min_polls: int, failure_ratio: float, probe_seconds: float) -> None:
        self._min = min_polls
        self._ratio = failure_ratio
        self.probe_seconds = probe_seconds
        self._recent: deque[bool] = deque(maxlen=max(20, min_polls))
        self.open = False
        self.opened_at: float | None = None
        self.last_probe_at: float | None = None

    @property
    def state(self) -> str:
        """Either "closed" (polling) or "open" (paused, probing)."""
        return "open" if self.open else "closed"

    def record(self, *, unreachable: bool, now: float) -> bool:
        """Count a poll's outcome; True when this one opened the breaker."""
        if self.open:
            return False
        self._recent.append(unreachable)
        bad = sum(self._recent)
        if len(self._recent) >= self._min and bad / len(self._recent) >= self._ratio:
            self.open = True
            self.opened_at = now
            self.last_probe_at = now
            return True
        return False

    def probe_due(self, now: float) -> bool:
        """Whether it is time to try TorBox again."""
        return self.open and (
            self.last_probe_at is None or now - self.last_probe_at >= self.probe_seconds
        )

    def probed(self, *, ok: bool, now: float) -> None:
        """A probe's result: success closes the breaker."""
        self.last_probe_at = now
        if ok:
            self.open = False
            self.opened_at = None
            self._recent.clear()
