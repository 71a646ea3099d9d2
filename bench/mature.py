"""A day of history for every benchmark user, made by the userstore's own ingest path.

A benchmark that starts from fresh databases measures a young userstore: short speed histories,
no holds, empty logs. Production users have been polled for days. Before a full-stack benchmark
measures anything, each user's database is rebuilt from the torrents its first poll stored, as
if it had been polled for the day before: every ten minutes from 24 h ago to an hour ago, then
every five minutes (the production interval; the speed ring keeps one sample per 10 minutes
beyond the last hour, so the rings are the size a day of 5-minute polls leaves). Counters are
rolled back along each torrent's current speeds, torrents appear at their creation time, active
ones carry a new `updated_at` on every poll (as TorBox sends them), and the rules are evaluated
on every poll, so holds, events, dry-run action records and run logs accumulate as they would.

Then the event and action logs are topped up to their caps with old rows (`IngestConfig`'s
`max_events` and `max_actions`): a user polled for weeks holds that many, and the benchmark must
pay for the indexes and pruning they cost.

The work runs in this process against the databases of a stopped userstore, through the ingest
path the process uses (:func:`userstore_svc.ingest._apply`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workload import rule_docs
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.ingest import IngestConfig, SnapshotIn, _apply
from userstore_svc.rules_service import RuleService
from userstore_svc.store import user_db
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import ACTIVE, Registry

HOUR = 3600.0
DAY = 24 * HOUR
PRODUCTION_INTERVAL = 300.0
COARSE_INTERVAL = 600.0


@dataclass(frozen=True, slots=True)
class Maturity:
    """How old the benchmark's state is."""

    # Virtual history before the first poll, in seconds (0: young state, nothing done).
    history: float = DAY
    # Fill the event and action logs to the caps (the cap comes from IngestConfig).
    fill_logs: bool = True

    @property
    def label(self) -> str:
        """The words a figure carries about its state."""
        if self.history <= 0:
            return "young state: fresh databases"
        return f"state matured over {self.history / HOUR:g} h"


def poll_times(first_poll: float, history: float) -> list[float]:
    """The virtual poll times before `first_poll`: 10-minute steps, the last hour at 5 minutes."""
    times: list[float] = []
    t = first_poll - history
    fine_from = first_poll - HOUR
    while t < first_poll - 1.0:
        times.append(t)
        t += COARSE_INTERVAL if t < fine_from else PRODUCTION_INTERVAL
    return times


def rolled_back(snap: TorrentSnapshot, age: float, at: float) -> TorrentSnapshot | None:
    """The torrent `age` seconds before `snap`, counters rolled back along its speeds.

    None when the torrent did not exist yet. Statuses stay as they are; only the byte counters,
    progress, ratio and `updated_at` move, which is what changes rows and histories per poll.
    """
    if snap.created_at is not None and snap.created_at > at:
        return None
    down = snap.download_speed or 0
    up = snap.upload_speed or 0
    downloaded = snap.total_downloaded
    uploaded = snap.total_uploaded
    if downloaded is not None and down:
        downloaded = max(0, downloaded - int(down * age))
    if uploaded is not None and up:
        uploaded = max(0, uploaded - int(up * age))
    progress = snap.progress
    if snap.size and downloaded is not None and down:
        progress = downloaded / snap.size
    ratio = snap.ratio
    if downloaded and uploaded is not None:
        ratio = uploaded / downloaded
    updated = at if snap.active else min(snap.updated_at or at, at)
    return snap._replace(
        total_downloaded=downloaded,
        total_uploaded=uploaded,
        progress=progress,
        ratio=ratio,
        updated_at=updated,
    )


async def mature_shard(directory: Path, maturity: Maturity) -> dict[str, float]:
    """Mature every user of one stopped userstore's data directory; returns what it did."""
    if maturity.history <= 0:
        return {"users": 0, "polls": 0, "seconds": 0.0}
    started = time.monotonic()
    registry = await Registry.open(directory / "master.sqlite")
    pool = DatabasePool(directory / "users", 4)
    config = IngestConfig()
    polls = 0
    users = registry.user_ids(ACTIVE)
    template = directory / "mature-template.sqlite"
    try:
        for auth_id in users:
            polls += await _mature_user(pool, registry, config, auth_id, maturity, template)
    finally:
        await pool.close()
        await registry.close()
    return {"users": len(users), "polls": polls, "seconds": time.monotonic() - started}


async def _mature_user(
    pool: DatabasePool,
    registry: Registry,
    config: IngestConfig,
    auth_id: str,
    maturity: Maturity,
    template: Path,
) -> int:
    """Replace a user's first poll by a day of polls ending with it.

    Each poll is applied as :meth:`Ingestor.ingest` applies it (``_apply``, then the cached data
    updated as after its commit); the statements of all of them are written in one transaction,
    which leaves the same rows as one transaction per poll at a fraction of the cost.
    """
    async with pool.use(auth_id) as handle:
        data = await user_db.load(handle)
        first_poll = data.last_observed_at
        current = [s.snap for s in data.states.values() if s.present]
    if first_poll is None:
        return 0
    times = poll_times(first_poll, maturity.history)
    await _start_over(pool, config, auth_id, maturity, template, times[0])
    await RuleService(pool, registry, lambda: times[0] - 1.0).save_all(auth_id, rule_docs())
    async with pool.use(auth_id) as handle:
        statements: list[tuple[str, Any]] = []
        data = await user_db.load(handle)
        for t in [*times, first_poll]:
            # A long interval: the first live poll after the day is not a gap (an outage).
            snap = SnapshotIn(f"mature-{t:.0f}", auth_id, t, True, _at(current, first_poll, t), DAY)
            outcome = _apply(data, snap, config)
            statements.extend(outcome.statements)
            outcome.commit_to(data)
        await handle.transaction(statements)
        # What the running userstore reads is the file, not this process's copy.
        handle.cache.clear()
    return len(times) + 1


async def _start_over(
    pool: DatabasePool,
    config: IngestConfig,
    auth_id: str,
    maturity: Maturity,
    template: Path,
    before: float,
) -> None:
    """A new database for the user, as if they had registered before the virtual day.

    With `fill_logs` it holds the filler logs: written once into the first user's file, which is
    then kept as a template and copied for the others (the same rows, far cheaper than writing
    40,000 rows per user).
    """
    async with pool.exclusive(auth_id) as path:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if maturity.fill_logs and template.exists():
            shutil.copyfile(template, path)
            return
    async with pool.use(auth_id, create=True) as handle:
        if maturity.fill_logs:
            await handle.transaction(_filler(config, before))
    if maturity.fill_logs:
        async with pool.exclusive(auth_id) as path:
            # Closed, so the file holds everything (the WAL is checkpointed on close).
            shutil.copyfile(path, template)


def _at(current: Sequence[TorrentSnapshot], first_poll: float, t: float) -> list[TorrentSnapshot]:
    age = first_poll - t
    if age <= 0:
        return list(current)
    return [s for s in (rolled_back(snap, age, t) for snap in current) if s is not None]


_FILL_ACTION = (
    "INSERT INTO actions(id, log_id, rule_id, rule_name, torrent_key, hash, name, magnet, action,"
    " dry_run, status, reason, created_at, completed_at) "
    "VALUES (?, NULL, ?, 'filler', ?, ?, 'filler', NULL, 'stop_seeding', 1, 'dry_run', "
    "'matched', ?, ?)"
)


def _filler(config: IngestConfig, before: float) -> list[tuple[str, Any]]:
    """Old events and settled dry-run actions up to the caps, all older than the virtual day.

    They name torrents that are long gone (keys no torrent of the workload has), so they weigh
    on the tables and their indexes, not on any torrent's cooldown. The actions name rule 1, the
    first rule saved into a new file.
    """
    rule_id = 1
    filler_hash = "0" * 40
    events = [
        (i + 1, -1_000_000 - i % 500, "updated", before - 60.0 - i, '{"filler":true}')
        for i in range(config.max_events)
    ]
    actions = [
        (i + 1, rule_id, -1_000_000 - i % 500, filler_hash, before - 60.0 - i, before)
        for i in range(config.max_actions)
    ]
    # Lists of rows: each statement runs as one executemany.
    return [(user_db.INSERT_EVENT, events), (_FILL_ACTION, actions)]
