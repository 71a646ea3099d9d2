"""Builders for snapshots and poll inputs, so tests say only what matters to them."""

from __future__ import annotations

import hashlib
from typing import Any

from userstore_svc.core.models import PipelineConfig, TorrentSnapshot, TorrentState
from userstore_svc.core.pipeline import PollInput, PollResult, run_poll

T0 = 1_800_000_000.0
CFG = PipelineConfig(stall_after_seconds=600.0)

_BASE = TorrentSnapshot(
    id=1,
    hash="a" * 40,
    name="Some.Torrent",
    magnet="magnet:?xt=urn:btih:" + "a" * 40,
    size=1_000_000,
    active=True,
    created_at=T0 - 3600,
    updated_at=T0,
    download_state="downloading",
    seeds=5,
    peers=5,
    ratio=0.0,
    progress=0.0,
    download_speed=0,
    upload_speed=0,
    eta=600,
    expires_at=None,
    download_present=False,
    download_finished=False,
    file_count=1,
    availability=1.0,
    tracker=None,
    total_uploaded=0,
    total_downloaded=0,
    cached=False,
    cached_at=None,
    seed_torrent=True,
    long_term_seeding=False,
    private=False,
    queued=False,
)

PROFILES: dict[str, dict[str, Any]] = {
    "downloading": {},
    "stalled": {"download_state": "stalled (no seeds)", "seeds": 0},
    "seeding": {
        "download_state": "uploading",
        "download_present": True,
        "download_finished": True,
        "progress": 1.0,
        "total_downloaded": 1_000_000,
    },
    "completed": {
        "download_state": "completed",
        "active": False,
        "download_present": True,
        "download_finished": True,
        "progress": 1.0,
        "total_downloaded": 1_000_000,
    },
    "paused": {"download_state": "paused", "active": False},
    "queued": {"download_state": "queued", "active": False, "queued": True},
}


def hash_for(torrent_id: int, queued: bool = False) -> str:
    """A distinct info hash per id, as TorBox lists one item per hash (id 1 keeps "aaa...")."""
    if torrent_id == 1 and not queued:
        return "a" * 40
    return hashlib.sha1(f"{'q' if queued else 't'}{torrent_id}".encode()).hexdigest()


def snap(profile: str = "downloading", **fields: Any) -> TorrentSnapshot:
    """A snapshot in one of the profiles above, with any fields overridden.

    Unless a test names one, each id gets its own hash: two items with one hash are the same
    torrent to the pipeline (a queued item becoming a torrent, a torrent re-added).
    """
    values = {**PROFILES[profile], **fields}
    if "hash" not in values:
        values["hash"] = hash_for(values.get("id", 1), bool(values.get("queued", False)))
        values.setdefault("magnet", "magnet:?xt=urn:btih:" + values["hash"])
    return _BASE._replace(**values)


class Feed:
    """Feeds successive snapshots of a user through the pipeline, remembering the states."""

    def __init__(self, cfg: PipelineConfig = CFG, interval: float = 60.0) -> None:
        self.cfg = cfg
        self.interval = interval
        self.states: dict[int, TorrentState] = {}
        self.pending: dict[int, tuple[int, bool]] = {}
        self.polls = 0
        self.previous_at: float | None = None
        self.last: PollResult | None = None

    def poll(self, at: float, *torrents: TorrentSnapshot, complete: bool = True) -> PollResult:
        """Apply one snapshot observed at `at` (seconds after T0)."""
        result = run_poll(
            self.states,
            PollInput(
                observed_at=T0 + at,
                complete=complete,
                torrents=torrents,
                max_gap=2 * self.interval,
                baseline=self.polls == 0,
                pending_missing=self.pending,
                previous_at=self.previous_at,
            ),
            self.cfg,
        )
        self.previous_at = max(self.previous_at or T0 + at, T0 + at)
        self.states = result.states
        self.pending = result.pending_missing
        self.polls += 1
        self.last = result
        return result

    def state(self, key: int = 1) -> TorrentState:
        """The remembered state of one torrent."""
        return self.states[key]

    def event_types(self) -> list[str]:
        """The types of the events of the last poll."""
        assert self.last is not None
        return [e.type for e in self.last.events]
