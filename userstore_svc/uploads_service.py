"""TBM's upload queue for one user: staging, queueing, the user's operations and the worker's.

Every change runs under the user's database lock and then records, in the registry, when the
user's earliest upload is due, so the scheduler's worker learns of it without scanning shards.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from common.errors import InvalidArgument, NotFound
from userstore_svc.store import uploads as store
from userstore_svc.store.pool import DatabasePool, Handle
from userstore_svc.store.registry import Registry
from userstore_svc.store.uploads import Claimed, NewUpload, Outcome, TypeStats, UploadRow

EXTENSIONS = {"torrent": ".torrent", "usenet": ".nzb"}
UPLOAD_NOT_FOUND = "Upload not found"
NO_FILE = "This upload does not have a downloadable file"
FILE_GONE = "File not found on server"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Quota:
    """TBM's LIMITED tier: staged bytes and files a user may keep (evicting finished ones)."""

    max_bytes: int = 100 * 1024 * 1024
    max_files: int = 500


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of rows with the counts and statistics the Uploads page shows."""

    rows: list[UploadRow]
    total: int
    status_counts: dict[str, int]
    statistics: list[TypeStats]


def staged_path(auth_id: str, kind: str, filename: str, now: float) -> str:
    """TBM's relative path: user_<authId>/<type>/<sanitized base>_<epoch ms>_<random><ext>."""
    pure = PurePosixPath(filename.replace("\\", "/")).name
    ext = PurePosixPath(pure).suffix.lower()
    base = _UNSAFE.sub("_", pure[: len(pure) - len(ext)] if ext else pure)[:100]
    return f"user_{auth_id}/{kind}/{base}_{int(now * 1000)}_{secrets.token_hex(3)}{ext}"


def owns(auth_id: str, path: str) -> bool:
    """Whether a client's path lies in the user's own staging folder (no parent steps)."""
    parts = path.replace("\\", "/").split("/")
    return len(parts) >= 2 and parts[0] == f"user_{auth_id}" and ".." not in parts


class UploadService:
    """The queue in each user's database; the registry learns when each user is next due."""

    def __init__(
        self,
        pool: DatabasePool,
        registry: Registry,
        clock: Callable[[], float],
        quota: Quota | None = None,
    ) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock
        self.quota = quota or Quota()

    async def _wake(self, auth_id: str, now: float) -> None:
        """Mark the user due now, before a row is written.

        A crash in between leaves a spurious wake-up, never a queued row the worker misses.
        """
        current = self.registry.upload_due_at(auth_id)
        await self.registry.set_upload_due(auth_id, now if current is None else min(current, now))

    async def _mark_due(self, auth_id: str, handle: Handle) -> None:
        """Tell the registry when this user's earliest upload is due (under the user's lock)."""
        await self.registry.set_upload_due(auth_id, await handle.run(store.next_due))

    async def stage(self, auth_id: str, kind: str, filename: str, data: bytes) -> str:
        """Store a file; older finished uploads' files may be evicted for the quota."""
        self.registry.require(auth_id)
        if kind not in EXTENSIONS:
            raise InvalidArgument("Invalid type. Must be torrent, usenet, or webdl", field="type")
        now = self.clock()
        path = staged_path(auth_id, kind, filename, now)
        async with self.pool.use(auth_id) as handle:
            # Up to 10 MB in one statement: on the pool's threads, not the event loop.
            await handle.write_in_thread(store.stage_file, path, kind, data, now)
            await handle.write(
                store.enforce_quota, self.quota.max_bytes, self.quota.max_files, [path]
            )
        return path

    async def delete_staged(self, auth_id: str, path: str) -> None:
        """Forget a staged file of the user (a path elsewhere names nothing of theirs)."""
        self.registry.require(auth_id)
        if not owns(auth_id, path):
            return
        async with self.pool.use(auth_id) as handle:
            await handle.write(store.delete_file, path)

    async def create(self, auth_id: str, items: Sequence[NewUpload]) -> list[UploadRow]:
        """Queue rows in one transaction (committed before this returns)."""
        self.registry.require(auth_id)
        for item in items:
            if item.type not in store.TYPES:
                raise InvalidArgument(
                    "Invalid type. Must be torrent, usenet, or webdl", field="type"
                )
            if item.file_path is not None and not owns(auth_id, item.file_path):
                raise InvalidArgument(
                    "Invalid file path: file must belong to authenticated user",
                    field="file_path",
                )
        if not items:
            return []
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            await self._wake(auth_id, now)
            rows = await handle.write(store.insert, items, now)
            keep = [i.file_path for i in items if i.file_path]
            await handle.write(
                store.enforce_quota, self.quota.max_bytes, self.quota.max_files, keep
            )
            await self._mark_due(auth_id, handle)
        return rows

    async def restore_archived(self, auth_id: str, archive_id: int) -> UploadRow:
        """Queue an archived torrent again and forget its archive row (one transaction)."""
        self.registry.require(auth_id)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            await self._wake(auth_id, now)
            row = await handle.write(store.restore_archived, archive_id, now)
            await self._mark_due(auth_id, handle)
        if row is None:
            raise NotFound("Archived download not found", code="ARCHIVE_NOT_FOUND", field="id")
        return row

    async def listing(
        self, auth_id: str, status: str, kind: str, search: str, page: int, limit: int
    ) -> Listing:
        """A page of rows with status counts and per-type statistics."""
        self.registry.require(auth_id)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            rows, total = await handle.run(store.listing, status, kind, search, page, limit)
            counts = await handle.run(store.status_counts, kind)
            stats = await handle.run(store.statistics, now)
        return Listing(rows, total, counts, stats)

    async def get(self, auth_id: str, upload_id: int) -> UploadRow:
        """One row (NOT_FOUND "Upload not found")."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            row = await handle.run(store.get, upload_id)
        if row is None:
            raise _not_found()
        return row

    async def file(self, auth_id: str, upload_id: int) -> tuple[UploadRow, bytes]:
        """A row and its staged file, with TBM's three refusals."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            row = await handle.run(store.get, upload_id)
            if row is None:
                raise _not_found()
            if row.upload_type != "file" or not row.file_path:
                raise InvalidArgument(NO_FILE, code="NO_FILE", field="id")
            data = await handle.run(store.file_of, row.file_path)
        if data is None:
            raise NotFound(FILE_GONE, code="FILE_NOT_FOUND", field="id")
        return row, data

    async def retry(self, auth_id: str, ids: Sequence[int]) -> tuple[int, list[UploadRow]]:
        """Re-queue the failed rows among `ids`; returns (rows found, rows re-queued)."""
        self.registry.require(auth_id)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            await self._wake(auth_id, now)
            found, requeued = await handle.write(store.retry, ids, now)
            rows = [r for i in requeued if (r := await handle.run(store.get, i)) is not None]
            await self._mark_due(auth_id, handle)
        return found, rows

    async def reorder(self, auth_id: str, upload_id: int, old: int, new: int) -> UploadRow:
        """Move one queued row, in TBM's words when refused."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            verdict, row = await handle.write(store.reorder, upload_id, old, new, self.clock())
        if verdict == "not_found":
            raise _not_found()
        if verdict == "not_queued":
            raise InvalidArgument("Can only reorder queued uploads", field="id")
        if verdict == "stale":
            raise InvalidArgument("old_order does not match current queue_order", field="old_order")
        assert row is not None
        return row

    async def delete(self, auth_id: str, ids: Sequence[int]) -> int:
        """Delete rows (an in-flight create's later report is then ignored)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            deleted = await handle.write(store.delete, ids)
            await self._mark_due(auth_id, handle)
        return deleted

    # The worker's side -------------------------------------------------------------------------

    def due(self, now: float, limit: int) -> list[tuple[str, float]]:
        """Users with an upload (or an unconfirmed claim) due by `now`, earliest first."""
        return self.registry.due_uploads(now, limit)

    async def claim(self, auth_id: str, worker: str, limit: int, lease: float) -> list[Claimed]:
        """Claim a bounded batch; a row whose staged file is gone fails instead of being sent."""
        self.registry.require(auth_id)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            claimed = await handle.write(store.claim, worker, max(1, limit), lease, now)
            sendable = []
            for item in claimed:
                if item.row.upload_type == "file" and item.file_data is None:
                    await handle.write(store.fail_missing_file, item.row.id, item.claim, now)
                else:
                    sendable.append(item)
            await self._mark_due(auth_id, handle)
        return sendable

    async def report(self, auth_id: str, upload_id: int, token: str, outcome: Outcome) -> bool:
        """Apply a claimed row's outcome; False when the claim is no longer held."""
        self.registry.require(auth_id)
        if outcome.status not in ("completed", "failed", "queued"):
            raise InvalidArgument("status must be completed, failed or queued", field="status")
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            applied = await handle.write(store.report, upload_id, token, outcome, now)
            await self._mark_due(auth_id, handle)
        return applied


def _not_found() -> NotFound:
    return NotFound(UPLOAD_NOT_FOUND, code="UPLOAD_NOT_FOUND", field="id")
