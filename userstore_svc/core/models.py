"""Immutable value types of the pipeline: a torrent as TorBox reported it, and as we remember it.

The two per-torrent types are named tuples rather than frozen dataclasses: a poll builds several
of them per torrent, and a frozen dataclass of 30 fields took 3.1 us to construct against 0.4 us
for a named tuple (its ``__init__`` sets each field through ``object.__setattr__``). They are just
as immutable, compare and slice at C speed, and become database rows by unpacking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# TorBox's asset types, each its own id space (and a queue of its own).
TORRENT = "torrent"
USENET = "usenet"
WEBDL = "webdl"
KINDS = (TORRENT, USENET, WEBDL)
# Row keys keep the types apart: a torrent's key is its TorBox id (as before usenet and web
# downloads were polled), another type's key adds its offset; queued items negate the key.
# TorBox ids are far below 2**40 (8 digits in 2026); a larger one is refused at parse time.
KIND_SPAN = 1 << 40
_KIND_OFFSETS = {TORRENT: 0, USENET: KIND_SPAN, WEBDL: 2 * KIND_SPAN}
_KIND_BY_INDEX = (TORRENT, USENET, WEBDL)


def item_key(kind: str, item_id: int, queued: bool) -> int:
    """The row key of TorBox's item `item_id` of this type (queued or listed)."""
    key = _KIND_OFFSETS[kind] + item_id
    return -key if queued else key


def split_key(key: int) -> tuple[str, int, bool]:
    """A row key back as (type, TorBox id, queued)."""
    index, item_id = divmod(abs(key), KIND_SPAN)
    return _KIND_BY_INDEX[index] if index < 3 else TORRENT, item_id, key < 0


class TorrentSnapshot(NamedTuple):
    """One torrent (or queued item) as TorBox reported it in one poll; times in epoch seconds.

    None is *unknown*: TorBox sent null, the field is not in the queued list's shape, or (size,
    file count) the magnet is still fetching its metadata. Unknown is never read as 0 or False.
    """

    id: int
    hash: str
    name: str
    magnet: str | None
    size: int | None
    active: bool | None
    created_at: float | None
    updated_at: float | None
    download_state: str
    seeds: int | None
    peers: int | None
    ratio: float | None
    progress: float | None
    download_speed: int | None
    upload_speed: int | None
    eta: int | None
    expires_at: float | None
    download_present: bool | None
    download_finished: bool | None
    file_count: int | None
    availability: float | None
    tracker: str | None
    total_uploaded: int | None
    total_downloaded: int | None
    cached: bool | None
    cached_at: float | None
    seed_torrent: bool | None
    long_term_seeding: bool | None
    private: bool | None
    queued: bool
    # Newer fields, last so rows and constructors written before them stay valid.
    airlocked: bool | None = None
    allow_zipped: bool | None = None
    # TorBox sends it for usenet and web downloads; a torrent has none (unknown, never "").
    original_url: str | None = None
    # Which of TorBox's lists the item came from: torrent, usenet or webdl.
    kind: str = TORRENT

    @property
    def key(self) -> int:
        """The row key: TorBox ids (negated for queued items); other types offset (item_key)."""
        if self.kind == TORRENT:
            return -self.id if self.queued else self.id
        return item_key(self.kind, self.id, self.queued)


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
    # Start of the current continuous presence (first sight or return); gaps do not move it.
    tracked_since: float
    # True when we saw the torrent arrive and watched it without a gap since: accumulated times,
    # stall counts and the maximum speed are then exact; otherwise they are lower bounds.
    whole_life: bool

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
    # A snapshot is suspicious (a list glitch until shown otherwise) when it is empty where
    # torrents were known, or when at least this share of the known torrents is missing from it
    # (at least `suspicious_min_missing` of them).
    suspicious_drop_fraction: float = 0.5
    suspicious_min_missing: int = 2
    # A torrent missing from a complete, unsuspicious poll is removed when the next poll still
    # lacks it; one that vanished with many others needs this many polls ...
    mass_confirm_polls: int = 3
    # ... spanning at least this long (or three poll intervals, whichever is longer).
    mass_confirm_seconds: float = 600.0
    # The speed ring covers the longest average a rule may ask for (a week, speeds.py).
    sample_window_seconds: float = 168 * 3600.0
    max_samples: int = 240
