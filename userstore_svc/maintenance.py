"""Periodic upkeep of the user databases: optimise, reclaim space, and check integrity.

A database that fails ``integrity_check`` is reported (logged at ERROR and counted), never
silently recreated: recreating it would erase the user's rules, logs and archive.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field

from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import ACTIVE, AUTH_FAILED, Registry

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MaintenanceReport:
    """What one maintenance pass did."""

    checked: int = 0
    damaged: list[str] = field(default_factory=list)


def _maintain(conn: sqlite3.Connection) -> bool:
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        return False
    conn.execute("PRAGMA optimize")
    conn.execute("PRAGMA incremental_vacuum(256)").fetchall()
    # Emptied, not only copied back: a file stays open between polls, and an idle user's WAL
    # would otherwise keep its size (up to WAL_CHECKPOINT_BYTES) until the file closes.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return True


async def maintain_user(pool: DatabasePool, auth_id: str) -> bool:
    """Optimise one user's database; returns False when it fails its integrity check."""
    async with pool.use(auth_id) as handle:
        return await handle.run_in_thread(_maintain)


async def maintain_all(pool: DatabasePool, registry: Registry) -> MaintenanceReport:
    """One pass over every registered user's database."""
    report = MaintenanceReport()
    for auth_id in registry.user_ids(ACTIVE, AUTH_FAILED):
        try:
            healthy = await maintain_user(pool, auth_id)
        except Exception:
            log.exception("maintenance of a user database failed")
            healthy = False
        report.checked += 1
        if not healthy:
            report.damaged.append(auth_id)
            log.error("user database failed its integrity check", extra={"auth_id": auth_id})
    return report
