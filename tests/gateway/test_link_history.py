"""Link history as TBM's Next.js server calls it, against the real services.

TBM's proxies forward ``x-api-key`` with ``Content-Type: application/json`` (on GET and DELETE
too), the bodies the frontend wrote, and the query's page, limit, search, keyset and cursor. The
frontend walks keyset pages of 1,000 (``pagination.nextCursor``) to mark downloaded items, pages
with a search on the history page, and migrates its old localStorage history in one bulk POST.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from common import limits
from tests.gateway.support import User, assert_error

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="module"),
    # The test client's own advice about sending megabytes from memory; the point here.
    pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning"),
]
PATH = "/api/link-history"
JSON = {"Content-Type": "application/json"}
SQLITE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
ROW_KEYS = {
    "id", "item_id", "file_id", "url", "asset_type", "item_name", "file_name",
    "generated_at", "created_at", "status",
}  # fmt: skip


def link(item: Any = 101, file: Any = None, **overrides: Any) -> dict[str, Any]:
    """The body useDownloads.addToDownloadHistory sends."""
    body: dict[str, Any] = {
        "item_id": item,
        "file_id": file,
        "url": f"https://store.example/dl/{item}/{file}?token=abc",
        "asset_type": "torrents",
        "item_name": f"Ubuntu {item}",
        "file_name": None,
        "status": "success",
    }
    body.update(overrides)
    return body


async def rows(user: User, query: str = "") -> dict[str, Any]:
    """GET as the history page asks (page mode)."""
    return await user.ok("GET", f"{PATH}?{query}", headers=JSON)


async def count(user: User) -> int:
    total: int = (await rows(user, "page=1&limit=1"))["pagination"]["total"]
    return total


async def test_create_answers_the_row_and_replaces_the_same_identity(user: User) -> None:
    """Upsert by item, file (null matches null) and asset type; numbers are stored as text."""
    body = await user.ok("POST", PATH, json=link(101), headers=JSON)
    first = body["data"]
    assert set(first) == ROW_KEYS
    assert (first["item_id"], first["file_id"], first["status"]) == ("101", None, "success")
    for name in ("generated_at", "created_at"):
        assert SQLITE_TIME.fullmatch(first[name]), first[name]
        moment = datetime.strptime(first[name], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - moment).total_seconds()) < 600
    await user.ok("POST", PATH, json=link(101, 7), headers=JSON)
    await user.ok("POST", PATH, json=link(101, asset_type="usenet"), headers=JSON)
    # file_id 0 is falsy to TBM: null, so it replaces the file-less entry.
    again = await user.ok("POST", PATH, json=link("101", 0, url="https://new"), headers=JSON)
    assert again["data"]["id"] > first["id"]
    page = await rows(user)
    assert page["pagination"] == {"page": 1, "limit": 50, "total": 3, "totalPages": 1}
    identities = {(r["item_id"], r["file_id"], r["asset_type"]) for r in page["data"]}
    assert identities == {
        ("101", None, "torrents"),
        ("101", "7", "torrents"),
        ("101", None, "usenet"),
    }
    newest = page["data"][0]
    assert (newest["url"], newest["file_id"]) == ("https://new", None)
    # A failed link needs no url.
    failed = await user.ok("POST", PATH, json=link(102, url=None, status="failed"), headers=JSON)
    assert (failed["data"]["url"], failed["data"]["status"]) == ("", "failed")


REQUIRED = "item_id and asset_type are required"
NEEDS_URL = "url is required for successful link history entries"
ASSET_TYPE = "asset_type must be one of: torrents, usenet, webdl"


def bad(**fields: Any) -> dict[str, Any]:
    """A body from a good base ({item_id: 1, asset_type: torrents, url: u}); None drops a key."""
    body: dict[str, Any] = {"item_id": 1, "asset_type": "torrents", "url": "u", **fields}
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "item_id", REQUIRED),
        (bad(item_id=0), "item_id", REQUIRED),
        (bad(asset_type=None), "asset_type", REQUIRED),
        (bad(url=None), "url", NEEDS_URL),
        (bad(url=""), "url", NEEDS_URL),
        # TBM checks the url before the asset type.
        (bad(url=None, asset_type="torrent"), "url", NEEDS_URL),
        (bad(asset_type="torrent"), "asset_type", ASSET_TYPE),
        (bad(asset_type="all", url=None, status="failed"), "asset_type", ASSET_TYPE),
        # Values TBM would fail on (or store as garbage): a 400 naming the field.
        (bad(item_id={"a": 1}), "item_id", None),
        (bad(url=["u"]), "url", None),
        (bad(item_name=[1]), "item_name", None),
        (bad(url="u" * (limits.MAX_LINK_URL + 1)), "url", None),
        (bad(item_id="i" * (limits.MAX_LINK_ID + 1)), "item_id", None),
    ],
)
async def test_create_refusals_in_tbms_order(
    user: User, payload: dict[str, Any], field: str, message: str | None
) -> None:
    """Each bad body is a 400 naming the field, in TBM's words where TBM has them."""
    await user.ok("POST", PATH, json=link(1), headers=JSON)
    body = assert_error(await user.call("POST", PATH, json=payload, headers=JSON), 400, field=field)
    if message is not None:
        assert body["error"] == message
    assert await count(user) == 1


async def test_bulk_migration_keeps_times_skips_the_unusable_and_dedupes(user: User) -> None:
    """The migration's body: ISO times kept (shown as UTC text); first of a repeat wins."""
    await user.ok("POST", PATH, json=link("old"), headers=JSON)
    entries: list[Any] = [
        link("1", generated_at="2026-08-20T10:00:00.000Z"),
        link("1", generated_at="2026-08-21T10:00:00.000Z", url="https://second"),  # repeat
        link("2", "5", generated_at="2026-08-20 09:00:00"),  # SQLite's format
        link("3", generated_at="2026-08-20T12:00:00+02:00"),  # an offset: 10:00 UTC
        link("4", generated_at=1_787_220_000_000),  # epoch milliseconds
        link("old"),  # no time: now (and it replaces the stored one)
        link("5", generated_at="yesterday"),  # unreadable: skipped
        link("6", url=""),  # success without a url: skipped
        link("7", asset_type="torrent"),  # unknown asset type: skipped
        {"asset_type": "torrents", "url": "u"},  # no item: skipped
        "junk",  # not an object: skipped
    ]
    body = await user.ok("POST", f"{PATH}/bulk", json={"entries": entries}, headers=JSON)
    assert body["message"] == "Migrated 5 link history entries"
    assert body["data"] == {"requested": 11, "validated": 5, "deleted": 1, "inserted": 5}
    by_item = {r["item_id"]: r for r in (await rows(user))["data"]}
    assert set(by_item) == {"old", "1", "2", "3", "4"}
    assert by_item["1"]["generated_at"] == "2026-08-20 10:00:00"
    assert by_item["1"]["url"] == link("1")["url"]
    assert by_item["2"]["generated_at"] == "2026-08-20 09:00:00"
    assert by_item["3"]["generated_at"] == "2026-08-20 10:00:00"
    expected = datetime.fromtimestamp(1_787_220_000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert by_item["4"]["generated_at"] == expected
    one = await user.ok("POST", f"{PATH}/bulk", json={"entries": [link("9")]}, headers=JSON)
    assert one["message"] == "Migrated 1 link history entry"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "entries array is required and must not be empty"),
        ({"entries": []}, "entries array is required and must not be empty"),
        ({"entries": {"0": link()}}, "entries array is required and must not be empty"),
        ({"entries": [{"item_id": 1}, "x", link(2, url="")]}, "No valid entries to insert"),
        (
            {"entries": [link(1)] * (limits.MAX_LINK_IMPORT + 1)},
            f"entries array must not exceed {limits.MAX_LINK_IMPORT} items",
        ),
    ],
)
async def test_bulk_refusals_store_nothing(
    user: User, payload: dict[str, Any], message: str
) -> None:
    """TBM's words, a 400 naming entries, and the history unchanged."""
    body = assert_error(
        await user.call("POST", f"{PATH}/bulk", json=payload, headers=JSON), 400, field="entries"
    )
    assert body["error"] == message
    assert await count(user) == 0


async def test_bulk_takes_a_whole_localstorage_history_up_to_10_mib(user: User) -> None:
    """Larger than the usual 1 MiB cap is accepted here; past 10 MiB is a 413, nothing stored."""
    big = [link(i, i % 3, item_name="n" * 400) for i in range(1, 6001)]
    raw = json.dumps({"entries": big}).encode()
    assert len(raw) > 2 * 1024 * 1024
    body = await user.ok("POST", f"{PATH}/bulk", data=raw, headers=JSON)
    assert body["data"]["inserted"] == 6000
    too_big = json.dumps({"entries": big * 5}).encode()
    assert len(too_big) > 10 * 1024 * 1024
    status, answer, _ = await user.call("POST", f"{PATH}/bulk", data=too_big, headers=JSON)
    assert status == 413, answer
    assert "10 MiB" in answer["error"]
    assert await count(user) == 6000
    # Without a Content-Length the read itself stops at 10 MiB.

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 1 << 20):
            yield too_big[start : start + (1 << 20)]

    assert user.stack.http is not None
    async with user.stack.http.post(
        user.stack.gw_url + f"{PATH}/bulk", data=chunks(), headers={**JSON, "x-api-key": user.key}
    ) as response:
        assert response.status == 413
        assert "10 MiB" in (await response.json())["error"]
    assert await count(user) == 6000
    # Every other route keeps the 1 MiB cap.
    status, _, _ = await user.call(
        "POST", PATH, data=json.dumps(link(1, item_name="n" * 1_100_000)).encode(), headers=JSON
    )
    assert status == 413


async def walk(user: User, limit: int, search: str = "") -> list[int]:
    """Keyset pages as downloadHistoryStore walks them: until no cursor or a short page."""
    seen: list[int] = []
    cursor = None
    while True:
        query = f"keyset=1&limit={limit}" + (f"&search={quote(search)}" if search else "")
        if cursor:
            query += f"&cursor={quote(cursor)}"
        body = await user.ok("GET", f"{PATH}?{query}", headers=JSON)
        batch = body["data"]
        seen.extend(r["id"] for r in batch)
        pagination = body["pagination"]
        assert set(pagination) == {"limit", "nextCursor", "hasMore"}
        assert pagination["hasMore"] is (pagination["nextCursor"] is not None)
        assert (pagination["nextCursor"] is not None) is (len(batch) == limit)
        cursor = pagination["nextCursor"]
        if not cursor or len(batch) < limit:
            return seen


async def test_keyset_walks_thousands_of_equal_times_without_loss_or_repeat(user: User) -> None:
    """3,000 entries sharing three times: every walk sees each once, in page mode's order."""
    times = ["2026-08-20T10:00:00.000Z", "2026-08-20 10:00:00", "2026-08-19T10:00:00.000Z"]
    entries = [link(i, generated_at=times[i % 3]) for i in range(1, 3001)]
    await user.ok("POST", f"{PATH}/bulk", json={"entries": entries}, headers=JSON)
    ordered = []
    for page in range(1, 4):
        ordered += [r["id"] for r in (await rows(user, f"page={page}&limit=1000"))["data"]]
    assert len(set(ordered)) == 3000
    for limit in (1000, 999, 37):
        assert await walk(user, limit) == ordered, limit
    # The same with a search (the 813 entries with a 7 in their item id).
    body = await rows(user, "search=7&limit=1000")
    assert body["pagination"]["total"] == 813
    assert await walk(user, 50, "7") == [r["id"] for r in body["data"]]


async def test_page_mode_searches_and_clamps_as_tbm(user: User) -> None:
    """search: trimmed, case-insensitive over item_id, names and url; limit and page clamped."""
    await user.ok("POST", PATH, json=link("A1", item_name="Big Buck Bunny"), headers=JSON)
    await user.ok("POST", PATH, json=link("B2", 9, file_name="Sintel.MKV"), headers=JSON)
    await user.ok("POST", PATH, json=link("C3", url="https://Host.example/x_y"), headers=JSON)
    for search, expected in (
        ("bunny", {"A1"}),
        ("  sintel.mkv ", {"B2"}),
        ("host.EXAMPLE", {"C3"}),
        ("x_y", {"C3"}),
        ("c3", {"C3"}),
        ("%", set()),
    ):
        body = await rows(user, f"search={quote(search)}")
        assert {r["item_id"] for r in body["data"]} == expected, search
        assert body["pagination"]["total"] == len(expected)
    for query, limit in (("limit=5000", 1000), ("limit=0", 50), ("limit=-3", 1), ("limit=x", 50)):
        assert (await rows(user, query))["pagination"]["limit"] == limit, query
    body = await rows(user, "page=2&limit=2")
    assert body["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2}
    assert len(body["data"]) == 1
    assert (await rows(user, "page=0"))["pagination"]["page"] == 1


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "e30",  # {} in base64
        "bm90IGpzb24",  # "not json"
        "eyJnIjoiMjAyNi0wOC0yMCAxMDowMDowMCIsImkiOjV9",  # TBM's shape: g is a string
        "eyJnIjoxLjAsImkiOi0xfQ",  # a negative id
        quote(json.dumps({"g": "2026-08-20 10:00:00", "i": 5})),  # TBM's own cursor text
        "A" * 500,
    ],
)
async def test_a_bad_cursor_is_refused_in_both_modes(user: User, cursor: str) -> None:
    """400 "Invalid cursor" whether or not keyset mode is asked for."""
    for mode in ("keyset=1&", "keyset=true&", ""):
        body = assert_error(
            await user.call("GET", f"{PATH}?{mode}cursor={quote(cursor)}", headers=JSON),
            400,
            field="cursor",
        )
        assert body["error"] == "Invalid cursor"


async def test_deletes_in_tbms_words(user: User) -> None:
    """Bulk: counts what existed, never 404; single: 404 when unknown; refusals change nothing."""
    ids = [
        (await user.ok("POST", PATH, json=link(i), headers=JSON))["data"]["id"] for i in range(1, 5)
    ]
    body = await user.ok(
        "DELETE", f"{PATH}/bulk", json={"ids": [ids[0], str(ids[1]), 999_999]}, headers=JSON
    )
    assert body == {
        "success": True,
        "message": "Deleted 2 link history entries",
        "data": {"deleted": 2, "requested": 3},
    }
    body = await user.ok("DELETE", f"{PATH}/bulk", json={"ids": [ids[2]]}, headers=JSON)
    assert body["message"] == "Deleted 1 link history entry"
    body = await user.ok("DELETE", f"{PATH}/bulk", json={"ids": [999_999]}, headers=JSON)
    assert body["message"] == "Deleted 0 link history entries"
    for payload, message in (
        ({}, "ids array is required and must not be empty"),
        ({"ids": []}, "ids array is required and must not be empty"),
        ({"ids": "1"}, "ids array is required and must not be empty"),
        ({"ids": [ids[3], 0]}, "Invalid ids. All IDs must be positive integers."),
        ({"ids": [ids[3], "abc"]}, "Invalid ids. All IDs must be positive integers."),
        (
            {"ids": list(range(1, limits.MAX_LINK_DELETE + 2))},
            f"ids array must not exceed {limits.MAX_LINK_DELETE} items",
        ),
    ):
        body = assert_error(
            await user.call("DELETE", f"{PATH}/bulk", json=payload, headers=JSON), 400
        )
        assert body["error"] == message
    assert await count(user) == 1
    body = await user.ok("DELETE", f"{PATH}/{ids[3]}", headers=JSON)
    assert body == {"success": True, "message": "Link history entry deleted successfully"}
    body = assert_error(await user.call("DELETE", f"{PATH}/{ids[3]}", headers=JSON), 404)
    assert body["error"] == "Link history entry not found"
    body = assert_error(await user.call("DELETE", f"{PATH}/x1", headers=JSON), 400, field="id")
    assert body["error"] == "Invalid id. Must be a positive integer."


async def test_history_is_per_user(user: User, make_user: Any) -> None:
    """Another user neither sees nor deletes it; an unregistered key is a 404."""
    made = (await user.ok("POST", PATH, json=link(1), headers=JSON))["data"]
    other: User = await make_user()
    assert (await rows(other))["data"] == []
    assert_error(await other.call("DELETE", f"{PATH}/{made['id']}", headers=JSON), 404)
    body = await other.ok("DELETE", f"{PATH}/bulk", json={"ids": [made["id"]]}, headers=JSON)
    assert body["data"]["deleted"] == 0
    assert await count(user) == 1
    unregistered: User = await make_user(register=False)
    assert_error(await unregistered.call("GET", PATH, headers=JSON), 404)


async def test_the_user_rate_limit_applies_and_a_refused_write_stores_nothing(user: User) -> None:
    """Past the burst, writes to views and history are 429 and change nothing."""
    base = await user.stack.start_gateway(
        "gateway-limited-history", RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="2"
    )
    call = user.stack.call
    for item in (1, 2):
        status, _, _ = await call(base, "POST", PATH, key=user.key, json=link(item), headers=JSON)
        assert status == 200
    for path, payload in (
        (PATH, link(3)),
        (f"{PATH}/bulk", {"entries": [link(4)]}),
        ("/api/custom-views", {"name": "v", "filters": {}}),
    ):
        reply = await call(base, "POST", path, key=user.key, json=payload, headers=JSON)
        assert_error(reply, 429, code="RATE_LIMITED")
    assert await count(user) == 2
    assert (await user.ok("GET", "/api/custom-views"))["views"] == []
