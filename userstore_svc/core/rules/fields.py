"""Every condition type: the value it reads from a torrent state, in the unit TBM's editor means.

A getter returns None when the value is unknown (never observed, not applicable, or an average over
a window we have not watched); a condition over an unknown value does not match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from userstore_svc.core import speeds, telemetry
from userstore_svc.core.models import TorrentState
from userstore_svc.core.status import DOWNLOADING, SEEDING

MB = 1024.0 * 1024.0
GB = MB * 1024.0
HOUR = 3600.0
MINUTE = 60.0
# TorBox (like qBittorrent) reports this ETA when it does not know.
ETA_INFINITE = 8_640_000

Value = float | str | bool | None
Getter = Callable[[TorrentState, float, float | None], Value]


@dataclass(frozen=True, slots=True)
class Field:
    """One condition type: what kind of value it yields, its unit, and how to read it."""

    kind: str  # "number", "string", "status" or "bool"
    unit: str
    get: Getter
    # The value grows one unit per `grows_per_second` seconds while the torrent stays as it is;
    # used to ask for a poll right when a threshold will be crossed. 0 when it does not grow.
    grows_per_second: float = 0.0
    needs_hours: bool = False


def _hours_ago(t: float | None, now: float) -> float | None:
    return None if t is None else max(0.0, now - t) / HOUR


def _minutes_ago(t: float | None, now: float) -> float | None:
    return None if t is None else max(0.0, now - t) / MINUTE


def _stalled_minutes(s: TorrentState, now: float, _h: float | None) -> Value:
    stalled = telemetry.stalled_time(s, now)
    if stalled is not None:
        return stalled / MINUTE
    return 0.0 if s.status in DOWNLOADING else None


def _upload_stalled_minutes(s: TorrentState, now: float, _h: float | None) -> Value:
    if s.status not in SEEDING:
        return None
    since = max(
        t
        for t in (s.last_upload_activity_at, s.seeding_started_at, s.observed_since)
        if t is not None
    )
    return max(0.0, now - since) / MINUTE


def _avg(column: int) -> Getter:
    def get(s: TorrentState, now: float, hours: float | None) -> Value:
        window = (hours if hours is not None else 1.0) * HOUR
        value = speeds.average(
            s.samples, now=now, window=window, observed_since=s.observed_since, column=column
        )
        return None if value is None else value / MB

    return get


def _progress_change(s: TorrentState, now: float, hours: float | None) -> Value:
    if s.snap.size <= 0:
        return None
    window = (hours if hours is not None else 1.0) * HOUR
    grown = speeds.change(
        s.samples,
        now=now,
        window=window,
        observed_since=s.observed_since,
        total=float(s.snap.total_downloaded),
        column=1,
    )
    return None if grown is None else min(100.0, grown / s.snap.size * 100.0)


def _eta(s: TorrentState, _now: float, _h: float | None) -> Value:
    eta = s.snap.eta
    return None if (eta <= 0 and s.status in DOWNLOADING) or eta >= ETA_INFINITE else eta / MINUTE


def _expires(s: TorrentState, now: float, _h: float | None) -> Value:
    return None if s.snap.expires_at is None else (s.snap.expires_at - now) / HOUR


FIELDS: dict[str, Field] = {
    "RATIO": Field("number", "ratio", lambda s, _n, _h: s.snap.ratio),
    "SEEDING_TIME": Field(
        "number", "hours", lambda s, n, _h: telemetry.seeding_time(s, n) / HOUR, 1 / HOUR
    ),
    "DOWNLOADING_TIME": Field(
        "number", "hours", lambda s, n, _h: telemetry.downloading_time(s, n) / HOUR, 1 / HOUR
    ),
    "ACTIVE_TIME": Field(
        "number", "hours", lambda s, n, _h: telemetry.active_time(s, n) / HOUR, 1 / HOUR
    ),
    "AGE": Field("number", "hours", lambda s, n, _h: _hours_ago(s.snap.created_at, n), 1 / HOUR),
    "DOWNLOAD_STALLED_TIME": Field("number", "minutes", _stalled_minutes, 1 / MINUTE),
    "UPLOAD_STALLED_TIME": Field("number", "minutes", _upload_stalled_minutes, 1 / MINUTE),
    "LAST_DOWNLOAD_ACTIVITY_AT": Field(
        "number",
        "minutes ago",
        lambda s, n, _h: _minutes_ago(s.last_download_activity_at, n),
        1 / MINUTE,
    ),
    "LAST_UPLOAD_ACTIVITY_AT": Field(
        "number",
        "minutes ago",
        lambda s, n, _h: _minutes_ago(s.last_upload_activity_at, n),
        1 / MINUTE,
    ),
    "STALL_COUNT": Field("number", "stalls", lambda s, _n, _h: float(s.stall_count)),
    "PROGRESS": Field("number", "percent", lambda s, _n, _h: s.snap.progress * 100.0),
    "PROGRESS_CHANGE": Field("number", "percentage points", _progress_change, needs_hours=True),
    "DOWNLOAD_SPEED": Field("number", "MB/s", lambda s, _n, _h: s.snap.download_speed / MB),
    "UPLOAD_SPEED": Field("number", "MB/s", lambda s, _n, _h: s.snap.upload_speed / MB),
    "AVG_DOWNLOAD_SPEED": Field("number", "MB/s", _avg(1), needs_hours=True),
    "AVG_UPLOAD_SPEED": Field("number", "MB/s", _avg(2), needs_hours=True),
    "MAX_DOWNLOAD_SPEED": Field(
        "number",
        "MB/s",
        lambda s, _n, _h: None if s.max_download_speed is None else s.max_download_speed / MB,
    ),
    "ETA": Field("number", "minutes", _eta),
    "SEEDS": Field("number", "seeds", lambda s, _n, _h: float(s.snap.seeds)),
    "PEERS": Field("number", "peers", lambda s, _n, _h: float(s.snap.peers)),
    "AVAILABILITY": Field("number", "copies", lambda s, _n, _h: s.snap.availability),
    "FILE_COUNT": Field("number", "files", lambda s, _n, _h: float(s.snap.file_count)),
    "TOTAL_UPLOADED": Field("number", "GB", lambda s, _n, _h: s.snap.total_uploaded / GB),
    "TOTAL_DOWNLOADED": Field("number", "MB", lambda s, _n, _h: s.snap.total_downloaded / MB),
    "FILE_SIZE": Field("number", "GB", lambda s, _n, _h: s.snap.size / GB),
    "EXPIRES_AT": Field("number", "hours until", _expires),
    "NAME": Field("string", "text", lambda s, _n, _h: s.snap.name),
    "TRACKER": Field("string", "text", lambda s, _n, _h: s.snap.tracker),
    "STATUS": Field("status", "status", lambda s, _n, _h: s.status),
    "PRIVATE": Field("bool", "flag", lambda s, _n, _h: s.snap.private),
    "CACHED": Field("bool", "flag", lambda s, _n, _h: s.snap.cached),
    "IS_ACTIVE": Field("bool", "flag", lambda s, _n, _h: s.snap.active),
    "SEEDING_ENABLED": Field("bool", "flag", lambda s, _n, _h: s.snap.seed_torrent),
    "LONG_TERM_SEEDING": Field("bool", "flag", lambda s, _n, _h: s.snap.long_term_seeding),
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
OPERATORS: dict[str, tuple[str, ...]] = {
    "number": NUMBER_OPERATORS,
    "string": STRING_OPERATORS,
    "status": STATUS_OPERATORS,
    "bool": BOOL_OPERATORS,
}
