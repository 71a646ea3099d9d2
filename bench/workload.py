"""A realistic torrent mix that evolves poll by poll, and the rules every benchmark user has.

The mix is the simulator's bulk mix: 20 % downloading, 30 % seeding, 25 % finished and inactive,
15 % dead seeds, 10 % stalled. Between two polls the downloading torrents gain bytes (and may
finish, then seed) and the seeding ones upload: about half of a user's torrents move bytes per
poll; the other active ones (dead seeds, stalled) only get new `updated_at` and `expires_at`, as
TorBox's do on every list, and the inactive ones stay as they were. Polls are a poll interval
apart on a virtual clock, so the derived telemetry sees the time it would see in production.
"""

from __future__ import annotations

import copy
import hashlib
import random
from dataclasses import dataclass
from typing import Any

import orjson
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import torrent_rows
from userstore_svc.convert import ASSET_TYPES
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.core.rules.presets import PRESETS

# A fixed virtual start (late 2027) keeps every run identical; only differences matter.
T0 = 1_800_000_000.0
# Production's default poll interval: the virtual time between two polls of a user.
POLL_INTERVAL = 300.0
MIX: tuple[tuple[str, float], ...] = (
    ("downloading", 0.20),
    ("seeding", 0.30),
    ("finished", 0.25),
    ("dead_seed", 0.15),
    ("stalled", 0.10),
)
_PROFILES = [name for name, _ in MIX]
_WEIGHTS = [weight for _, weight in MIX]
_GB = 1024**3
_MB = 1024**2
INFINITE_ETA = 8_640_000
# TorBox's expires_at follows updated_at by 30 days.
EXPIRY = 30 * 86400.0

_WORDS = (
    "Ocean",
    "Signal",
    "Harbor",
    "Night",
    "Winter",
    "Empire",
    "Garden",
    "Silent",
    "Atlas",
    "Crimson",
    "Echo",
    "Falcon",
    "Horizon",
    "Meridian",
    "North",
    "Orbit",
    "Paper",
    "Quartz",
    "River",
    "Shadow",
    "Summit",
    "Tide",
    "Velvet",
    "Wild",
    "Zenith",
)
_TAGS = ("1080p.WEB-DL.x264", "2160p.BluRay.x265", "720p.HDTV.x264", "FLAC", "1080p.WEB.H264")
_GROUPS = ("NTb", "FLUX", "GROUP", "EDITH", "SuccessfulCrab", "RARBG")
_TRACKERS = (
    "udp://tracker.opentrackr.org:1337/announce",
    "udp://open.demonii.com:1337/announce",
    "https://tracker.private.example/announce",
    None,
)
# The fourth rule's pattern; about 3 % of names carry one of these words.
SAMPLE_PATTERN = r"(?:^|[ ._-])(?:sample|trailer)(?:[ ._-]|$)"


def rule_docs() -> list[dict[str, Any]]:
    """Every user's rules: the three presets enabled every poll, a NAME regex rule and a rule
    with a held-for condition and a day's average (holds and the speed history at work).

    All are dry runs, so a benchmark never sends actions to TorBox (or the simulator): matches
    are still evaluated, explained and logged as they would be for a live rule.
    """
    docs = []
    for preset in PRESETS:
        doc = copy.deepcopy(dict(preset))
        doc.update(enabled=True, trigger={"type": "interval", "value": 0}, dry_run=True)
        docs.append(doc)
    docs.append(
        _dry_rule(
            "Delete samples and trailers",
            "delete",
            {"type": "NAME", "operator": "matches", "value": SAMPLE_PATTERN},
        )
    )
    docs.append(
        _dry_rule(
            "Stop seeding torrents nobody wants",
            "stop_seeding",
            {"type": "PEERS", "operator": "lt", "value": 1, "for_minutes": 120},
            {"type": "AVG_UPLOAD_SPEED", "operator": "lt", "value": 0.05, "hours": 24},
        )
    )
    return docs


def _dry_rule(name: str, action: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    """A dry-run torrent rule evaluated on every poll: one group of `conditions`, all of them."""
    return {
        "name": name,
        "enabled": True,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 0},
        "logicOperator": "and",
        "groups": [{"logicOperator": "and", "conditions": list(conditions)}],
        "action": {"type": action},
        "dry_run": True,
    }


def auth_id(index: int, prefix: str = "bench") -> str:
    """A stable auth id for benchmark user `index` (the sha256 of a made-up key)."""
    return hashlib.sha256(f"{prefix}-user-{index:08d}".encode()).hexdigest()


def _name(rng: random.Random) -> str:
    words = ".".join(rng.sample(_WORDS, rng.randint(1, 3)))
    extra = ".Sample" if rng.random() < 0.015 else ".Trailer" if rng.random() < 0.015 else ""
    episode = f".S{rng.randint(1, 9):02d}E{rng.randint(1, 24):02d}" if rng.random() < 0.5 else ""
    return f"{words}{episode}{extra}.{rng.choice(_TAGS)}-{rng.choice(_GROUPS)}"


@dataclass(slots=True)
class _Rates:
    """How one torrent moves: bytes per second down and up (0 for idle profiles)."""

    down: int
    up: int


class Account:
    """One user's torrents: the current snapshot list, evolved by :meth:`advance`."""

    def __init__(self, seed: int, torrents: int, *, first_id: int = 1, now: float = T0) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.snapshots: list[TorrentSnapshot] = []
        self._rates: list[_Rates] = []
        profiles = self.rng.choices(_PROFILES, _WEIGHTS, k=torrents)
        for offset, profile in enumerate(profiles):
            snap, rates = self._new(first_id + offset, profile)
            self.snapshots.append(snap)
            self._rates.append(rates)
        # Each torrent's row as JSON (what the scheduler sends), refreshed only when it changes.
        self._encoded: list[bytes] = [_row_json(s) for s in self.snapshots]

    def _new(self, torrent_id: int, profile: str) -> tuple[TorrentSnapshot, _Rates]:
        rng = self.rng
        size = rng.randint(200 * _MB, 40 * _GB)
        created = self.now - rng.uniform(3600.0, 30 * 86400.0)
        info_hash = hashlib.sha1(f"{self.rng.random()}-{torrent_id}".encode()).hexdigest()
        tracker = rng.choice(_TRACKERS)
        finished = profile in ("seeding", "finished", "dead_seed")
        downloaded = size if finished else int(size * rng.uniform(0.0, 0.6))
        uploaded = int(downloaded * rng.uniform(0.0, 3.0)) if finished else 0
        rates = _Rates(0, 0)
        state, active, speed_down, speed_up, seeds, peers = "completed", False, 0, 0, 0, 0
        eta = 0
        if profile == "downloading":
            rates = _Rates(rng.randint(1 * _MB, 12 * _MB), rng.randint(0, 512 * 1024))
            state, active, speed_down, speed_up = "downloading", True, rates.down, rates.up
            seeds, peers = rng.randint(3, 80), rng.randint(1, 40)
            eta = int((size - downloaded) / rates.down)
        elif profile == "seeding":
            rates = _Rates(0, rng.randint(64 * 1024, 4 * _MB))
            state, active, speed_up = "uploading", True, rates.up
            seeds, peers = rng.randint(1, 40), rng.randint(1, 60)
        elif profile == "dead_seed":
            state, active = "uploading", True
        elif profile == "stalled":
            state, active, eta = "stalled (no seeds)", True, INFINITE_ETA
        snap = TorrentSnapshot(
            id=torrent_id,
            hash=info_hash,
            name=_name(rng),
            magnet=f"magnet:?xt=urn:btih:{info_hash}",
            size=size,
            active=active,
            created_at=created,
            updated_at=self.now,
            download_state=state,
            seeds=seeds,
            peers=peers,
            ratio=round(uploaded / downloaded, 4) if downloaded else 0.0,
            progress=round(downloaded / size, 6),
            download_speed=speed_down,
            upload_speed=speed_up,
            eta=eta,
            expires_at=self.now + EXPIRY,
            download_present=finished,
            download_finished=finished,
            file_count=rng.randint(1, 40),
            availability=round(rng.uniform(0.5, 20.0), 3) if active else 0.0,
            tracker=tracker,
            total_uploaded=uploaded,
            total_downloaded=downloaded,
            cached=rng.random() < 0.3,
            cached_at=created if rng.random() < 0.3 else None,
            seed_torrent=True,
            long_term_seeding=False,
            private=tracker is not None and "private" in tracker,
            queued=False,
        )
        return snap, rates

    def advance(self, seconds: float = POLL_INTERVAL) -> int:
        """Move the clock on and evolve the torrents; returns how many moved bytes.

        The others that are active get new dates, as TorBox's do on every list.
        """
        self.now += seconds
        rng = self.rng
        changed = 0
        for index, (snap, rates) in enumerate(zip(self.snapshots, self._rates, strict=True)):
            if rates.down == 0 and rates.up == 0:
                if snap.active:
                    # TorBox moves an active item's dates on every list, bytes or no bytes.
                    self.snapshots[index] = snap._replace(
                        updated_at=self.now, expires_at=self.now + EXPIRY
                    )
                    self._encoded[index] = _row_json(self.snapshots[index])
                continue
            jitter = rng.uniform(0.7, 1.3)
            if rates.down:
                new = _downloaded(
                    snap, int(rates.down * jitter), int(rates.up * jitter), seconds, self.now
                )
                if new.download_finished:
                    self._rates[index] = _Rates(0, rates.up or rng.randint(64 * 1024, _MB))
            else:
                up = int(rates.up * jitter)
                uploaded = _known(snap.total_uploaded) + int(up * seconds)
                new = snap._replace(
                    upload_speed=up,
                    total_uploaded=uploaded,
                    ratio=round(uploaded / max(_known(snap.total_downloaded), 1), 4),
                    peers=max(1, _known(snap.peers) + rng.randint(-2, 2)),
                    updated_at=self.now,
                    expires_at=self.now + EXPIRY,
                )
            self.snapshots[index] = new
            self._encoded[index] = _row_json(new)
            changed += 1
        return changed

    def ingest_request(self, poll_id: str, auth_id: str) -> bytes:
        """This poll's IngestRequest as the scheduler sends it to a shard: the items as rows
        (TorrentRows), each encoded once per change, not per poll."""
        rows = pb.TorrentRows(fields=torrent_rows.FIELDS, rows=b"[%b]" % b",".join(self._encoded))
        return pb.IngestRequest(
            snapshot=pb.Snapshot(
                poll_id=poll_id,
                auth_id=auth_id,
                observed_at=self.now,
                complete=True,
                poll_interval_seconds=POLL_INTERVAL,
                torrent_rows=rows,
            )
        ).SerializeToString()


def _known(value: int | None) -> int:
    """A workload value (the workload always sets every number)."""
    assert value is not None
    return value


def _downloaded(
    snap: TorrentSnapshot, down: int, up: int, seconds: float, now: float
) -> TorrentSnapshot:
    size = _known(snap.size)
    downloaded = min(size, _known(snap.total_downloaded) + int(down * seconds))
    uploaded = _known(snap.total_uploaded) + int(up * seconds)
    ratio = round(uploaded / max(downloaded, 1), 4)
    if downloaded >= size:
        return snap._replace(
            download_state="uploading",
            progress=1.0,
            download_speed=0,
            upload_speed=up,
            eta=0,
            download_present=True,
            download_finished=True,
            total_downloaded=downloaded,
            total_uploaded=uploaded,
            ratio=ratio,
            updated_at=now,
            expires_at=now + EXPIRY,
        )
    return snap._replace(
        progress=round(downloaded / size, 6),
        download_speed=down,
        upload_speed=up,
        eta=int((size - downloaded) / max(down, 1)),
        total_downloaded=downloaded,
        total_uploaded=uploaded,
        ratio=ratio,
        updated_at=now,
        expires_at=now + EXPIRY,
    )


def _row_json(s: TorrentSnapshot) -> bytes:
    """A snapshot as the row the scheduler sends (torrent_rows.FIELDS order, kind as asset_type)."""
    return orjson.dumps([*s[:-1], ASSET_TYPES[s.kind]])
