"""Moving a user's database between shards (resharding), one user at a time, online.

The source freezes the user (status ``moving``: schedulers stop polling them, every read and write
answers UNAVAILABLE), waits for work in flight, checkpoints the WAL and streams the file. The
target checks size, sha256 and ``integrity_check`` before installing the file and registering
the user as they were. Only then does the source delete its copy; if anything fails the move is
aborted and the user is active on the source again, untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from common.errors import FailedPrecondition, InvalidArgument
from common.files import private_file
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import ACTIVE, AUTH_FAILED, MOVING, Registry, UserRow

CHUNK = 1 << 20
MAX_DATABASE_BYTES = 16 << 30


@dataclass(frozen=True, slots=True)
class Frozen:
    """A user frozen for a move: their row as it was, and the file to expect."""

    user: UserRow
    size: int
    sha256: str


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _checkpoint_and_digest(path: Path) -> tuple[int, str]:
    """Fold the WAL into the file (so the file alone is the database), then measure it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return _digest(path)


def _integrity(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("PRAGMA integrity_check").fetchone() == ("ok",))
    finally:
        conn.close()


class MoveService:
    """The userstore's side of a move, as source and as target."""

    def __init__(self, pool: DatabasePool, registry: Registry, clock: Callable[[], float]) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock
        # Status before the freeze, to restore on abort.
        self._before: dict[str, str] = {}

    def _require_moving(self, auth_id: str) -> UserRow:
        row = self.registry.get(auth_id)
        if row is None or row.status != MOVING:
            raise FailedPrecondition(
                "the user is not being moved", code="NOT_MOVING", field="auth_id"
            )
        return row

    async def begin(self, auth_id: str) -> Frozen:
        """Freeze the user and make their file complete and stable; report what will be sent."""
        path = self.pool.path_for(auth_id)
        before = await self.registry.set_moving(auth_id, self.clock())
        if before.status != MOVING:
            self._before[auth_id] = before.status
        async with self.pool.exclusive(auth_id):
            if not path.exists():
                raise FailedPrecondition("the user's database is missing", code="DATABASE_MISSING")
            size, sha256 = await asyncio.to_thread(_checkpoint_and_digest, path)
        # A retried freeze reports the status from before the first one.
        status = self._before.get(auth_id, before.status if before.status != MOVING else ACTIVE)
        return Frozen(replace(before, status=status), size, sha256)

    async def export(self, auth_id: str) -> AsyncIterator[bytes]:
        """The frozen user's database file, in chunks."""
        self._require_moving(auth_id)
        async with self.pool.exclusive(auth_id) as path:
            handle = await asyncio.to_thread(path.open, "rb")
            try:
                while block := await asyncio.to_thread(handle.read, CHUNK):
                    yield block
            finally:
                handle.close()

    async def import_user(
        self, user: UserRow, size: int, sha256: str, chunks: AsyncIterator[bytes]
    ) -> bool:
        """Receive a user's database; install it only if it arrived whole and intact."""
        path = self.pool.path_for(user.auth_id)
        if not 0 < size <= MAX_DATABASE_BYTES:
            raise InvalidArgument("size out of range", field="size")
        status = user.status if user.status in (ACTIVE, AUTH_FAILED) else ACTIVE
        temporary = path.with_name(f".import_{user.auth_id}.tmp")
        digest = hashlib.sha256()
        received = 0
        try:
            temporary.unlink(missing_ok=True)
            await asyncio.to_thread(private_file, temporary)  # 0600, like every database
            handle = await asyncio.to_thread(temporary.open, "wb")
            try:
                async for block in chunks:
                    received += len(block)
                    if received > size:
                        raise InvalidArgument("more bytes than announced", field="chunk")
                    digest.update(block)
                    await asyncio.to_thread(handle.write, block)
            finally:
                handle.close()
            if received != size or digest.hexdigest() != sha256:
                raise InvalidArgument(
                    "the database arrived damaged (size or sha256)", field="sha256"
                )
            if not await asyncio.to_thread(_integrity, temporary):
                raise InvalidArgument("the database fails its integrity check", field="chunk")
            async with self.pool.exclusive(user.auth_id):
                replaced = path.exists()
                for suffix in ("-wal", "-shm"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
                os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        await self.registry.install(
            user.auth_id,
            ciphertext=user.key_ciphertext or b"",
            status=status,
            has_enabled_rules=user.has_enabled_rules,
            created_at=user.created_at,
            now=self.clock(),
        )
        return replaced

    async def finish(self, auth_id: str) -> None:
        """The target has the user: delete them here (a tombstone stays in the registry)."""
        self._require_moving(auth_id)
        path = self.pool.path_for(auth_id)
        await self.registry.remove(auth_id, self.clock())
        async with self.pool.exclusive(auth_id):
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        self._before.pop(auth_id, None)

    async def abort(self, auth_id: str) -> None:
        """The move failed: the user is theirs here again, as before the freeze."""
        self._require_moving(auth_id)
        await self.registry.set_status(auth_id, self._before.pop(auth_id, ACTIVE), self.clock())
