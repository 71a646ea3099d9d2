"""Link history for one user: TBM's upserts, paging and deletes, within our bounds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from common import limits
from common.errors import InvalidArgument, NotFound
from userstore_svc.store import link_history
from userstore_svc.store.link_history import Entry, EntryIn
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry

ASSET_TYPES = ("torrents", "usenet", "webdl")
STATUSES = ("success", "failed")
MAX_PAGE = 1_000_000_000  # far past any history; keeps OFFSET within 64 bits
_TEXT_LIMITS = {
    "item_id": limits.MAX_LINK_ID,
    "file_id": limits.MAX_LINK_ID,
    "url": limits.MAX_LINK_URL,
    "item_name": limits.MAX_LINK_NAME,
    "file_name": limits.MAX_LINK_NAME,
}


def check_entry(entry: EntryIn) -> None:
    """An entry the store may hold (the gateway skips or refuses others in TBM's words)."""
    if not entry.item_id:
        raise InvalidArgument("item_id and asset_type are required", field="item_id")
    if entry.asset_type not in ASSET_TYPES:
        raise InvalidArgument(
            "asset_type must be one of: torrents, usenet, webdl", field="asset_type"
        )
    if entry.status not in STATUSES:
        raise InvalidArgument("status must be success or failed", field="status")
    if entry.status == "success" and not entry.url:
        raise InvalidArgument("url is required for successful link history entries", field="url")
    for name, bound in _TEXT_LIMITS.items():
        value = getattr(entry, name)
        if value is not None and len(value) > bound:
            raise InvalidArgument(f"{name} must be at most {bound} characters", field=name)
    if entry.generated_at is not None and not math.isfinite(entry.generated_at):
        raise InvalidArgument("generated_at must be a finite time", field="generated_at")


def first_of_each(entries: Sequence[EntryIn]) -> list[EntryIn]:
    """The entries with repeated identities dropped (the first one wins, as in TBM)."""
    seen: dict[tuple[str, str | None, str], EntryIn] = {}
    for entry in entries:
        seen.setdefault(entry.identity, entry)
    return list(seen.values())


def _bounds(limit: int, search: str) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidArgument("limit must be between 1 and 1000", field="limit")
    if len(search) > limits.MAX_LINK_SEARCH:
        raise InvalidArgument(
            f"search must be at most {limits.MAX_LINK_SEARCH} characters", field="search"
        )


class LinkHistoryService:
    """Link history in the user's database."""

    def __init__(self, pool: DatabasePool, registry: Registry, clock: Callable[[], float]) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock

    async def page(
        self, auth_id: str, page: int, limit: int, search: str
    ) -> tuple[list[Entry], int]:
        """One page, newest first, and the total matching."""
        self.registry.require(auth_id)
        _bounds(limit, search)
        if not 1 <= page <= MAX_PAGE:
            raise InvalidArgument(f"page must be between 1 and {MAX_PAGE}", field="page")
        async with self.pool.use(auth_id) as handle:
            return await handle.run(link_history.page, page, limit, search)

    async def scan(
        self, auth_id: str, limit: int, search: str, after: tuple[float, int] | None
    ) -> list[Entry]:
        """Up to `limit` entries after a position, newest first."""
        self.registry.require(auth_id)
        _bounds(limit, search)
        async with self.pool.use(auth_id) as handle:
            return await handle.run(link_history.scan, limit, search, after)

    async def create(self, auth_id: str, entry: EntryIn) -> Entry:
        """Replace the entry with the same identity; stamped now, whatever the entry says."""
        self.registry.require(auth_id)
        check_entry(entry)
        now = self.clock()
        stamped = EntryIn(
            entry.item_id,
            entry.file_id,
            entry.url,
            entry.asset_type,
            entry.item_name,
            entry.file_name,
            entry.status,
            None,
        )
        async with self.pool.use(auth_id) as handle:
            made, _ = await handle.write(link_history.upsert, [stamped], now, limits.MAX_LINK_ROWS)
        return made[0]

    async def import_entries(
        self, auth_id: str, entries: Sequence[EntryIn]
    ) -> tuple[int, int, int]:
        """Upsert many in one transaction: (distinct entries, rows replaced, rows inserted)."""
        self.registry.require(auth_id)
        if not entries:
            raise InvalidArgument("No valid entries to insert", field="entries")
        if len(entries) > limits.MAX_LINK_IMPORT:
            raise InvalidArgument(
                f"entries array must not exceed {limits.MAX_LINK_IMPORT} items", field="entries"
            )
        for entry in entries:
            check_entry(entry)
        distinct = first_of_each(entries)
        async with self.pool.use(auth_id) as handle:
            # Up to tens of thousands of rows: on a thread, so other users' polls go on meanwhile.
            made, replaced = await handle.write_in_thread(
                link_history.upsert, distinct, self.clock(), limits.MAX_LINK_ROWS
            )
        return len(distinct), replaced, len(made)

    async def delete(self, auth_id: str, entry_id: int) -> None:
        """Delete one entry; NotFound when unknown."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            if not await handle.write(link_history.delete, entry_id):
                raise NotFound("Link history entry not found", code="ENTRY_NOT_FOUND", field="id")

    async def delete_many(self, auth_id: str, entry_ids: Sequence[int]) -> int:
        """Delete entries by id; returns how many existed."""
        self.registry.require(auth_id)
        if not entry_ids:
            raise InvalidArgument("ids array is required and must not be empty", field="ids")
        if len(entry_ids) > limits.MAX_LINK_DELETE:
            raise InvalidArgument(
                f"ids array must not exceed {limits.MAX_LINK_DELETE} items", field="ids"
            )
        if any(i <= 0 for i in entry_ids):
            raise InvalidArgument("Invalid ids. All IDs must be positive integers.", field="ids")
        async with self.pool.use(auth_id) as handle:
            return await handle.write(link_history.delete_many, entry_ids)
