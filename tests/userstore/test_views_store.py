"""Custom views in a real user database: ordering, partial updates, reorder checks, bounds."""

from __future__ import annotations

import hashlib
import json

import pytest

from common import limits
from common.errors import FailedPrecondition, InvalidArgument, NotFound, UserNotRegistered
from tests.userstore.conftest import Store
from userstore_svc.store.views import ViewFields
from userstore_svc.views_service import ViewService

AUTH = hashlib.sha256(b"views-user").hexdigest()


@pytest.fixture
async def views(store: Store) -> ViewService:
    """The view service over the store, with one registered user."""
    await store.users.register(AUTH, b"x")
    return ViewService(store.pool, store.registry, store.clock)


def fields(name: str = "Stalled", **overrides: str | None) -> ViewFields:
    base: dict[str, str | None] = {"name": name, "filters": json.dumps({"groups": []})}
    base.update(overrides)
    return ViewFields(**base)  # type: ignore[arg-type]


async def test_views_are_numbered_in_creation_order_and_listed_by_sort_order(
    views: ViewService, store: Store
) -> None:
    """sort_order is max + 1 (0 first); the list is ordered by sort_order, then id."""
    made = [await views.create(AUTH, fields(f"v{i}")) for i in range(3)]
    assert [v.sort_order for v in made] == [0, 1, 2]
    assert made[0].created_at == made[0].updated_at == store.now[0]
    await views.reorder(AUTH, [made[2].id, made[0].id, made[1].id])
    assert [v.fields.name for v in await views.list(AUTH)] == ["v2", "v0", "v1"]
    # A new view goes after the highest sort_order.
    later = await views.create(AUTH, fields("v3"))
    assert later.sort_order == 3


async def test_update_writes_only_the_given_columns(views: ViewService, store: Store) -> None:
    """Absent columns keep their values; an empty change set only moves updated_at."""
    view = await views.create(AUTH, fields(sort_field="name", search_query="s01"))
    store.now[0] += 60
    changed = await views.update(AUTH, view.id, {"sort_field": None, "name": ""})
    assert changed.fields == fields("", sort_field=None, search_query="s01")
    assert changed.updated_at == store.now[0]
    assert changed.created_at == view.created_at
    store.now[0] += 60
    bumped = await views.update(AUTH, view.id, {})
    assert bumped.fields == changed.fields
    assert bumped.updated_at == store.now[0]
    with pytest.raises(NotFound, match="Custom view not found"):
        await views.update(AUTH, 999, {})


async def test_ids_are_never_reused(views: ViewService) -> None:
    """Deleting the newest view does not give its id to the next (TBM's ids are AUTOINCREMENT)."""
    first = await views.create(AUTH, fields("a"))
    second = await views.create(AUTH, fields("b"))
    await views.delete(AUTH, second.id)
    third = await views.create(AUTH, fields("c"))
    assert third.id > second.id > first.id
    with pytest.raises(NotFound):
        await views.delete(AUTH, second.id)
    with pytest.raises(NotFound):
        await views.get(AUTH, second.id)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "ids must be a non-empty array"),
        ([1, 0], "ids must contain positive integers"),
        ([1, 1], "ids must not contain duplicates"),
        ([1], "ids must include every custom view"),
        ([1, 2, 99], "ids must include every custom view"),
        ([1, 99], "ids contain unknown custom view ids"),
    ],
)
async def test_reorder_checks_in_tbms_order(
    views: ViewService, ids: list[int], message: str
) -> None:
    """Each bad order is refused with TBM's words, and nothing moves."""
    a = await views.create(AUTH, fields("a"))
    b = await views.create(AUTH, fields("b"))
    assert (a.id, b.id) == (1, 2)
    with pytest.raises(InvalidArgument) as caught:
        await views.reorder(AUTH, ids)
    assert caught.value.message == message
    assert [(v.id, v.sort_order) for v in await views.list(AUTH)] == [(1, 0), (2, 1)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "x" * (limits.MAX_VIEW_NAME + 1)}, "name"),
        ({"name": None}, "name"),
        ({"filters": None}, "filters"),
        ({"filters": "{not json"}, "filters"),
        ({"filters": json.dumps("x" * limits.MAX_VIEW_FILTERS_BYTES)}, "filters"),
        ({"visible_columns": json.dumps(["c"] * limits.MAX_VIEW_COLUMNS_BYTES)}, "visible_columns"),
        ({"sort_field": "x" * (limits.MAX_VIEW_TEXT + 1)}, "sort_field"),
        ({"search_query": "x" * (limits.MAX_VIEW_SEARCH + 1)}, "search_query"),
        ({"sort_order": "1"}, "update_mask"),
    ],
)
async def test_bounds_are_enforced_and_nothing_changes(
    views: ViewService, change: dict[str, str | None], field: str
) -> None:
    """Each over-bound value is InvalidArgument naming the field; the stored view is unchanged."""
    view = await views.create(AUTH, fields())
    with pytest.raises(InvalidArgument) as caught:
        await views.update(AUTH, view.id, change)
    assert caught.value.field == field
    assert await views.get(AUTH, view.id) == view


async def test_a_user_holds_at_most_max_views(views: ViewService) -> None:
    """One more than the bound is refused; deleting one makes room."""
    made = [await views.create(AUTH, fields(f"v{i}")) for i in range(limits.MAX_VIEWS)]
    with pytest.raises(FailedPrecondition):
        await views.create(AUTH, fields("one too many"))
    await views.delete(AUTH, made[0].id)
    await views.create(AUTH, fields("room again"))
    assert len(await views.list(AUTH)) == limits.MAX_VIEWS


async def test_an_unregistered_user_has_no_views(views: ViewService) -> None:
    """Every call needs a registered user."""
    with pytest.raises(UserNotRegistered):
        await views.list(hashlib.sha256(b"nobody").hexdigest())
