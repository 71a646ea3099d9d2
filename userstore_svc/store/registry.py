"""The registry of users: who is registered, their key ciphertext, status and counters.

The whole registry is mirrored in memory (a row is ~200 bytes; 60,000 users is ~12 MB), so the
per-request "is this user registered?" check costs no I/O. Every change bumps a sequence number
that schedulers sync from incrementally; a random epoch, made once per registry, tells them to
resync from zero when the file was replaced. Poll counters are flushed in batches.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite

from common.auth import is_valid_auth_id
from common.errors import InvalidArgument, Unavailable, UserNotRegistered
from common.files import private_file
from userstore_svc.store.migrations import REGISTRY_MIGRATIONS, migrate
from userstore_svc.store.pool import PRAGMAS, WAL_PRAGMA

ACTIVE = "active"
AUTH_FAILED = "auth_failed"
REMOVED = "removed"
MOVING = "moving"
STATUSES = (ACTIVE, AUTH_FAILED, REMOVED, MOVING)


@dataclass(frozen=True, slots=True)
class UserRow:
    """One registry row."""

    auth_id: str
    status: str
    key_ciphertext: bytes | None
    has_enabled_rules: bool
    seq: int
    created_at: float
    updated_at: float
    last_seen_at: float | None
    last_poll_at: float | None
    torrent_count: int
    polls: int


_COLUMNS = (
    "auth_id, status, key_ciphertext, has_enabled_rules, seq, created_at, updated_at, "
    "last_seen_at, last_poll_at, torrent_count, polls"
)


class Registry:
    """The registry database and its in-memory mirror (one instance per userstore process)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        epoch: str,
        seq: int,
        rows: dict[str, UserRow],
        upload_due: dict[str, float] | None = None,
    ):
        self._conn = conn
        # Users with queued uploads: when their earliest row is due (a mirror of upload_due).
        self._upload_due: dict[str, float] = dict(upload_due or {})
        self.epoch = epoch
        self.seq = seq
        self._rows = rows
        # auth ids by the seq of their last change, oldest first (writes append at the end).
        self._by_seq: dict[int, str] = {
            row.seq: row.auth_id for row in sorted(rows.values(), key=lambda r: r.seq)
        }
        self._dirty_counters: set[str] = set()
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Registry:
        """Open (creating if needed) and migrate the registry, and load it into memory."""
        # Private (0600 in a 0700 folder): it holds every user's key ciphertext.
        await asyncio.to_thread(private_file, path)
        await asyncio.to_thread(_prepare, path)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.executescript(";".join(PRAGMAS))
            meta: dict[str, str] = {
                str(k): str(v)
                for k, v in await conn.execute_fetchall("SELECT key, value FROM registry_meta")
            }
            epoch = str(meta.get("epoch") or secrets.token_hex(8))
            if "epoch" not in meta:
                await conn.execute(
                    "INSERT INTO registry_meta(key, value) VALUES ('epoch', ?)", (epoch,)
                )
            rows = {
                row[0]: _row(row)
                for row in await conn.execute_fetchall(f"SELECT {_COLUMNS} FROM users")
            }
            seq = max((row.seq for row in rows.values()), default=0)
            due = {
                str(a): float(d)
                for a, d in await conn.execute_fetchall("SELECT auth_id, due_at FROM upload_due")
            }
        except BaseException:
            await conn.close()
            raise
        return cls(conn, epoch, seq, rows, due)

    async def close(self) -> None:
        """Flush counters and close the database."""
        await self.flush_counters()
        await self._conn.close()

    # Reads (from memory) ------------------------------------------------------------------------

    def get(self, auth_id: str) -> UserRow | None:
        """A user's row, including removed tombstones."""
        return self._rows.get(auth_id)

    def require(self, auth_id: str) -> UserRow:
        """A registered (not removed) user's row, or UserNotRegistered."""
        if not is_valid_auth_id(auth_id):
            raise InvalidArgument("auth_id must be 64 lowercase hex digits", field="auth_id")
        row = self._rows.get(auth_id)
        if row is None or row.status == REMOVED:
            raise UserNotRegistered()
        if row.status == MOVING:
            raise Unavailable(
                "this user is being moved to another shard; retry in a moment", code="USER_MOVING"
            )
        return row

    def changed_after(self, seq: int, limit: int) -> tuple[list[UserRow], bool]:
        """Rows changed after `seq`, oldest change first, and whether more remain."""
        newer: list[str] = []
        for row_seq in reversed(self._by_seq):
            if row_seq <= seq:
                break
            newer.append(self._by_seq[row_seq])
        newer.reverse()
        return [self._rows[a] for a in newer[:limit]], len(newer) > limit

    def user_ids(self, *statuses: str) -> list[str]:
        """The auth ids of users in any of the given statuses."""
        return [a for a, r in self._rows.items() if r.status in statuses]

    def counts(self) -> tuple[int, int]:
        """(registered users, active users)."""
        registered = sum(1 for r in self._rows.values() if r.status != REMOVED)
        active = sum(1 for r in self._rows.values() if r.status == ACTIVE)
        return registered, active

    # Writes ------------------------------------------------------------------------------------

    async def _write(self, row: UserRow) -> UserRow:
        async with self._lock:
            return await self._write_locked(row)

    async def _write_locked(self, row: UserRow) -> UserRow:
        self.seq += 1
        old = self._rows.get(row.auth_id)
        row = replace(row, seq=self.seq)
        await self._conn.execute(
            f"INSERT OR REPLACE INTO users ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.auth_id,
                row.status,
                row.key_ciphertext,
                int(row.has_enabled_rules),
                row.seq,
                row.created_at,
                row.updated_at,
                row.last_seen_at,
                row.last_poll_at,
                row.torrent_count,
                row.polls,
            ),
        )
        self._rows[row.auth_id] = row
        if old is not None:
            self._by_seq.pop(old.seq, None)
        self._by_seq[row.seq] = row.auth_id
        self._dirty_counters.discard(row.auth_id)
        return row

    async def register(
        self, auth_id: str, ciphertext: bytes, now: float
    ) -> tuple[UserRow, bool, bool]:
        """Add a user or refresh their key; returns (row, was_created, reactivated)."""
        old = self._rows.get(auth_id)
        if old is None or old.status == REMOVED:
            row = UserRow(auth_id, ACTIVE, ciphertext, False, 0, now, now, None, None, 0, 0)
            return await self._write(row), True, False
        if old.status == ACTIVE and old.key_ciphertext == ciphertext:
            return old, False, False  # nothing changed: no write, no sequence bump
        reactivated = old.status == AUTH_FAILED
        row = replace(old, status=ACTIVE, key_ciphertext=ciphertext, updated_at=now)
        return await self._write(row), False, reactivated

    async def remove(self, auth_id: str, now: float) -> bool:
        """Tombstone a user (their key ciphertext is erased); False when not registered."""
        old = self._rows.get(auth_id)
        if old is None or old.status == REMOVED:
            return False
        await self._write(
            replace(
                old, status=REMOVED, key_ciphertext=None, has_enabled_rules=False, updated_at=now
            )
        )
        await self.set_upload_due(auth_id, None)  # their queue goes with their database
        return True

    def upload_due_at(self, auth_id: str) -> float | None:
        """When this user's earliest queued upload is due, or None when none is queued."""
        return self._upload_due.get(auth_id)

    def due_uploads(self, now: float, limit: int) -> list[tuple[str, float]]:
        """Active users with an upload due by `now`, earliest first (at most `limit`)."""
        due = [
            (auth_id, at)
            for auth_id, at in self._upload_due.items()
            if at <= now and (row := self._rows.get(auth_id)) is not None and row.status == ACTIVE
        ]
        due.sort(key=lambda pair: (pair[1], pair[0]))
        return due[:limit]

    async def set_upload_due(self, auth_id: str, due_at: float | None) -> None:
        """Record when the user's earliest upload is due (None: nothing queued).

        Callers hold the user's database lock, so a claim's "nothing left" cannot overwrite a
        new row's "due now". The row is written before the memory, so a failed write leaves the
        mirror as the file says.
        """
        if self._upload_due.get(auth_id) == due_at:
            return
        async with self._lock:
            if due_at is None:
                await self._conn.execute("DELETE FROM upload_due WHERE auth_id = ?", (auth_id,))
                self._upload_due.pop(auth_id, None)
            else:
                await self._conn.execute(
                    "INSERT OR REPLACE INTO upload_due(auth_id, due_at) VALUES (?, ?)",
                    (auth_id, due_at),
                )
                self._upload_due[auth_id] = due_at

    async def set_status(self, auth_id: str, status: str, now: float) -> None:
        """Mark a registered user active or stopped after authentication failures."""
        old = self._rows.get(auth_id)
        if old is None or old.status == REMOVED:
            raise UserNotRegistered()
        if old.status != status:
            await self._write(replace(old, status=status, updated_at=now))

    async def set_moving(self, auth_id: str, now: float) -> UserRow:
        """Freeze a user for a move; returns the row as it was before."""
        old = self._rows.get(auth_id)
        if old is None or old.status == REMOVED:
            raise UserNotRegistered()
        if old.status != MOVING:
            await self._write(replace(old, status=MOVING, updated_at=now))
        return old

    async def install(
        self,
        auth_id: str,
        *,
        ciphertext: bytes,
        status: str,
        has_enabled_rules: bool,
        created_at: float,
        now: float,
    ) -> None:
        """Register a user moved here from another shard, as they were there."""
        old = self._rows.get(auth_id)
        row = UserRow(
            auth_id,
            status,
            ciphertext,
            has_enabled_rules,
            0,
            created_at,
            now,
            old.last_seen_at if old else None,
            old.last_poll_at if old else None,
            old.torrent_count if old else 0,
            old.polls if old else 0,
        )
        await self._write(row)

    async def set_has_enabled_rules(self, auth_id: str, value: bool, now: float) -> None:
        """Record whether the user has an enabled rule (schedulers poll idle users less often)."""
        old = self._rows.get(auth_id)
        if old is not None and old.status != REMOVED and old.has_enabled_rules != value:
            await self._write(replace(old, has_enabled_rules=value, updated_at=now))

    def note_poll(self, auth_id: str, observed_at: float, torrents: int) -> None:
        """Count a poll in memory; :meth:`flush_counters` writes the counters in one batch."""
        old = self._rows.get(auth_id)
        if old is None or old.status == REMOVED:
            return
        self._rows[auth_id] = replace(
            old, last_poll_at=observed_at, torrent_count=torrents, polls=old.polls + 1
        )
        self._dirty_counters.add(auth_id)

    def note_seen(self, auth_id: str, now: float) -> None:
        """Record that the user was active in the web app (flushed with the counters)."""
        old = self._rows.get(auth_id)
        if old is not None and old.status != REMOVED:
            self._rows[auth_id] = replace(old, last_seen_at=now)
            self._dirty_counters.add(auth_id)

    async def flush_counters(self) -> int:
        """Write the counters changed since the last flush in one transaction (no seq bump)."""
        if not self._dirty_counters:
            return 0
        async with self._lock:
            rows = [self._rows[a] for a in self._dirty_counters if a in self._rows]
            self._dirty_counters.clear()
            await self._conn.execute("BEGIN")
            try:
                await self._conn.executemany(
                    "UPDATE users SET last_poll_at=?, torrent_count=?, polls=?, last_seen_at=? "
                    "WHERE auth_id=?",
                    [
                        (r.last_poll_at, r.torrent_count, r.polls, r.last_seen_at, r.auth_id)
                        for r in rows
                    ],
                )
                await self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # a full disk rolls back by itself
                    await self._conn.execute("ROLLBACK")
                raise
            return len(rows)


def _prepare(path: Path) -> None:
    """Create or migrate the registry file before the long-lived connection opens it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(WAL_PRAGMA)
        conn.executescript(";".join(PRAGMAS))
        migrate(conn, REGISTRY_MIGRATIONS)
    finally:
        conn.close()


def _row(row: Sequence[Any]) -> UserRow:
    values = tuple(row)
    return UserRow(
        auth_id=values[0],
        status=values[1],
        key_ciphertext=values[2],
        has_enabled_rules=bool(values[3]),
        seq=values[4],
        created_at=values[5],
        updated_at=values[6],
        last_seen_at=values[7],
        last_poll_at=values[8],
        torrent_count=values[9],
        polls=values[10],
    )
