"""Archived downloads, protection, and per-torrent seeding limits for one user."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from userstore_svc.core.models import Event
from userstore_svc.core.rules.plan import TorrentLimit, protected_keys
from userstore_svc.hub import PROTECTION_CHANGED, EventHub
from userstore_svc.store import user_db
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry

MAX_IDS = 1000
MAX_TEXT = 2000
MAX_BULK_ARCHIVE = 500
# The event TBM's frontend listens for, spelled as it compares it.
# TBM's destructive download operations: the ones protection refuses.
DESTRUCTIVE_OPERATIONS = ("delete", "archive", "stop_seeding")


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


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One download to archive in bulk."""

    torrent_id: int
    hash: str
    name: str | None
    tracker: str | None
    magnet: str | None


def blocked_ids(data: user_db.UserData, ids: Sequence[int]) -> set[int]:
    """The ids protection covers: protected ids and every item sharing a protected item's hash.

    TBM asks by the id it shows: a torrent id or a queued id (separate id spaces here), so an id
    is blocked when the torrent or the queued item with that id is covered (too much protection
    is safe; too little loses a download).
    """
    shielded = protected_keys(data.states, data.protected)
    return {i for i in ids if i in data.protected or i in shielded or -i in shielded}


def _positive_ids(ids: Sequence[int], field: str) -> list[int]:
    if len(ids) > MAX_IDS:
        raise InvalidArgument(f"at most {MAX_IDS} ids at once", field=field)
    bad = [i for i in ids if i <= 0]
    if bad:
        raise InvalidArgument(f"ids must be positive integers, not {bad[0]}", field=field)
    return sorted(set(ids))


class DownloadService:
    """Archive rows, protection flags and limits (all in the user's database)."""

    def __init__(
        self,
        pool: DatabasePool,
        registry: Registry,
        clock: Callable[[], float],
        hub: EventHub | None = None,
    ) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock
        self.hub = hub

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
            data = await user_db.load(handle)
            # Protection first, as TBM checks it: a protected download is never archived.
            if blocked_ids(data, [torrent_id]):
                raise PermissionDenied(
                    "Download is protected", code="DOWNLOAD_PROTECTED", field="torrent_id"
                )
            existing = await handle.fetchall(
                "SELECT id FROM archived_downloads WHERE torrent_id=?", (torrent_id,)
            )
            if existing:
                raise AlreadyExists("Download already archived", code="ALREADY_ARCHIVED")
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

    async def archive_bulk(
        self, auth_id: str, entries: Sequence[ArchiveEntry]
    ) -> tuple[list[int], list[int]]:
        """Archive many downloads: (ids now archived, new or not; ids protection blocked).

        Entries without a positive id or a hash are skipped, as TBM does; a repeated id counts
        once (the first entry wins); an existing archive row is left as it is.
        """
        self.registry.require(auth_id)
        if len(entries) > MAX_BULK_ARCHIVE:
            raise InvalidArgument(
                f"downloads array must not exceed {MAX_BULK_ARCHIVE} items", field="downloads"
            )
        valid: dict[int, ArchiveEntry] = {}
        for entry in entries:
            if entry.torrent_id > 0 and entry.hash and entry.torrent_id not in valid:
                valid[entry.torrent_id] = entry
        if not valid:
            raise InvalidArgument(
                "No valid downloads to archive (torrent_id and hash required)", field="downloads"
            )
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            data = await user_db.load(handle)
            blocked = blocked_ids(data, list(valid))
            wanted = [e for i, e in valid.items() if i not in blocked]
            ids = user_db.take_ids(data, "archived_downloads", len(wanted))
            if wanted:
                await handle.transaction(
                    [
                        (
                            f"INSERT INTO archived_downloads({_ARCHIVE_COLUMNS}) "
                            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(torrent_id) DO NOTHING",
                            [
                                (
                                    archive_id,
                                    e.torrent_id,
                                    e.hash[:128],
                                    (e.name or "")[:MAX_TEXT],
                                    e.tracker[:MAX_TEXT] if e.tracker else None,
                                    e.magnet
                                    if e.magnet and e.magnet.startswith("magnet:")
                                    else None,
                                    now,
                                )
                                for archive_id, e in zip(ids, wanted, strict=True)
                            ],
                        )
                    ]
                )
        return [e.torrent_id for e in wanted], sorted(blocked)

    async def delete_archived_bulk(self, auth_id: str, archive_ids: Sequence[int]) -> int:
        """Remove archive rows by their ids; unknown ids are not counted. Returns how many went."""
        self.registry.require(auth_id)
        if len(archive_ids) > MAX_BULK_ARCHIVE:
            raise InvalidArgument(
                f"ids array must not exceed {MAX_BULK_ARCHIVE} items", field="ids"
            )
        if any(i <= 0 for i in archive_ids):
            raise InvalidArgument("Invalid ids. All IDs must be positive integers.", field="ids")
        wanted = sorted(set(archive_ids))
        if not wanted:
            return 0
        async with self.pool.use(auth_id) as handle:
            return await handle.execute(
                f"DELETE FROM archived_downloads WHERE id IN ({','.join('?' * len(wanted))})",
                wanted,
            )

    async def assert_protection(
        self, auth_id: str, ids: Sequence[int], operation: str
    ) -> tuple[list[int], list[int]]:
        """Which ids a destructive operation may touch: (allowed, blocked), each in id order."""
        self.registry.require(auth_id)
        if operation not in DESTRUCTIVE_OPERATIONS:
            raise InvalidArgument(
                "operation must be a destructive download operation", field="operation"
            )
        wanted = _positive_ids(ids, "download_ids")
        async with self.pool.use(auth_id) as handle:
            blocked = blocked_ids(await user_db.load(handle), wanted)
        return [i for i in wanted if i not in blocked], [i for i in wanted if i in blocked]

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
        if self.hub is not None:
            # TBM's frontend refetches its protection map on this (its only protection event).
            self.hub.publish(auth_id, [Event(PROTECTION_CHANGED, 0, now, {})])
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
