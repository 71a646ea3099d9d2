"""Immutable value types of the pipeline: a torrent as TorBox reported it, and as we remember it.

The two per-torrent types are named tuples rather than frozen dataclasses: a poll builds several
of them per torrent, and a frozen dataclass of 30 fields took 3.1 us to construct against 0.4 us
for a named tuple (its ``__init__`` sets each field through ``object.__setattr__``). They are just
as immutable, compare and slice at C speed, and become database rows by unpacking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class TorrentSnapshot(NamedTuple):
    """One torrent (or queued item) as TorBox reported it in one poll; times in epoch seconds."""

    id: int
    hash: str
    name: str
    magnet: str | None
    size: int
    active: bool
    created_at: float | None
    updated_at: float | None
    download_state: str
    seeds: int
    peers: int
    ratio: float
    progress: float
    download_speed: int
    upload_speed: int
    eta: int
    expires_at: float | None
    download_present: bool
    download_finished: bool
    file_count: int
    availability: float
    tracker: str | None
    total_uploaded: int
    total_downloaded: int
    cached: bool
    cached_at: float | None
    seed_torrent: bool
    long_term_seeding: bool
    private: bool
    queued: bool

    @property
    def key(self) -> int:
        """The row key: TorBox ids for torrents, negated ids for queued items (own id space)."""
        return -self.id if self.queued else self.id


SNAPSHOT_FIELDS: tuple[str, ...] = TorrentSnapshot._fields


class TorrentState(NamedTuple):
    """What we remember about one torrent: its last snapshot plus everything TorBox never says.

    Accumulated times use lazy accrual: ``seeding_seconds`` holds the closed runs, and while a run
    is open ``seeding_run_since`` marks its start, so an idle seeding torrent needs no write per
    poll. :mod:`userstore_svc.core.telemetry` turns these into the exposed ``*_time_seconds``.
    """

    snap: TorrentSnapshot
    status: str
    first_seen_at: float
    last_seen_at: float
    present: bool
    removed_at: float | None
    missing_since: float | None
    observed_since: float
    last_download_activity_at: float | None
    last_upload_activity_at: float | None
    stalled_since: float | None
    idle_excluded_seconds: float
    stall_count: int
    downloading_started_at: float | None
    seeding_started_at: float | None
    seeding_seconds: float
    seeding_run_since: float | None
    downloading_seconds: float
    downloading_run_since: float | None
    active_seconds: float
    active_run_since: float | None
    max_download_speed: float | None
    samples: bytes

    @property
    def key(self) -> int:
        """The row key (see :attr:`TorrentSnapshot.key`)."""
        return self.snap.key


@dataclass(frozen=True, slots=True)
class Event:
    """A synthetic event: what the snapshots imply happened, with the values that show it."""

    type: str
    torrent_key: int
    observed_at: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Tunable thresholds of the pipeline (from settings; the defaults are the documented ones)."""

    stall_after_seconds: float = 600.0
    ratio_event_threshold: float = 1.0
    # A snapshot is suspicious when it drops below this share of the torrents we knew ...
    suspicious_drop_fraction: float = 0.5
    # ... and we knew at least this many (an account of 3 emptying itself is not suspicious).
    suspicious_min_known: int = 10
    sample_window_seconds: float = 3600.0
    max_samples: int = 240
