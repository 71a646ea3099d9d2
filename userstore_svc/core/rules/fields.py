"""Every condition type: the value it reads from a torrent state, in the unit TBM's editor means.

A getter returns None when the value is unknown (TorBox did not send it, it does not apply, or an
average over a window we have not watched), and an :class:`AtLeast` when we only know a lower
bound (a time accumulated while we watched a torrent we first saw mid-life, or "no activity for at
least as long as we have watched"). A condition over an unknown value does not match; over a
lower bound it matches only when every value at or above the bound would (see
rules/evaluate.py): ``gt``/``gte`` can become true, ``lt``/``lte``/``eq`` only false.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

from userstore_svc.core import speeds, telemetry
from userstore_svc.core.models import TorrentState
from userstore_svc.core.status import SEEDING, STALLABLE

MB = 1024.0 * 1024.0
GB = MB * 1024.0
HOUR = 3600.0
MINUTE = 60.0
# TorBox (like qBittorrent) reports this ETA when it does not know.
ETA_INFINITE = 8_640_000


class AtLeast(float):
    """A lower bound: the true value is this or more."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"AtLeast({float(self)!r})"


Value = float | str | bool | None
Getter = Callable[[TorrentState, float, float | None], Value]


@dataclass(frozen=True, slots=True)
class Field:
    """One condition type: what kind of value it yields, its unit, and how to read it."""

    kind: str  # "number", "string", "status", "bool" or "tags"
    unit: str
    get: Getter
    # The value grows one unit per `grows_per_second` seconds while the torrent stays as it is;
    # used to ask for a poll right when a threshold will be crossed. 0 when it does not grow.
    grows_per_second: float = 0.0
    needs_hours: bool = False


def _bound(value: float, exact: bool) -> float:
    return value if exact else AtLeast(value)


def _since(t: float, now: float, unit: float) -> float:
    return max(0.0, now - t) / unit


def _accumulated(total: Callable[[TorrentState, float], float]) -> Getter:
    """Hours accumulated while watched: exact only for a torrent watched its whole life."""

    def get(s: TorrentState, now: float, _h: float | None) -> Value:
        value = total(s, now) / HOUR
        return value if s.whole_life else AtLeast(value)  # _bound, without a call per item

    return get


def _stalled_minutes(s: TorrentState, now: float, _h: float | None) -> Value:
    if s.status not in STALLABLE or s.snap.total_downloaded is None:
        return None  # not moving bytes down (metaDL, queued, checking ...), or not watched now
    stalled = telemetry.stalled_time(s, now)
    if stalled is None:
        return 0.0
    return _bound(stalled / MINUTE, s.whole_life)


def _last_activity(column: int) -> Getter:
    """Minutes since bytes last moved; a lower bound when they never moved while we watched."""

    def get(s: TorrentState, now: float, _h: float | None) -> Value:
        if column == 1:
            counter, last = s.snap.total_downloaded, s.last_download_activity_at
        else:
            counter, last = s.snap.total_uploaded, s.last_upload_activity_at
        if counter is None:
            return None  # bytes may be moving right now: TorBox did not say
        if last is not None:
            return _since(last, now, MINUTE)
        return AtLeast(_since(s.observed_since, now, MINUTE))

    return get


def _upload_stalled_minutes(s: TorrentState, now: float, _h: float | None) -> Value:
    """Minutes seeding without uploading; exact only from an upload or a seeding start we saw."""
    if s.status not in SEEDING or s.snap.total_uploaded is None:
        return None
    seen = [t for t in (s.last_upload_activity_at, s.seeding_started_at) if t is not None]
    since = max([*seen, s.observed_since])
    return _bound(_since(since, now, MINUTE), since in seen)


def _avg(column: int) -> Getter:
    def get(s: TorrentState, now: float, hours: float | None) -> Value:
        if (s.snap.total_downloaded if column == 1 else s.snap.total_uploaded) is None:
            return None
        window = (hours if hours is not None else 1.0) * HOUR
        value = speeds.average(
            s.samples, now=now, window=window, observed_since=s.observed_since, column=column
        )
        return None if value is None else value / MB

    return get


def _progress_change(s: TorrentState, now: float, hours: float | None) -> Value:
    size, total = s.snap.size, s.snap.total_downloaded
    if size is None or size <= 0 or total is None:
        return None
    window = (hours if hours is not None else 1.0) * HOUR
    grown = speeds.change(
        s.samples,
        now=now,
        window=window,
        observed_since=s.observed_since,
        total=float(total),
        column=1,
    )
    return None if grown is None else min(100.0, grown / size * 100.0)


def _eta(s: TorrentState, _now: float, _h: float | None) -> Value:
    eta = s.snap.eta
    if eta is None or eta >= ETA_INFINITE or (eta <= 0 and s.status in STALLABLE):
        return None
    return eta / MINUTE


def _expires(s: TorrentState, now: float, _h: float | None) -> Value:
    return None if s.snap.expires_at is None else (s.snap.expires_at - now) / HOUR


def _scaled(name: str, unit: float) -> Getter:
    """A snapshot number in the editor's unit (None stays None)."""
    read = attrgetter(name)

    def get(s: TorrentState, _n: float, _h: float | None) -> Value:
        value: float | None = read(s.snap)
        return None if value is None else value / unit

    return get


def _flag(name: str) -> Getter:
    """A snapshot flag (None stays None)."""
    read = attrgetter(name)

    def get(s: TorrentState, _n: float, _h: float | None) -> Value:
        value: bool | None = read(s.snap)
        return value

    return get


def _status(s: TorrentState, _n: float, _h: float | None) -> Value:
    # An unknown status (a state text not in the table) matches no STATUS condition.
    return None if s.status == "unknown" else s.status


def _tags_unread(_s: TorrentState, _n: float, _h: float | None) -> Value:
    # TAGS reads the item's tag ids, which the caller passes beside the state (evaluate.py).
    return None


def _max_speed(s: TorrentState, _n: float, _h: float | None) -> Value:
    if s.max_download_speed is None:
        return None
    return _bound(s.max_download_speed / MB, s.whole_life)


FIELDS: dict[str, Field] = {
    "RATIO": Field("number", "ratio", _scaled("ratio", 1.0)),
    "SEEDING_TIME": Field("number", "hours", _accumulated(telemetry.seeding_time), 1 / HOUR),
    "DOWNLOADING_TIME": Field(
        "number", "hours", _accumulated(telemetry.downloading_time), 1 / HOUR
    ),
    "ACTIVE_TIME": Field("number", "hours", _accumulated(telemetry.active_time), 1 / HOUR),
    "AGE": Field(
        "number",
        "hours",
        lambda s, n, _h: None if s.snap.created_at is None else _since(s.snap.created_at, n, HOUR),
        1 / HOUR,
    ),
    "DOWNLOAD_STALLED_TIME": Field("number", "minutes", _stalled_minutes, 1 / MINUTE),
    "UPLOAD_STALLED_TIME": Field("number", "minutes", _upload_stalled_minutes, 1 / MINUTE),
    "LAST_DOWNLOAD_ACTIVITY_AT": Field("number", "minutes ago", _last_activity(1), 1 / MINUTE),
    "LAST_UPLOAD_ACTIVITY_AT": Field("number", "minutes ago", _last_activity(2), 1 / MINUTE),
    "STALL_COUNT": Field(
        "number", "stalls", lambda s, _n, _h: _bound(float(s.stall_count), s.whole_life)
    ),
    "PROGRESS": Field("number", "percent", _scaled("progress", 0.01)),
    "PROGRESS_CHANGE": Field("number", "percentage points", _progress_change, needs_hours=True),
    "DOWNLOAD_SPEED": Field("number", "MB/s", _scaled("download_speed", MB)),
    "UPLOAD_SPEED": Field("number", "MB/s", _scaled("upload_speed", MB)),
    "AVG_DOWNLOAD_SPEED": Field("number", "MB/s", _avg(1), needs_hours=True),
    "AVG_UPLOAD_SPEED": Field("number", "MB/s", _avg(2), needs_hours=True),
    "MAX_DOWNLOAD_SPEED": Field("number", "MB/s", _max_speed),
    "ETA": Field("number", "minutes", _eta),
    "SEEDS": Field("number", "seeds", _scaled("seeds", 1.0)),
    "PEERS": Field("number", "peers", _scaled("peers", 1.0)),
    "AVAILABILITY": Field("number", "copies", _scaled("availability", 1.0)),
    "FILE_COUNT": Field("number", "files", _scaled("file_count", 1.0)),
    "TOTAL_UPLOADED": Field("number", "GB", _scaled("total_uploaded", GB)),
    "TOTAL_DOWNLOADED": Field("number", "MB", _scaled("total_downloaded", MB)),
    "FILE_SIZE": Field("number", "GB", _scaled("size", GB)),
    "EXPIRES_AT": Field("number", "hours until", _expires),
    "NAME": Field("string", "text", lambda s, _n, _h: s.snap.name),
    "TRACKER": Field("string", "text", lambda s, _n, _h: s.snap.tracker),
    "STATUS": Field("status", "status", _status),
    "PRIVATE": Field("bool", "flag", _flag("private")),
    "CACHED": Field("bool", "flag", _flag("cached")),
    "IS_ACTIVE": Field("bool", "flag", _flag("active")),
    "SEEDING_ENABLED": Field("bool", "flag", _flag("seed_torrent")),
    "LONG_TERM_SEEDING": Field("bool", "flag", _flag("long_term_seeding")),
    "IS_AIRLOCKED": Field("bool", "flag", _flag("airlocked")),
    # TBM's name for TorBox's `allow_zipped`.
    "ALLOW_ZIP": Field("bool", "flag", _flag("allow_zipped")),
    "ORIGINAL_URL": Field("string", "text", lambda s, _n, _h: s.snap.original_url),
    "TAGS": Field("tags", "tag ids", _tags_unread),
}

# The conditions TBM allows for every asset type; the rest read torrent-only fields (ratio,
# seeding, trackers, our telemetry) and a rule that includes usenet or web downloads may not use
# them (TBM's validator refuses them too).
ALL_ASSET_FIELDS = frozenset(
    {
        "STATUS",
        "IS_ACTIVE",
        "IS_AIRLOCKED",
        "EXPIRES_AT",
        "ETA",
        "PROGRESS",
        "DOWNLOAD_SPEED",
        "AGE",
        "FILE_SIZE",
        "FILE_COUNT",
        "NAME",
        "CACHED",
        "ALLOW_ZIP",
        "TAGS",
        "ORIGINAL_URL",
    }
)

# Our derived conditions that usenet and web downloads have too: their activity, stalls, times and
# progress history follow from their progress (telemetry.with_counters). TBM allows the first
# three on torrents only, having no history for the other types.
DERIVED_DOWNLOAD_FIELDS = frozenset(
    {
        "DOWNLOAD_STALLED_TIME",
        "LAST_DOWNLOAD_ACTIVITY_AT",
        "AVG_DOWNLOAD_SPEED",
        "DOWNLOADING_TIME",
        "ACTIVE_TIME",
        "STALL_COUNT",
        "PROGRESS_CHANGE",
        "MAX_DOWNLOAD_SPEED",
    }
)
# The conditions each asset type has; a rule over several types may use their intersection.
FIELDS_BY_TYPE: dict[str, frozenset[str]] = {
    "torrent": frozenset(FIELDS),
    "usenet": ALL_ASSET_FIELDS | DERIVED_DOWNLOAD_FIELDS,
    "webdl": ALL_ASSET_FIELDS | DERIVED_DOWNLOAD_FIELDS,
}

NUMBER_OPERATORS = ("gt", "lt", "gte", "lte", "eq")
STRING_OPERATORS = (
    "contains",
    "not_contains",
    "equals",
    "not_equals",
    "starts_with",
    "ends_with",
    "matches",
)
STATUS_OPERATORS = ("is_any_of", "is_none_of")
BOOL_OPERATORS = ("is_true", "is_false")
TAGS_OPERATORS = ("is_any_of", "is_all_of", "is_none_of", "is_set", "is_not_set")
# Older names TBM's validator still accepts; stored under the editor's names.
TAGS_ALIASES = {"has_any": "is_any_of", "has_all": "is_all_of", "has_none": "is_none_of"}
OPERATORS: dict[str, tuple[str, ...]] = {
    "number": NUMBER_OPERATORS,
    "string": STRING_OPERATORS,
    "status": STATUS_OPERATORS,
    "bool": BOOL_OPERATORS,
    "tags": TAGS_OPERATORS,
}
