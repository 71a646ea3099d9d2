"""Injected faults: what can go wrong, on which endpoints, and for how many requests or how long."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    # The request is served (a create creates), then its answer is held for `delay` seconds:
    # a caller that gives up meanwhile never learns that the work was done.
    LATE_ANSWER = "late_answer"
    TIMEOUT = "timeout"
    MALFORMED_JSON = "malformed_json"
    EMPTY_ONCE = "empty_once"
    REVOKED = "revoked"
    # mylist answers 200 as usual but without the chosen torrents, as if they were gone.
    HIDE_TORRENTS = "hide_torrents"
    # mylist answers 200 with a random share of the torrents missing: a glitch in the list.
    PARTIAL_LIST = "partial_list"


MYLIST = "torrents/mylist"
# Kinds that only make sense on mylist; they never fire on another endpoint.
MYLIST_ONLY = frozenset({FaultKind.EMPTY_ONCE, FaultKind.HIDE_TORRENTS, FaultKind.PARTIAL_LIST})
# Kinds that let the request through and thin out the list it answers.
LIST_SHAPING = frozenset({FaultKind.HIDE_TORRENTS, FaultKind.PARTIAL_LIST})

# Fault targets, as the admin API names them, mapped to the endpoints they cover.
ENDPOINT_GROUPS: dict[str, frozenset[str] | None] = {
    "any": None,
    "mylist": frozenset({MYLIST}),
    "control": frozenset(
        {
            "torrents/controltorrent",
            "queued/controlqueued",
            "usenet/controlusenetdownload",
            "webdl/controlwebdownload",
        }
    ),
    "usenet_list": frozenset({"usenet/mylist"}),
    "webdl_list": frozenset({"webdl/mylist"}),
    "create": frozenset(
        {"torrents/createtorrent", "usenet/createusenetdownload", "webdl/createwebdownload"}
    ),
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
    # hide_torrents: the torrent ids left out (hashes are resolved when the fault is added).
    hidden: frozenset[int] = frozenset()
    # partial_list: the share of the list left out of each response, in (0, 1].
    fraction: float = 0.0
    # partial_list: which torrents go missing; seeded by the admin API for repeatable runs.
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def covers(self, endpoint: str) -> bool:
        """Whether a request to `endpoint` is affected; list faults are mylist-only."""
        if self.kind in MYLIST_ONLY and endpoint != MYLIST:
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
            **self._shaping(),
        }

    def _shaping(self) -> dict[str, object]:
        if self.kind is FaultKind.HIDE_TORRENTS:
            return {"ids": sorted(self.hidden)}
        if self.kind is FaultKind.PARTIAL_LIST:
            return {"fraction": self.fraction}
        return {}

    def dropped(self, ids: Sequence[int]) -> frozenset[int]:
        """The torrent ids one response leaves out of `ids`, the whole list it is built from."""
        if self.kind is FaultKind.HIDE_TORRENTS:
            return self.hidden
        if self.kind is FaultKind.PARTIAL_LIST:
            # Rounded first, so 0.1 x 30 drops 3 and not, through float error, 4.
            count = math.ceil(round(self.fraction * len(ids), 9))
            return frozenset(self.rng.sample(list(ids), count))
        return frozenset()


class FaultQueue:
    """The faults pending for one key, handed out in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        # Faults ever added, which makes each one's random stream distinct and repeatable.
        self.added = 0

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: Fault) -> None:
        """Schedule a fault after the ones already pending."""
        self._faults.append(fault)
        self.added += 1

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
