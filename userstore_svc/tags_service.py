"""TBM's tags and download tags for one user: checks in TBM's order and words, events after."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from common.errors import AlreadyExists, InvalidArgument, NotFound
from common.tags import clean_name
from userstore_svc.core.models import Event
from userstore_svc.hub import TAGS_CHANGED, EventHub
from userstore_svc.store import tags as store
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry
from userstore_svc.store.tags import Mapping, Operation, TagRow

# The event TBM's frontend refetches its download-tag map on, spelled as it compares it.
MAX_DOWNLOAD_IDS = 1000
MAX_TAG_IDS = 100
TAG_NOT_FOUND = "Tag not found"
NAME_TAKEN = "A tag with this name already exists"
INVALID_TAG_IDS = "One or more tag IDs are invalid"


def _taken() -> AlreadyExists:
    return AlreadyExists(NAME_TAKEN, code="TAG_NAME_TAKEN", field="name")


def _not_found() -> NotFound:
    return NotFound(TAG_NOT_FOUND, code="TAG_NOT_FOUND", field="id")


def _ids(ids: Sequence[int], field: str, most: int, at_least: int) -> list[int]:
    """Distinct positive ids, in the order given; the limits the gateway also checks."""
    if any(i <= 0 for i in ids):
        raise InvalidArgument(f"{field} must be positive integers", field=field)
    distinct = list(dict.fromkeys(ids))
    if not at_least <= len(distinct) <= most:
        raise InvalidArgument(f"{field} must hold {at_least} to {most} ids", field=field)
    return distinct


class TagService:
    """Tags and mappings in each user's database; every change but a creation is announced."""

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

    def _announce(self, auth_id: str, now: float) -> None:
        if self.hub is not None:
            # TBM's frontend refetches /api/downloads/tags on this (debounced by 2 s).
            self.hub.publish(auth_id, [Event(TAGS_CHANGED, 0, now, {})])

    async def list_tags(self, auth_id: str) -> list[TagRow]:
        """Every tag with its usage count, by name."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            return await store.list_tags(handle)

    async def get_tag(self, auth_id: str, tag_id: int) -> TagRow:
        """One tag with its usage count (NOT_FOUND when unknown)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            tag = await store.get_tag(handle, tag_id)
        if tag is None:
            raise _not_found()
        return tag

    async def create_tag(self, auth_id: str, name: str) -> TagRow:
        """A new tag (trimmed name; ALREADY_EXISTS for a name taken in any case). No event."""
        self.registry.require(auth_id)
        name = clean_name(name)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            if await store.name_owner(handle, name) is not None:
                raise _taken()
            try:
                tag_id = await store.insert_tag(handle, name, now)
            except sqlite3.IntegrityError:
                raise _taken() from None  # the unique index agrees with the check above
        return TagRow(tag_id, name, now, now, 0)

    async def rename_tag(self, auth_id: str, tag_id: int, name: str) -> TagRow:
        """Rename: the name's checks, then NOT_FOUND, then ALREADY_EXISTS (TBM's order)."""
        self.registry.require(auth_id)
        name = clean_name(name)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            tag = await store.get_tag(handle, tag_id)
            if tag is None:
                raise _not_found()
            if await store.name_owner(handle, name) not in (None, tag_id):
                raise _taken()
            try:
                await store.rename_tag(handle, tag_id, name, now)
            except sqlite3.IntegrityError:
                raise _taken() from None
        self._announce(auth_id, now)
        return TagRow(tag_id, name, tag.created_at, now, tag.usage_count)

    async def delete_tag(self, auth_id: str, tag_id: int) -> None:
        """Delete a tag and its mappings (NOT_FOUND when unknown)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            if not await store.delete_tag(handle, tag_id):
                raise _not_found()
        self._announce(auth_id, self.clock())

    async def mappings(self, auth_id: str) -> list[Mapping]:
        """Every download's tags, by download id then tag name."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            return await store.mappings(handle)

    async def change_mappings(
        self,
        auth_id: str,
        operation: Operation,
        download_ids: Sequence[int],
        tag_ids: Sequence[int],
    ) -> None:
        """Add, remove or replace in one transaction; announced even when nothing changed.

        An unknown tag id refuses the whole change (TBM's 400, nothing written).
        """
        self.registry.require(auth_id)
        downloads = _ids(download_ids, "download_ids", MAX_DOWNLOAD_IDS, 1)
        tags = _ids(tag_ids, "tag_ids", MAX_TAG_IDS, 0)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            unknown = await store.change_mappings(handle, operation, downloads, tags, now)
        if unknown:
            raise InvalidArgument(INVALID_TAG_IDS, code="UNKNOWN_TAG", field="tag_ids")
        self._announce(auth_id, now)
