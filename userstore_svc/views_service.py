"""Custom views for one user: TBM's rules for creating, changing and ordering them, our bounds."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from common import limits
from common.errors import FailedPrecondition, InvalidArgument, NotFound
from userstore_svc.store import views
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry
from userstore_svc.store.views import View, ViewFields

NOT_FOUND = "Custom view not found"
# The bound of each text column: characters, or UTF-8 bytes for the JSON ones.
_TEXT_LIMITS = {
    "name": limits.MAX_VIEW_NAME,
    "sort_field": limits.MAX_VIEW_TEXT,
    "sort_direction": limits.MAX_VIEW_TEXT,
    "asset_type": limits.MAX_VIEW_TEXT,
    "search_query": limits.MAX_VIEW_SEARCH,
}
_JSON_LIMITS = {
    "filters": limits.MAX_VIEW_FILTERS_BYTES,
    "visible_columns": limits.MAX_VIEW_COLUMNS_BYTES,
}


def check_value(name: str, value: str | None) -> None:
    """A column's value within its bound (and JSON columns hold JSON); else InvalidArgument."""
    if name not in views.FIELDS:
        raise InvalidArgument(f"{name} is not a field of a custom view", field="update_mask")
    if value is None:
        if name in ("name", "filters"):
            raise InvalidArgument(f"{name} must not be null", field=name)
        return
    if name in _JSON_LIMITS:
        if len(value.encode("utf-8")) > _JSON_LIMITS[name]:
            raise InvalidArgument(
                f"{name} must be at most {_JSON_LIMITS[name]} bytes of JSON", field=name
            )
        try:
            json.loads(value)
        except ValueError:
            raise InvalidArgument(f"{name} must be JSON", field=name) from None
    elif len(value) > _TEXT_LIMITS[name]:
        raise InvalidArgument(f"{name} must be at most {_TEXT_LIMITS[name]} characters", field=name)


def check_order(ids: Sequence[int], existing: Sequence[int]) -> None:
    """TBM's checks of a reorder, in TBM's order and words."""
    if not ids:
        raise InvalidArgument("ids must be a non-empty array", field="ids")
    if any(i <= 0 for i in ids):
        raise InvalidArgument("ids must contain positive integers", field="ids")
    if len(set(ids)) != len(ids):
        raise InvalidArgument("ids must not contain duplicates", field="ids")
    if len(ids) != len(existing):
        raise InvalidArgument("ids must include every custom view", field="ids")
    if not set(ids) <= set(existing):
        raise InvalidArgument("ids contain unknown custom view ids", field="ids")


class ViewService:
    """Custom views in the user's database."""

    def __init__(self, pool: DatabasePool, registry: Registry, clock: Callable[[], float]) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock

    async def list(self, auth_id: str) -> list[View]:
        """Every view, by sort_order then id."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            return await handle.run(views.list_views)

    async def get(self, auth_id: str, view_id: int) -> View:
        """One view, or NotFound."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            view = await handle.run(views.get_view, view_id)
        if view is None:
            raise NotFound(NOT_FOUND, code="VIEW_NOT_FOUND", field="id")
        return view

    async def create(self, auth_id: str, fields: ViewFields) -> View:
        """A new view after every other one (at most MAX_VIEWS per user)."""
        self.registry.require(auth_id)
        if not fields.name or not fields.filters:
            raise InvalidArgument("name and filters are required", field="name")
        for name in views.FIELDS:
            check_value(name, getattr(fields, name))
        async with self.pool.use(auth_id) as handle:
            existing = await handle.run(views.view_ids)
            if len(existing) >= limits.MAX_VIEWS:
                raise FailedPrecondition(
                    f"At most {limits.MAX_VIEWS} custom views; delete one to save another",
                    code="TOO_MANY_VIEWS",
                )
            return await handle.write(views.create_view, fields, self.clock())

    async def update(self, auth_id: str, view_id: int, changes: Mapping[str, Any]) -> View:
        """Write the given columns (none: only updated_at moves); NotFound when unknown."""
        self.registry.require(auth_id)
        for name, value in changes.items():
            check_value(name, value)
        async with self.pool.use(auth_id) as handle:
            view = await handle.write(views.update_view, view_id, changes, self.clock())
        if view is None:
            raise NotFound(NOT_FOUND, code="VIEW_NOT_FOUND", field="id")
        return view

    async def delete(self, auth_id: str, view_id: int) -> None:
        """Delete a view; NotFound when unknown."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            if not await handle.write(views.delete_view, view_id):
                raise NotFound(NOT_FOUND, code="VIEW_NOT_FOUND", field="id")

    async def reorder(self, auth_id: str, ids: Sequence[int]) -> None:
        """Number every view by its place in `ids`, which must name each view exactly once."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            check_order(ids, await handle.run(views.view_ids))
            await handle.write(views.reorder_views, ids, self.clock())
