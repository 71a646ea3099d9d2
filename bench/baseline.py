"""What the machine's storage allows: a raw SQLite upsert of the same rows, one file per user.

For each user: open the file, set the userstore's journal pragmas, upsert every row of the user's
``torrents`` table (same columns as the real schema) in one transaction, close. No pipeline, no
asyncio, no cache: the figure every other throughput is compared with.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.workload import POLL_INTERVAL, Account
from userstore_svc.core.models import PipelineConfig
from userstore_svc.core.pipeline import PollInput, run_poll
from userstore_svc.store import user_db
from userstore_svc.store.migrations import USER_MIGRATIONS, migrate

Row = tuple[Any, ...]
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def torrents_table_sql() -> str:
    """The real schema's torrents table as every migration leaves it (built, not copied).

    The migrations run on an in-memory database, so columns added later by ALTER TABLE are in it.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn, USER_MIGRATIONS)
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'torrents'"
        ).fetchone()
    finally:
        conn.close()
    # A rebuilt table is stored as `CREATE TABLE "torrents"` (SQLite quotes a renamed name).
    return re.sub(r'^CREATE TABLE "?torrents"?', "CREATE TABLE IF NOT EXISTS torrents", str(sql))


def user_rows(users: int, torrents: int, seed: int) -> list[list[Row]]:
    """The rows the userstore would hold for each user after two polls of the workload."""
    cfg = PipelineConfig()
    everyone = []
    for index in range(users):
        account = Account(seed * 100_003 + index, torrents)
        states: dict[int, Any] = {}
        for poll in range(2):
            if poll:
                account.advance()
            states = run_poll(
                states,
                PollInput(
                    observed_at=account.now,
                    complete=True,
                    torrents=account.snapshots,
                    max_gap=2.0 * POLL_INTERVAL,
                    baseline=poll == 0,
                    pending_missing={},
                ),
                cfg,
            ).states
        everyone.append([user_db.state_row(s) for s in states.values()])
    return everyone


def _upsert_all(directory: Path, rows_by_user: Sequence[Sequence[Row]], create: str) -> int:
    insert = user_db.INSERT_TORRENT
    written = 0
    for index, rows in enumerate(rows_by_user):
        conn = sqlite3.connect(directory / f"user_{index:06d}.sqlite", isolation_level=None)
        try:
            for pragma in PRAGMAS:
                conn.execute(pragma)
            conn.execute(create)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
        finally:
            conn.close()
        written += len(rows)
    return written


def run(directory: Path, rows_by_user: Sequence[Sequence[Row]], runs: int) -> list[float]:
    """Rows per second of each timed run (files are created by an untimed first pass)."""
    directory.mkdir(parents=True, exist_ok=True)
    create = torrents_table_sql()
    _upsert_all(directory, rows_by_user, create)
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        written = _upsert_all(directory, rows_by_user, create)
        rates.append(written / (time.perf_counter() - started))
    return rates
