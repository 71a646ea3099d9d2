"""Injected faults: what can go wrong, on which endpoints, and for how many requests or how long."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """The failures a test can schedule for one API key."""

    HTTP_500 = "http_500"
    AUTH_ERROR_500 = "auth_error_500"
    BUSINESS_500 = "business_500"
    BAD_GATEWAY_HTML = "bad_gateway_html"
    UNAVAILABLE_503 = "unavailable_503"
    RATE_LIMIT_429 = "rate_limit_429"
    SLOW = "slow"
    TIMEOUT = "timeout"
    MALFORMED_JSON = "malformed_json"
    EMPTY_ONCE = "empty_once"
    REVOKED = "revoked"


MYLIST = "torrents/mylist"

# Fault targets, as the admin API names them, mapped to the endpoints they cover.
ENDPOINT_GROUPS: dict[str, frozenset[str] | None] = {
    "any": None,
    "mylist": frozenset({MYLIST}),
    "control": frozenset({"torrents/controltorrent", "queued/controlqueued"}),
    "create": frozenset({"torrents/createtorrent"}),
    "user": frozenset({"user/me"}),
    "queued": frozenset({"queued/getqueued"}),
    "export": frozenset({"torrents/exportdata"}),
}


@dataclass(slots=True)
class Fault:
    """One scheduled fault; it ends after `remaining` requests or at `until`, whichever is first."""

    kind: FaultKind
    endpoint: str
    remaining: float
    until: float
    retry_after: float | None
    delay: float | None

    def covers(self, endpoint: str) -> bool:
        """Whether a request to `endpoint` is affected; the empty-list quirk is mylist-only."""
        if self.kind is FaultKind.EMPTY_ONCE and endpoint != MYLIST:
            return False
        group = ENDPOINT_GROUPS[self.endpoint]
        return group is None or endpoint in group

    def describe(self, now: float) -> dict[str, object]:
        """The fault as the admin API reports it; an unbounded count or duration is null."""
        return {
            "kind": self.kind.value,
            "endpoint": self.endpoint,
            "count": None if math.isinf(self.remaining) else int(self.remaining),
            "seconds": None if math.isinf(self.until) else round(self.until - now, 3),
            "retry_after": self.retry_after,
            "delay": self.delay,
        }


class FaultQueue:
    """The faults pending for one key, handed out in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: Fault) -> None:
        """Schedule a fault after the ones already pending."""
        self._faults.append(fault)

    def clear(self) -> int:
        """Drop every pending fault and say how many there were."""
        count = len(self._faults)
        self._faults.clear()
        return count

    def pending(self, now: float) -> list[Fault]:
        """The faults still live at monotonic time `now`; spent and expired ones are dropped."""
        self._faults = [f for f in self._faults if f.remaining > 0 and f.until > now]
        return self._faults

    def take(self, endpoint: str, now: float) -> Fault | None:
        """The first live fault covering `endpoint`, spending one of its requests."""
        if not self._faults:
            return None
        for fault in self.pending(now):
            if fault.covers(endpoint):
                fault.remaining -= 1
                return fault
        return None
