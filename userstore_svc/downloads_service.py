"""Archived downloads, protection, and per-torrent seeding limits for one user."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import AlreadyExists, InvalidArgument, NotFound
from userstore_svc.core.rules.plan import TorrentLimit
from userstore_svc.store import user_db
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry

MAX_IDS = 1000
MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class Archived:
    """An archived download: enough to restore it from its magnet."""

    id: int
    torrent_id: int
    hash: str
    name: str
    tracker: str | None
    magnet: str | None
    archived_at: float


@dataclass(frozen=True, slots=True)
class Limits:
    """A torrent's own seeding limits."""

    torrent_id: int
    seed_ratio: float | None
    seed_time_hours: float | None
    updated_at: float


_ARCHIVE_COLUMNS = "id, torrent_id, hash, name, tracker, magnet, archived_at"


def _positive_ids(ids: Sequence[int], field: str) -> list[int]:
    if len(ids) > MAX_IDS:
        raise InvalidArgument(f"at most {MAX_IDS} ids at once", field=field)
    bad = [i for i in ids if i <= 0]
    if bad:
        raise InvalidArgument(f"ids must be positive integers, not {bad[0]}", field=field)
    return sorted(set(ids))


class DownloadService:
    """Archive rows, protection flags and limits (all in the user's database)."""

    def __init__(self, pool: DatabasePool, registry: Registry, clock: Callable[[], float]) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock

    async def list_archived(
        self, auth_id: str, page: int, limit: int, search: str
    ) -> tuple[list[Archived], int]:
        """A page of archived downloads, newest first, optionally filtered by a search text."""
        self.registry.require(auth_id)
        page = max(1, page or 1)
        limit = max(1, min(limit or 50, 1000))
        where, params = "", []
        if search:
            where = (
                "WHERE name LIKE ?1 ESCAPE '\\' OR hash LIKE ?1 ESCAPE '\\' "
                "OR CAST(torrent_id AS TEXT) LIKE ?1 ESCAPE '\\' OR tracker LIKE ?1 ESCAPE '\\'"
            )
            pattern = (
                "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            params = [pattern]
        async with self.pool.use(auth_id) as handle:
            ((total,),) = await handle.fetchall(
                f"SELECT COUNT(*) FROM archived_downloads {where}", params
            )
            rows = await handle.fetchall(
                f"SELECT {_ARCHIVE_COLUMNS} FROM archived_downloads {where} "
                "ORDER BY archived_at DESC, id DESC LIMIT ? OFFSET ?",
                [*params, limit, (page - 1) * limit],
            )
        return [Archived(*row) for row in rows], int(total)

    async def create_archived(
        self,
        auth_id: str,
        torrent_id: int,
        info_hash: str,
        name: str,
        tracker: str | None,
        magnet: str | None,
    ) -> Archived:
        """Archive a download by hand (TBM's archive button); 409 when already archived."""
        self.registry.require(auth_id)
        if torrent_id <= 0:
            raise InvalidArgument("torrent_id must be a positive integer", field="torrent_id")
        if not info_hash or len(info_hash) > 128:
            raise InvalidArgument("hash is required", field="hash")
        for field, value in (("name", name), ("tracker", tracker), ("magnet", magnet)):
            if value is not None and len(value) > MAX_TEXT:
                raise InvalidArgument(f"longer than {MAX_TEXT} characters", field=field)
        if magnet is not None and not magnet.startswith("magnet:"):
            raise InvalidArgument("must be a magnet: URI", field="magnet")
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            existing = await handle.fetchall(
                "SELECT id FROM archived_downloads WHERE torrent_id=?", (torrent_id,)
            )
            if existing:
                raise AlreadyExists("Download already archived", code="ALREADY_ARCHIVED")
            data = await user_db.load(handle)
            (archive_id,) = user_db.take_ids(data, "archived_downloads", 1)
            await handle.transaction(
                [
                    (
                        f"INSERT INTO archived_downloads({_ARCHIVE_COLUMNS}) "
                        "VALUES (?,?,?,?,?,?,?)",
                        (archive_id, torrent_id, info_hash, name or "", tracker, magnet, now),
                    )
                ],
            )
        return Archived(archive_id, torrent_id, info_hash, name or "", tracker, magnet, now)

    async def get_archived(self, auth_id: str, archive_id: int) -> Archived:
        """One archived download (NOT_FOUND when unknown)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            rows = await handle.fetchall(
                f"SELECT {_ARCHIVE_COLUMNS} FROM archived_downloads WHERE id=?", (archive_id,)
            )
        if not rows:
            raise NotFound(
                f"Archived download {archive_id} not found", code="ARCHIVE_NOT_FOUND", field="id"
            )
        return Archived(*next(iter(rows)))

    async def delete_archived(self, auth_id: str, archive_id: int) -> None:
        """Remove an archive row (not the torrent); NOT_FOUND when unknown."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            deleted = await handle.execute(
                "DELETE FROM archived_downloads WHERE id=?", (archive_id,)
            )
            if deleted == 0:
                raise NotFound(
                    f"Archived download {archive_id} not found",
                    code="ARCHIVE_NOT_FOUND",
                    field="id",
                )

    async def get_protected(self, auth_id: str) -> list[int]:
        """The torrent ids automation must never stop, archive or delete."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            return sorted((await user_db.load(handle)).protected)

    async def set_protected(self, auth_id: str, ids: Sequence[int], protected: bool) -> list[int]:
        """Protect or unprotect torrents; returns the full protected set."""
        self.registry.require(auth_id)
        wanted = _positive_ids(ids, "download_ids")
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            data = await user_db.load(handle)
            statement: tuple[str, list[tuple[Any, ...]]]
            if protected:
                statement = (
                    "INSERT OR IGNORE INTO protected_downloads(torrent_id, protected_at) "
                    "VALUES (?,?)",
                    [(i, now) for i in wanted],
                )
                new = data.protected | frozenset(wanted)
            else:
                statement = (
                    "DELETE FROM protected_downloads WHERE torrent_id=?",
                    [(i,) for i in wanted],
                )
                new = data.protected - frozenset(wanted)
            await handle.transaction([statement])
            data.protected = new
            return sorted(new)

    async def get_limits(self, auth_id: str, torrent_id: int) -> Limits | None:
        """A torrent's own seeding limits, if it has any."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            rows = list(
                await handle.fetchall(
                    "SELECT torrent_id, seed_ratio, seed_time_hours, updated_at "
                    "FROM torrent_limits "
                    "WHERE torrent_id=?",
                    (torrent_id,),
                )
            )
        return Limits(*rows[0]) if rows else None

    async def set_limits(
        self,
        auth_id: str,
        torrent_id: int,
        seed_ratio: float | None,
        seed_time_hours: float | None,
        clear: bool,
    ) -> Limits | None:
        """Set (or clear) a torrent's own seeding limits; at least one limit when setting."""
        self.registry.require(auth_id)
        if torrent_id <= 0:
            raise InvalidArgument("torrent_id must be a positive integer", field="torrent_id")
        if not clear:
            if seed_ratio is None and seed_time_hours is None:
                raise InvalidArgument(
                    "give seed_ratio, seed_time_hours or both", field="seed_ratio"
                )
            for field, value in (("seed_ratio", seed_ratio), ("seed_time_hours", seed_time_hours)):
                if value is not None and not (0 < value < 1e6):
                    raise InvalidArgument("must be a positive number", field=field)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            data = await user_db.load(handle)
            if clear:
                await handle.transaction(
                    [("DELETE FROM torrent_limits WHERE torrent_id=?", (torrent_id,))]
                )
                data.limits.pop(torrent_id, None)
                return None
            await handle.transaction(
                [
                    (
                        "INSERT OR REPLACE INTO torrent_limits(torrent_id, seed_ratio, "
                        "seed_time_hours, updated_at) VALUES (?,?,?,?)",
                        (torrent_id, seed_ratio, seed_time_hours, now),
                    )
                ],
            )
            data.limits[torrent_id] = TorrentLimit(seed_ratio, seed_time_hours)
        return Limits(torrent_id, seed_ratio, seed_time_hours, now)
