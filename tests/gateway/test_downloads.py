"""Protection and archive routes as TBM's Next.js server calls them, against the real services.

TBM asks ``POST /api/downloads/protect/assert`` before every delete and stop seeding (and turns
anything but 200/403 into a 500 for the user); archiving checks protection before duplicates. The
bodies here are the ones TBM sends (``x-api-key`` header; some proxies add ``authId``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import User, assert_error
from tests.gateway.test_sse import open_stream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
STACK_ENV = {"SSE_HEARTBEAT_SECONDS": "0.5"}
ASSERT = "/api/downloads/protect/assert"
PROTECTED = {"success": False, "error": "Download is protected", "code": "DOWNLOAD_PROTECTED"}


async def protect(user: User, *ids: int, protected: bool = True) -> list[Any]:
    body = await user.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": list(ids), "protected": protected}
    )
    result: list[Any] = body["protected_ids"]
    return result


async def test_assert_allows_free_ids_and_names_the_blocked(user: User) -> None:
    """200 {allowed, blocked} while any id is free; 403 naming every id when none is."""
    free, guarded, _ = user.torrent_ids
    await protect(user, guarded)
    for operation in ("delete", "archive", "stop_seeding"):
        body = await user.ok(
            "POST", ASSERT, json={"download_ids": [free, str(guarded)], "operation": operation}
        )
        assert body == {"success": True, "allowed": [str(free)], "blocked": [str(guarded)]}
    status, body, _ = await user.call(
        "POST", ASSERT, json={"download_ids": [guarded], "operation": "delete"}
    )
    assert status == 403
    assert body == {**PROTECTED, "blocked_ids": [str(guarded)]}
    # Unprotected again: allowed.
    await protect(user, guarded, protected=False)
    body = await user.ok("POST", ASSERT, json={"download_ids": [guarded], "operation": "delete"})
    assert body["blocked"] == []


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "download_ids", "download_ids array is required and must not be empty"),
        (
            {"download_ids": []},
            "download_ids",
            "download_ids array is required and must not be empty",
        ),
        (
            {"download_ids": list(range(1, 1002)), "operation": "delete"},
            "download_ids",
            "download_ids array must not exceed 1000 items",
        ),
        ({"download_ids": [1]}, "operation", "operation must be a destructive download operation"),
        (
            {"download_ids": [1], "operation": "pause"},
            "operation",
            "operation must be a destructive download operation",
        ),
        ({"download_ids": [1, "x"], "operation": "delete"}, "download_ids.1", None),
        ({"download_ids": ["9" * 5000], "operation": "delete"}, "download_ids.0", None),
    ],
)
async def test_assert_refuses_bad_bodies_with_tbms_words(
    user: User, payload: dict[str, Any], field: str, message: str | None
) -> None:
    """Each bad body is a 400 naming the field, in TBM's words where TBM has them."""
    body = assert_error(await user.call("POST", ASSERT, json=payload), 400, field=field)
    if message is not None:
        assert body["error"] == message


async def test_protection_covers_a_queued_item_by_its_queued_id(make_user: MakeUser) -> None:
    """The id TBM shows for a queued item is its queued id: protecting it blocks it."""
    user = await make_user(mix={"seeding": 1, "queued": 1})
    (queued,) = user.queued_ids
    await protect(user, queued)
    status, body, _ = await user.call(
        "POST", ASSERT, json={"download_ids": [queued], "operation": "delete"}
    )
    assert status == 403
    assert body["blocked_ids"] == [str(queued)]


async def test_protect_and_unprotect_emit_protection_changed(user: User) -> None:
    """TBM's frontend refetches its protection map on this SSE event."""
    async with open_stream(user.stack, user.key) as stream:

        async def seen() -> bool:
            # The stream's subscription reaches the userstore just after the 200: protect until
            # an event arrives (every PUT emits one).
            await protect(user, user.torrent_ids[0])
            await asyncio.sleep(0.3)
            return any(e["event"] == "protection_changed" for e in stream.events())

        await eventually(seen, timeout=30, what="protection_changed")


async def test_archiving_checks_protection_before_duplicates(user: User) -> None:
    """Single archive: 403 (with the blocked id) for a protected one, 409 for a repeat."""
    free, guarded, _ = user.torrent_ids
    await protect(user, guarded)
    status, body, _ = await user.call(
        "POST", "/api/archived-downloads", json={"torrent_id": guarded, "hash": "b" * 40}
    )
    assert status == 403
    assert body == {**PROTECTED, "blocked_ids": [str(guarded)]}
    made = await user.ok(
        "POST",
        "/api/archived-downloads",
        json={"torrent_id": str(free), "hash": "a" * 40, "name": "Free", "authId": user.auth_id},
    )
    assert made["data"]["torrent_id"] == str(free)
    assert made["data"]["created_at"] == made["data"]["archived_at"]
    assert_error(
        await user.call(
            "POST", "/api/archived-downloads", json={"torrent_id": free, "hash": "a" * 40}
        ),
        409,
    )
    for payload in ({}, {"torrent_id": free}, {"hash": "a" * 40}, {"torrent_id": 0, "hash": "x"}):
        body = assert_error(await user.call("POST", "/api/archived-downloads", json=payload), 400)
        assert body["error"] == "torrent_id and hash are required"


async def test_bulk_archive_skips_the_protected_and_the_unusable(user: User) -> None:
    """Bulk: protected ids come back blocked, entries without an id or a hash are skipped."""
    free, guarded, other = user.torrent_ids
    await protect(user, guarded)
    downloads = [
        {"torrent_id": free, "hash": "a" * 40, "name": "Free"},
        {"torrent_id": str(guarded), "hash": "b" * 40},
        {"torrent_id": free, "hash": "a" * 40},  # a repeat counts once
        {"hash": "c" * 40},  # no id: skipped
        "junk",
    ]
    body = await user.ok("POST", "/api/archived-downloads/bulk", json={"downloads": downloads})
    assert body["data"] == {"torrentIds": [str(free)], "blocked_ids": [str(guarded)]}
    # Idempotent: archiving it again reports it again, and the row is not duplicated.
    again = await user.ok(
        "POST",
        "/api/archived-downloads/bulk",
        json={
            "downloads": [
                {"torrent_id": free, "hash": "a" * 40},
                {"torrent_id": other, "hash": "d"},
            ]
        },
    )
    assert sorted(again["data"]["torrentIds"]) == sorted([str(free), str(other)])
    page = await user.ok("GET", "/api/archived-downloads")
    assert sorted(row["torrent_id"] for row in page["data"]) == sorted([str(free), str(other)])
    # Every usable one protected: 403 naming them.
    status, body, _ = await user.call(
        "POST",
        "/api/archived-downloads/bulk",
        json={"downloads": [{"torrent_id": guarded, "hash": "b" * 40}]},
    )
    assert status == 403
    assert body == {**PROTECTED, "blocked_ids": [str(guarded)]}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "downloads array is required and must not be empty"),
        ({"downloads": []}, "downloads array is required and must not be empty"),
        (
            {"downloads": [{"torrent_id": 1, "hash": "a"}] * 501},
            "downloads array must not exceed 500 items",
        ),
        (
            {"downloads": [{"name": "no id"}, {"torrent_id": "9" * 5000, "hash": "a"}]},
            "No valid downloads to archive (torrent_id and hash required)",
        ),
    ],
)
async def test_bulk_archive_refuses_bad_bodies(
    user: User, payload: dict[str, Any], message: str
) -> None:
    """TBM's exact messages, a 400 naming `downloads`; nothing stored."""
    body = assert_error(
        await user.call("POST", "/api/archived-downloads/bulk", json=payload),
        400,
        field="downloads",
    )
    assert body["error"] == message
    assert (await user.ok("GET", "/api/archived-downloads"))["data"] == []


async def test_bulk_delete_counts_what_it_removed(user: User) -> None:
    """DELETE bulk by row ids: unknown ids are not counted; the message is TBM's."""
    free, _, other = user.torrent_ids
    await user.ok(
        "POST",
        "/api/archived-downloads/bulk",
        json={"downloads": [{"torrent_id": free, "hash": "a"}, {"torrent_id": other, "hash": "b"}]},
    )
    rows = (await user.ok("GET", "/api/archived-downloads"))["data"]
    ids = [row["id"] for row in rows]
    body = await user.ok("DELETE", "/api/archived-downloads/bulk", json={"ids": [ids[0], 999_999]})
    assert body["message"] == "Deleted 1 archived download"
    assert body["data"] == {"deleted": 1, "requested": 2}
    body = await user.ok("DELETE", "/api/archived-downloads/bulk", json={"ids": [str(ids[1])]})
    assert body["data"]["deleted"] == 1
    assert (await user.ok("GET", "/api/archived-downloads"))["data"] == []
    for payload, message in (
        ({}, "ids array is required and must not be empty"),
        ({"ids": list(range(1, 502))}, "ids array must not exceed 500 items"),
        ({"ids": [1, "12abc"]}, "Invalid ids. All IDs must be positive integers."),
        ({"ids": [0]}, "Invalid ids. All IDs must be positive integers."),
    ):
        body = assert_error(
            await user.call("DELETE", "/api/archived-downloads/bulk", json=payload), 400
        )
        assert body["error"] == message
