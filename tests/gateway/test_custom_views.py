"""Custom views as TBM's Next.js server calls them, against the real services.

TBM's proxies send ``x-api-key`` and add ``authId`` (query on GET and DELETE, body on POST and
PUT); reorder sends ``{ids}`` alone. The frontend reads ``views``/``view`` and each view's fields;
it parses the timestamps as UTC ``YYYY-MM-DD HH:MM:SS``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from common import limits
from tests.gateway.support import User, assert_error

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
PATH = "/api/custom-views"
SQLITE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
FILTERS = {
    "logicOperator": "and",
    "_filterSchemaVersion": 2,
    "groups": [
        {
            "logicOperator": "and",
            "filters": [{"column": "tags", "operator": "is_any_of", "value": [3]}],
        }
    ],
}


def saved(name: str = "Stalled 4K", **overrides: Any) -> dict[str, Any]:
    """The body customViewsStore.saveView sends (the proxy adds authId)."""
    body: dict[str, Any] = {
        "name": name,
        "filters": FILTERS,
        "sort_field": "created_at",
        "sort_direction": "desc",
        "visible_columns": ["name", "size", "tags"],
        "asset_type": "torrents",
        "search_query": "s01",
    }
    body.update(overrides)
    return body


async def create(user: User, name: str = "Stalled 4K", **overrides: Any) -> dict[str, Any]:
    body = await user.ok("POST", PATH, json={**saved(name, **overrides), "authId": user.auth_id})
    view: dict[str, Any] = body["view"]
    return view


async def listed(user: User) -> list[dict[str, Any]]:
    body = await user.ok("GET", f"{PATH}?authId={user.auth_id}")
    views: list[dict[str, Any]] = body["views"]
    return views


def assert_time(value: Any) -> datetime:
    """TBM's timestamp: UTC text without a zone, close to now."""
    assert isinstance(value, str), value
    assert SQLITE_TIME.fullmatch(value), value
    moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 600
    return moment


async def test_create_read_list_and_delete_in_tbms_shapes(user: User) -> None:
    """The view comes back with its JSON parsed, nulls for falsy columns, sort_order max + 1."""
    first = await create(user)
    assert set(first) == {
        "id", "name", "filters", "sort_field", "sort_direction", "visible_columns",
        "asset_type", "search_query", "sort_order", "created_at", "updated_at",
    }  # fmt: skip
    assert first["filters"] == FILTERS
    assert first["visible_columns"] == ["name", "size", "tags"]
    assert (first["sort_order"], first["search_query"]) == (0, "s01")
    assert assert_time(first["created_at"]) == assert_time(first["updated_at"])
    # What the store sends for an unsorted, unfiltered save: nulls, and {} filters are given.
    second = await create(
        user,
        "Everything",
        filters={},
        sort_field=None,
        sort_direction="",
        visible_columns=None,
        asset_type=None,
        search_query="   ",
    )
    assert second["sort_order"] == 1
    assert second["filters"] == {}
    for name in ("sort_field", "sort_direction", "visible_columns", "asset_type", "search_query"):
        assert second[name] is None, name
    got = await user.ok("GET", f"{PATH}/{second['id']}?authId={user.auth_id}")
    assert got["view"] == second
    assert [v["id"] for v in await listed(user)] == [first["id"], second["id"]]
    body = await user.ok("DELETE", f"{PATH}/{first['id']}?authId={user.auth_id}")
    assert body == {"success": True, "message": "Custom view deleted successfully"}
    assert [v["id"] for v in await listed(user)] == [second["id"]]
    # Duplicate names are allowed (TBM has no uniqueness).
    await create(user, "Everything")


async def test_put_changes_only_the_keys_present(user: User) -> None:
    """PUT {filters} (the frontend's migration) leaves the rest; {} only bumps updated_at."""
    view = await create(user)
    migrated = {"logicOperator": "or", "_filterSchemaVersion": 2, "groups": []}
    body = await user.ok(
        "PUT", f"{PATH}/{view['id']}", json={"filters": migrated, "authId": user.auth_id}
    )
    assert body["view"] == {**view, "filters": migrated, "updated_at": body["view"]["updated_at"]}
    body = await user.ok(
        "PUT",
        f"{PATH}/{view['id']}",
        json={"name": "", "sort_field": 0, "visible_columns": False, "search_query": " q "},
    )
    changed = body["view"]
    assert (changed["name"], changed["sort_field"], changed["visible_columns"]) == ("", None, None)
    assert changed["search_query"] == "q"
    assert (changed["sort_direction"], changed["asset_type"]) == ("desc", "torrents")
    body = await user.ok("PUT", f"{PATH}/{view['id']}", json={})
    assert body["view"] == {**changed, "updated_at": body["view"]["updated_at"]}
    # PUT filters: null stores null (TBM's JSON.stringify(null)).
    body = await user.ok("PUT", f"{PATH}/{view['id']}", json={"filters": None})
    assert body["view"]["filters"] is None


async def test_reorder_sets_every_sort_order(user: User) -> None:
    """sort_order becomes each id's index; the list follows it (the store sends Number ids)."""
    ids = [(await create(user, f"v{i}"))["id"] for i in range(3)]
    new_order = [ids[2], ids[0], ids[1]]
    body = await user.ok("PATCH", f"{PATH}/reorder", json={"ids": new_order})
    assert body == {"success": True}
    views = await listed(user)
    assert [v["id"] for v in views] == new_order
    assert [v["sort_order"] for v in views] == [0, 1, 2]
    # Digits as strings are numbers to TBM too.
    await user.ok("PATCH", f"{PATH}/reorder", json={"ids": [str(i) for i in ids]})
    assert [v["id"] for v in await listed(user)] == ids


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (None, "ids must be a non-empty array"),
        ("1,2,3", "ids must be a non-empty array"),
        ([], "ids must be a non-empty array"),
        # Positivity is checked before duplicates, duplicates before the database.
        ([0, 0], "ids must contain positive integers"),
        (["x", 1], "ids must contain positive integers"),
        ([1.5], "ids must contain positive integers"),
        ([True], "ids must contain positive integers"),
        (["A", "A"], "ids must contain positive integers"),
        ([{"id": 1}], "ids must contain positive integers"),
        ([7, 7], "ids must not contain duplicates"),
        # Count before membership: one known id short, or one too many.
        ("first", "ids must include every custom view"),
        ("all+unknown", "ids must include every custom view"),
        ("swap-unknown", "ids contain unknown custom view ids"),
    ],
)
async def test_reorder_refusals_in_tbms_order(user: User, ids: Any, message: str) -> None:
    """Each bad list is a 400 with TBM's words naming ids; no sort_order moves."""
    known = [(await create(user, f"v{i}"))["id"] for i in range(2)]
    if ids == "first":
        ids = known[:1]
    elif ids == "all+unknown":
        ids = [*known, 999_999]
    elif ids == "swap-unknown":
        ids = [known[0], 999_999]
    before = await listed(user)
    payload = {} if ids is None else {"ids": ids}
    body = assert_error(await user.call("PATCH", f"{PATH}/reorder", json=payload), 400, field="ids")
    assert body["error"] == message
    assert await listed(user) == before


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "name", "name and filters are required"),
        ({"name": "x"}, "filters", "name and filters are required"),
        ({"name": "", "filters": {}}, "name", "name and filters are required"),
        ({"name": "x", "filters": None}, "filters", "name and filters are required"),
        ({"name": "x", "filters": 0}, "filters", "name and filters are required"),
        ({"name": "x", "filters": ""}, "filters", "name and filters are required"),
        # Values TBM would have failed on with a 500: a 400 naming the field.
        ({"name": {"a": 1}, "filters": {}}, "name", None),
        ({"name": "x", "filters": {}, "sort_field": ["a"]}, "sort_field", None),
        ({"name": "x", "filters": {}, "search_query": 5}, "search_query", None),
        # Our bounds (TBM has none).
        ({"name": "n" * (limits.MAX_VIEW_NAME + 1), "filters": {}}, "name", None),
        (
            {"name": "x", "filters": {"v": "f" * limits.MAX_VIEW_FILTERS_BYTES}},
            "filters",
            None,
        ),
        ({"name": "x", "filters": {}, "asset_type": "a" * 201}, "asset_type", None),
    ],
)
async def test_create_refusals(
    user: User, payload: dict[str, Any], field: str, message: str | None
) -> None:
    """A 400 naming the field, in TBM's words where TBM has them; nothing saved."""
    body = assert_error(
        await user.call("POST", PATH, json={**payload, "authId": user.auth_id}), 400, field=field
    )
    if message is not None:
        assert body["error"] == message
    assert await listed(user) == []


async def test_bad_ids_and_unknown_views(user: User) -> None:
    """TBM's words for a bad path id (400) and an unknown view (404); nothing changes."""
    view = await create(user)
    for bad in ("abc", "0", "-1", "1.5", "9" * 30):
        for method in ("GET", "PUT", "DELETE"):
            body = assert_error(
                await user.call(method, f"{PATH}/{bad}", json={} if method == "PUT" else None),
                400,
                field="id",
            )
            assert body["error"] == "Invalid id. Must be a positive integer."
    for method in ("GET", "PUT", "DELETE"):
        body = assert_error(
            await user.call(method, f"{PATH}/999999", json={} if method == "PUT" else None), 404
        )
        assert body["error"] == "Custom view not found"
    # A refused PUT changes nothing.
    assert_error(await user.call("PUT", f"{PATH}/{view['id']}", json={"name": None}), 400)
    assert_error(
        await user.call(
            "PUT", f"{PATH}/{view['id']}", json={"name": "new", "visible_columns": "c" * 20_000}
        ),
        400,
        field="visible_columns",
    )
    assert await listed(user) == [view]


async def test_views_are_per_user_and_need_a_matching_auth_id(user: User, make_user: Any) -> None:
    """Another user sees none of them and cannot touch them; a wrong authId is a 403."""
    view = await create(user)
    other: User = await make_user()
    assert await listed(other) == []
    assert_error(await other.call("GET", f"{PATH}/{view['id']}"), 404)
    assert_error(await other.call("DELETE", f"{PATH}/{view['id']}"), 404)
    assert_error(await user.call("GET", f"{PATH}?authId={other.auth_id}"), 403)
    assert_error(await user.call("POST", PATH, json={**saved(), "authId": other.auth_id}), 403)
    assert await listed(user) == [view]
    unregistered: User = await make_user(register=False)
    assert_error(await unregistered.call("GET", PATH), 404)
