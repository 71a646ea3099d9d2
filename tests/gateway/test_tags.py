"""Tags and download tags as TBM's Next.js server calls them, against the real services.

Every request is the one TBM's proxies send: ``x-api-key`` always, ``authId`` in the query of a
GET or DELETE and in the body of a POST or PUT. TBM's frontend reads ``tags``, ``tag``,
``mappings`` and the error strings; its event hook refetches the mappings on ``tags_changed``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import User, assert_error
from tests.gateway.test_sse import Stream, open_stream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
STACK_ENV = {"SSE_HEARTBEAT_SECONDS": "0.5"}
MAPPINGS = "/api/downloads/tags"
SQL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
NAME_REQUIRED = "Tag name is required and must be a non-empty string"
NAME_TOO_LONG = "Tag name must be 100 characters or less"
TAKEN = "A tag with this name already exists"
BAD_ID = "Invalid id. Must be a positive integer."


def q(user: User) -> str:
    """The query TBM's GET and DELETE proxies add."""
    return f"?authId={user.auth_id}"


async def create(user: User, name: str) -> dict[str, Any]:
    """POST /api/tags as TBM's proxy sends it; returns the tag."""
    body = await user.ok("POST", "/api/tags", json={"name": name, "authId": user.auth_id})
    tag: dict[str, Any] = body["tag"]
    return tag


async def change(user: User, operation: str | None, downloads: list[Any], tags: list[Any]) -> str:
    """POST /api/downloads/tags; returns the message."""
    payload: dict[str, Any] = {"download_ids": downloads, "tag_ids": tags, "authId": user.auth_id}
    if operation is not None:
        payload["operation"] = operation
    body = await user.ok("POST", MAPPINGS, json=payload)
    message: str = body["message"]
    return message


async def mappings(user: User) -> dict[str, list[dict[str, Any]]]:
    """GET /api/downloads/tags as TBM's store reads it."""
    body = await user.ok("GET", MAPPINGS + q(user))
    result: dict[str, list[dict[str, Any]]] = body["mappings"]
    return result


async def listed(user: User) -> list[dict[str, Any]]:
    """GET /api/tags."""
    body = await user.ok("GET", "/api/tags" + q(user))
    tags: list[dict[str, Any]] = body["tags"]
    return tags


def assert_sql_time(value: Any) -> None:
    """TBM's CURRENT_TIMESTAMP form, UTC, and now."""
    assert isinstance(value, str), value
    assert SQL_TIME.fullmatch(value), value
    at = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - at).total_seconds()) < 120, value


# Tag CRUD ----------------------------------------------------------------------------------------


async def test_tag_crud_answers_what_tbm_reads(user: User) -> None:
    """Create (trimmed, no usage_count), list and get (with usage_count), rename, delete."""
    tag = await create(user, "  4K  ")
    assert set(tag) == {"id", "name", "created_at", "updated_at"}
    assert isinstance(tag["id"], int)
    assert tag["name"] == "4K"
    assert_sql_time(tag["created_at"])
    assert_sql_time(tag["updated_at"])
    assert await listed(user) == [{**tag, "usage_count": 0}]
    body = await user.ok("GET", f"/api/tags/{tag['id']}{q(user)}")
    assert body == {"success": True, "tag": {**tag, "usage_count": 0}}
    body = await user.ok(
        "PUT", f"/api/tags/{tag['id']}", json={"name": " UHD ", "authId": user.auth_id}
    )
    assert set(body["tag"]) == {"id", "name", "created_at", "updated_at"}
    assert (body["tag"]["id"], body["tag"]["name"]) == (tag["id"], "UHD")
    assert body["tag"]["created_at"] == tag["created_at"]
    body = await user.ok("DELETE", f"/api/tags/{tag['id']}{q(user)}")
    assert body == {"success": True, "message": "Tag deleted successfully"}
    assert await listed(user) == []
    assert_error(await user.call("GET", f"/api/tags/{tag['id']}{q(user)}"), 404)


async def test_tags_are_listed_by_name_with_usage_counts(user: User) -> None:
    """Binary order (capitals first); usage_count counts downloads carrying the tag."""
    ids = {name: (await create(user, name))["id"] for name in ("keep", "Zed", "4K")}
    await change(user, "add", [101, "102", 103], [ids["keep"]])
    await change(user, "add", [101], [ids["4K"]])
    tags = await listed(user)
    assert [(t["name"], t["usage_count"]) for t in tags] == [("4K", 1), ("Zed", 0), ("keep", 3)]
    body = await user.ok("GET", f"/api/tags/{ids['keep']}{q(user)}")
    assert body["tag"]["usage_count"] == 3


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, NAME_REQUIRED),
        ({"name": ""}, NAME_REQUIRED),
        ({"name": " \t\n"}, NAME_REQUIRED),
        ({"name": None}, NAME_REQUIRED),
        ({"name": 42}, NAME_REQUIRED),
        ({"name": ["x"]}, NAME_REQUIRED),
        ({"name": "x" * 101}, NAME_TOO_LONG),
        ({"name": "😀" * 51}, NAME_TOO_LONG),  # 102 in JavaScript's length
    ],
)
async def test_bad_names_are_refused_in_tbms_words(
    user: User, payload: dict[str, Any], message: str
) -> None:
    """POST and PUT both: 400 with TBM's string; nothing stored changes."""
    tag = await create(user, "kept")
    for method, path in (("POST", "/api/tags"), ("PUT", f"/api/tags/{tag['id']}")):
        reply = await user.call(method, path, json={**payload, "authId": user.auth_id})
        body = assert_error(reply, 400, field="name")
        assert body["error"] == message
    assert [t["name"] for t in await listed(user)] == ["kept"]


async def test_a_name_of_100_characters_after_trimming_is_accepted(user: User) -> None:
    """The limit applies to the trimmed name."""
    assert (await create(user, "  " + "n" * 100 + "  "))["name"] == "n" * 100


async def test_names_conflict_in_any_case(user: User) -> None:
    """409 "A tag with this name already exists" on create and rename; re-casing oneself is fine."""
    four_k = await create(user, "4K")
    keep = await create(user, "keep")
    for name in ("4k", " 4K", "KEEP"):
        reply = await user.call("POST", "/api/tags", json={"name": name, "authId": user.auth_id})
        assert assert_error(reply, 409)["error"] == TAKEN
    reply = await user.call(
        "PUT", f"/api/tags/{keep['id']}", json={"name": "4k", "authId": user.auth_id}
    )
    assert assert_error(reply, 409)["error"] == TAKEN
    assert [t["name"] for t in await listed(user)] == ["4K", "keep"]
    body = await user.ok(
        "PUT", f"/api/tags/{four_k['id']}", json={"name": "4k", "authId": user.auth_id}
    )
    assert body["tag"]["name"] == "4k"


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "1.5", "12abc", "9" * 30, "%C2%B2"])
async def test_bad_path_ids_are_refused_in_tbms_words(user: User, raw: str) -> None:
    """GET, PUT and DELETE /api/tags/{id}: 400 "Invalid id. Must be a positive integer."."""
    for method in ("GET", "PUT", "DELETE"):
        reply = await user.call(
            method, f"/api/tags/{raw}{q(user)}", json={"name": "x", "authId": user.auth_id}
        )
        assert assert_error(reply, 400, field="id")["error"] == BAD_ID


async def test_unknown_tags_are_404_tag_not_found(user: User) -> None:
    """An id no tag has: 404 "Tag not found" (PUT checks the name first, as TBM)."""
    for method in ("GET", "PUT", "DELETE"):
        reply = await user.call(
            method, f"/api/tags/987654{q(user)}", json={"name": "x", "authId": user.auth_id}
        )
        assert assert_error(reply, 404)["error"] == "Tag not found"
    reply = await user.call("PUT", "/api/tags/987654", json={"name": " ", "authId": user.auth_id})
    assert assert_error(reply, 400)["error"] == NAME_REQUIRED


async def test_auth_rules_hold_for_tags(user: User, make_user: MakeUser) -> None:
    """A mismatched authId is 403; no key is 401; an unregistered key is 404."""
    reply = await user.call("GET", "/api/tags?authId=" + "0" * 64)
    assert_error(reply, 403, code="AUTH_ID_MISMATCH")
    reply = await user.call("POST", MAPPINGS, json={"download_ids": [1], "authId": "f" * 64})
    assert_error(reply, 403, code="AUTH_ID_MISMATCH")
    assert_error(await user.stack.gw("GET", "/api/tags"), 401)
    stranger = await make_user(register=False)
    assert_error(await stranger.call("GET", "/api/tags"), 404)


async def test_tag_routes_use_the_user_rate_limit(make_user: MakeUser) -> None:
    """Each tag route takes from the user's bucket (burst 3 here: the 4th call is 429)."""
    user = await make_user()
    base = await user.stack.start_gateway(
        "gateway-tags-limited", RATE_LIMIT_PER_MINUTE="60", RATE_LIMIT_BURST="3"
    )
    calls = [
        ("GET", "/api/tags", None),
        ("POST", "/api/tags", {"name": "limited"}),
        ("GET", MAPPINGS, None),
        ("POST", MAPPINGS, {"download_ids": [1], "tag_ids": []}),
    ]
    statuses = [
        (await user.stack.call(base, method, path, key=user.key, json=body))[0]
        for method, path, body in calls
    ]
    assert statuses == [200, 200, 200, 429]


# Download tags -----------------------------------------------------------------------------------


async def test_mappings_add_remove_replace_with_tbms_messages(user: User) -> None:
    """Keys are download ids as strings; a download's tags come by name; each operation's words."""
    keep = (await create(user, "keep"))["id"]
    four_k = (await create(user, "4K"))["id"]
    assert await mappings(user) == {}
    assert await change(user, None, [5, "6"], [keep, str(four_k)]) == "Tags added successfully"
    four_k_ref, keep_ref = {"id": four_k, "name": "4K"}, {"id": keep, "name": "keep"}
    assert await mappings(user) == {"5": [four_k_ref, keep_ref], "6": [four_k_ref, keep_ref]}
    assert await change(user, "add", [5], [keep]) == "Tags added successfully"  # idempotent
    assert await change(user, "remove", [5, 77], [keep]) == "Tags removed successfully"
    assert await mappings(user) == {"5": [four_k_ref], "6": [four_k_ref, keep_ref]}
    assert await change(user, "replace", [6, 8], [keep]) == "Tags replaced successfully"
    assert await mappings(user) == {"5": [four_k_ref], "6": [keep_ref], "8": [keep_ref]}
    assert await change(user, "replace", [5, 6], []) == "Tags replaced successfully"
    assert await mappings(user) == {"8": [keep_ref]}
    assert await change(user, "add", [9], []) == "Tags added successfully"  # a no-op
    assert await mappings(user) == {"8": [keep_ref]}
    # 1 and "1" are different raw values to TBM's repeat check, and one download here.
    await change(user, "add", [12, "12"], [keep])
    assert (await mappings(user))["12"] == [keep_ref]


async def test_deleting_a_tag_removes_its_mappings(user: User) -> None:
    """The cascade: the tag disappears from every download, others stay."""
    keep = (await create(user, "keep"))["id"]
    gone = (await create(user, "gone"))["id"]
    await change(user, "add", [1, 2], [keep, gone])
    await change(user, "add", [3], [gone])
    await user.ok("DELETE", f"/api/tags/{gone}{q(user)}")
    ref = {"id": keep, "name": "keep"}
    assert await mappings(user) == {"1": [ref], "2": [ref]}
    assert [(t["name"], t["usage_count"]) for t in await listed(user)] == [("keep", 2)]


async def test_the_largest_change_tbm_allows(user: User) -> None:
    """1,000 downloads times 100 tags in one replace (100,000 rows), then cleared."""
    tags = [(await create(user, f"t{i:03}"))["id"] for i in range(100)]
    downloads = list(range(1, 1001))
    await change(user, "replace", downloads, tags)
    counts = {t["usage_count"] for t in await listed(user)}
    assert counts == {1000}
    await change(user, "replace", downloads, [])
    assert await mappings(user) == {}


MAX_DL = list(range(1, 1002))
MAX_TAGS = list(range(1, 102))
CHECKS = [
    # 1: tag ids are positive integers (before anything about download_ids)
    ({"tag_ids": [1, "x"]}, "Invalid tag_ids. All tag IDs must be positive integers.", "tag_ids"),
    (
        {"tag_ids": [0], "download_ids": ["y"]},
        "Invalid tag_ids. All tag IDs must be positive integers.",
        "tag_ids",
    ),
    # 2: download ids are positive integers
    (
        {"download_ids": [1, -2], "tag_ids": "nope"},
        "Invalid download_ids. All download IDs must be positive integers.",
        "download_ids",
    ),
    (
        {"download_ids": ["12abc"], "tag_ids": []},
        "Invalid download_ids. All download IDs must be positive integers.",
        "download_ids",
    ),
    (
        {"download_ids": [None]},
        "Invalid download_ids. All download IDs must be positive integers.",
        "download_ids",
    ),
    # 3: download_ids is a non-empty array
    ({}, "download_ids must be a non-empty array", "download_ids"),
    (
        {"download_ids": [], "tag_ids": "nope"},
        "download_ids must be a non-empty array",
        "download_ids",
    ),
    (
        {"download_ids": "1", "tag_ids": []},
        "download_ids must be a non-empty array",
        "download_ids",
    ),
    # 4: tag_ids is an array (it may be empty)
    ({"download_ids": [1]}, "tag_ids must be an array", "tag_ids"),
    ({"download_ids": MAX_DL, "tag_ids": None}, "tag_ids must be an array", "tag_ids"),
    # 5, 6: sizes
    (
        {"download_ids": MAX_DL, "tag_ids": MAX_TAGS},
        "Maximum 1000 download IDs allowed per request",
        "download_ids",
    ),
    (
        {"download_ids": [1, 1], "tag_ids": MAX_TAGS},
        "Maximum 100 tag IDs allowed per request",
        "tag_ids",
    ),
    # 7, 8: repeats of the raw values
    (
        {"download_ids": [1, 1], "tag_ids": [2, 2]},
        "download_ids array contains duplicate IDs",
        "download_ids",
    ),
    (
        {"download_ids": ["3", "3"], "tag_ids": []},
        "download_ids array contains duplicate IDs",
        "download_ids",
    ),
    (
        {"download_ids": [1, "1"], "tag_ids": [2, 2], "operation": "x"},
        "tag_ids array contains duplicate IDs",
        "tag_ids",
    ),
    # 9: the operation ("add" only when missing: null is not missing)
    (
        {"download_ids": [1, "1"], "tag_ids": [], "operation": "toggle"},
        "operation must be one of: add, remove, replace",
        "operation",
    ),
    (
        {"download_ids": [1], "tag_ids": [], "operation": None},
        "operation must be one of: add, remove, replace",
        "operation",
    ),
    (
        {"download_ids": [1], "tag_ids": [], "operation": "ADD"},
        "operation must be one of: add, remove, replace",
        "operation",
    ),
]


@pytest.mark.parametrize(("payload", "message", "field"), CHECKS)
async def test_mapping_checks_run_in_tbms_order_with_its_words(
    user: User, payload: dict[str, Any], message: str, field: str
) -> None:
    """Each body fails the first of TBM's checks it breaks: 400, TBM's string; nothing changes."""
    keep = (await create(user, "keep"))["id"]
    await change(user, "add", [1], [keep])
    before = await mappings(user)
    reply = await user.call("POST", MAPPINGS, json={**payload, "authId": user.auth_id})
    assert assert_error(reply, 400, field=field)["error"] == message
    assert await mappings(user) == before


async def test_an_unknown_tag_id_is_check_10_and_changes_nothing(user: User) -> None:
    """ "One or more tag IDs are invalid", for every operation, with the store untouched."""
    keep = (await create(user, "keep"))["id"]
    await change(user, "add", [1, 2], [keep])
    before = await mappings(user)
    for operation in ("add", "remove", "replace"):
        reply = await user.call(
            "POST",
            MAPPINGS,
            json={
                "download_ids": [1, 2, 3],
                "tag_ids": [keep, keep + 1000],
                "operation": operation,
                "authId": user.auth_id,
            },
        )
        assert assert_error(reply, 400, field="tag_ids")["error"] == (
            "One or more tag IDs are invalid"
        )
        assert await mappings(user) == before


# Events ------------------------------------------------------------------------------------------


def tag_events(stream: Stream) -> int:
    """How many tags_changed frames arrived."""
    return sum(1 for e in stream.events() if e["event"] == "tags_changed")


async def expect(stream: Stream, count: int) -> None:
    """Exactly `count` tags_changed frames: wait for them, then make sure no more come."""
    await stream.wait(lambda: tag_events(stream) >= count, f"{count} tags_changed")
    await asyncio.sleep(0.3)
    assert tag_events(stream) == count


async def test_tags_changed_follows_renames_deletes_and_mapping_changes(user: User) -> None:
    """PUT, DELETE and every accepted mapping POST (even a no-op) emit it; a tag POST and
    refused requests do not (events arrive in order: a later one proves an earlier absence)."""
    tag = await create(user, "a")
    async with open_stream(user.stack, user.key) as stream:

        async def subscribed() -> bool:
            # The subscription reaches the userstore just after the 200: retry a no-op change.
            await change(user, "add", [1], [])
            await asyncio.sleep(0.2)
            return tag_events(stream) > 0

        await eventually(subscribed, timeout=30, what="a first tags_changed")
        await asyncio.sleep(0.3)  # let the retries' events arrive before counting
        seen = tag_events(stream)
        await create(user, "b")  # no event
        await user.ok("PUT", f"/api/tags/{tag['id']}", json={"name": "c", "authId": user.auth_id})
        await expect(stream, seen + 1)
        refused = [
            ("POST", MAPPINGS, {"download_ids": [1], "tag_ids": [tag["id"] + 999]}),
            ("POST", MAPPINGS, {"download_ids": []}),
            ("PUT", f"/api/tags/{tag['id'] + 999}", {"name": "d"}),
            ("DELETE", f"/api/tags/{tag['id'] + 999}", None),
            ("PUT", f"/api/tags/{tag['id']}", {"name": "b"}),  # 409
        ]
        for method, path, payload in refused:
            status, _, _ = await user.call(method, path, json=payload)
            assert status in (400, 404, 409)
        await change(user, "remove", [1], [tag["id"]])  # nothing to remove: still announced
        await expect(stream, seen + 2)
        await user.ok("DELETE", f"/api/tags/{tag['id']}{q(user)}")
        await expect(stream, seen + 3)
        assert all(set(e) >= {"event"} for e in stream.events())
