# ruff: noqa: E501  (the tables of TBM's checks read best one case a line)
"""The upload queue's routes as TBM's Next.js server calls them, against the real services.

Every request is one TBM's proxies send (``fe:app/api/torrents``, ``usenet``, ``webdl``,
``uploads/batch`` and the Uploads page's hooks): ``x-api-key`` always. The worker is off in this
module (``UPLOAD_POLL_SECONDS=0``), so rows stay where the routes put them.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from tests.gateway.conftest import MakeUser
from tests.gateway.support import User, assert_error

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
STACK_ENV = {"UPLOAD_POLL_SECONDS": "0"}
MAGNET = "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=Some.Show.S01"
ROW_FIELDS = {
    "id", "type", "upload_type", "file_path", "url", "name", "status", "error_message",
    "retry_count", "seed", "allow_zip", "as_queued", "add_only_if_cached", "password",
    "queue_order", "torbox_hash", "torbox_torrent_id", "torbox_auth_id", "last_processed_at",
    "completed_at", "created_at", "updated_at", "next_attempt_at",
}  # fmt: skip


def torrent_body(name: str = "My Show.torrent", data: bytes = b"d4:infod4:name3:abcee") -> Any:
    """The body TBM's /api/torrents proxy sends to stage a file."""
    return {"file_data": base64.b64encode(data).decode(), "filename": name, "type": "torrent"}


async def stage(user: User, **kwargs: Any) -> str:
    """Stage a .torrent; returns its path."""
    body = await user.ok("POST", "/api/uploads/file", json=torrent_body(**kwargs))
    path: str = body["data"]["file_path"]
    return path


async def queue_magnet(user: User, name: str = "Some.Show.S01", **extra: Any) -> dict[str, Any]:
    """POST /api/uploads as queueTorrentUpload sends a magnet; returns the row."""
    payload = {
        "type": "torrent",
        "upload_type": "magnet",
        "file_path": None,
        "url": MAGNET,
        "name": name,
        "seed": None,
        **extra,
    }
    body = await user.ok("POST", "/api/uploads", json=payload)
    row: dict[str, Any] = body["data"]
    return row


async def test_magnet_row_has_tbm_shape_and_queue_order(user: User) -> None:
    """The row TBM's Next.js route wraps: every field, TBM's defaults, consecutive orders."""
    first = await queue_magnet(user, "First")
    second = await queue_magnet(user, "Second", seed=2, allow_zip=False, as_queued=True)
    assert set(first) == ROW_FIELDS
    assert first["status"] == "queued"
    assert first["seed"] is None
    assert first["allow_zip"] == 1
    assert first["as_queued"] == 0
    assert first["url"] == MAGNET
    assert first["next_attempt_at"] is None
    assert second["queue_order"] == first["queue_order"] + 1
    assert (second["seed"], second["allow_zip"], second["as_queued"]) == (2, 0, 1)
    detail = (await user.ok("GET", f"/api/uploads/{first['id']}"))["data"]
    assert set(detail) == ROW_FIELDS - {"next_attempt_at"}


async def test_staged_file_round_trip(user: User) -> None:
    """Stage, queue, list, download: the bytes come back typed by the name's extension."""
    data = b"d4:infod4:name5:helloee"
    path = await stage(user, name="Weird name!.TORRENT", data=data)
    assert path.startswith(f"user_{user.auth_id}/torrent/Weird_name__")
    assert path.endswith(".torrent")
    body = {
        "type": "torrent",
        "upload_type": "file",
        "file_path": path,
        "url": None,
        "name": "Weird.torrent",
    }
    row = (await user.ok("POST", "/api/uploads", json=body))["data"]
    assert row["file_path"] == path
    http = user.stack.http
    assert http is not None
    async with http.get(
        f"{user.stack.gw_url}/api/uploads/{row['id']}/download", headers={"x-api-key": user.key}
    ) as response:
        assert response.status == 200
        assert await response.read() == data
        assert response.headers["Content-Type"] == "application/x-bittorrent"
        assert response.headers["Content-Disposition"] == 'attachment; filename="Weird.torrent"'
    body["name"] = 'Café "日本".torrent'
    row = (await user.ok("POST", "/api/uploads", json=body))["data"]
    async with http.get(
        f"{user.stack.gw_url}/api/uploads/{row['id']}/download", headers={"x-api-key": user.key}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="Caf_ __.torrent"; '
            "filename*=UTF-8''Caf%C3%A9%20%E6%97%A5%E6%9C%AC.torrent"
        )
    magnet = await queue_magnet(user)
    reply = await user.call("GET", f"/api/uploads/{magnet['id']}/download")
    assert assert_error(reply, 400)["error"] == "This upload does not have a downloadable file"


CREATE_CHECKS = [
    ({"upload_type": "magnet", "url": "x", "name": "n"}, 400, "Invalid type. Must be torrent, usenet, or webdl"),
    ({"type": "torrent", "upload_type": "blob", "name": "n"}, 400, "Invalid upload_type. Must be file, magnet, or link"),
    ({"type": "usenet", "upload_type": "magnet", "url": "x"}, 400, 'Invalid combination: magnet links can only be used with type="torrent"'),
    ({"type": "torrent", "upload_type": "magnet", "url": "x", "name": ""}, 400, "name is required"),
    ({"type": "torrent", "upload_type": "file", "name": "n"}, 400, "file_path is required for file uploads"),
    ({"type": "webdl", "upload_type": "file", "name": "n", "file_path": "user_x/a.torrent"}, 400, "WebDL type does not support file uploads. Use link upload_type instead."),
    ({"type": "torrent", "upload_type": "file", "name": "n", "file_path": "user_x/a.nzb"}, 400, "Invalid file extension. Torrent type requires .torrent file extension"),
    ({"type": "usenet", "upload_type": "file", "name": "n", "file_path": "user_x/a.torrent"}, 400, "Invalid file extension. Usenet type requires .nzb file extension"),
    ({"type": "torrent", "upload_type": "file", "name": "n", "file_path": "user_other/a.torrent"}, 403, "Invalid file path: file must belong to authenticated user"),
    ({"type": "webdl", "upload_type": "link", "name": "n"}, 400, "url is required for magnet/link uploads"),
    ({"type": "torrent", "upload_type": "magnet", "name": "n", "url": "x", "seed": 7}, 400, "seed must be 1, 2 or 3"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "status", "message"), CREATE_CHECKS)
async def test_create_checks_in_tbm_order_and_words(
    user: User, payload: dict[str, Any], status: int, message: str
) -> None:
    """TBM's eight checks, first failure wins; another user's path is a 403."""
    reply = await user.call("POST", "/api/uploads", json=payload)
    assert assert_error(reply, status)["error"] == message


STAGE_CHECKS = [
    ({"filename": "a.torrent", "type": "torrent"}, "file_data (base64), filename, and type are required"),
    ({"file_data": "AAAA", "filename": "a.torrent", "type": "x"}, "Invalid type. Must be torrent, usenet, or webdl"),
    ({"file_data": "AAAA", "filename": "a.torrent", "type": "webdl"}, "WebDL type does not support file uploads. Use link upload_type instead."),
    ({"file_data": "AAAA", "filename": "a.txt", "type": "torrent"}, "Invalid file extension. Torrent type requires .torrent file extension"),
    ({"file_data": "AAAA", "filename": "a.torrent", "type": "usenet"}, "Invalid file extension. Usenet type requires .nzb file extension"),
    ({"file_data": "!!!", "filename": "a.torrent", "type": "torrent"}, "file_data must be base64"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "message"), STAGE_CHECKS)
async def test_stage_checks(user: User, payload: dict[str, Any], message: str) -> None:
    """The /file route's checks in TBM's words."""
    reply = await user.call("POST", "/api/uploads/file", json=payload)
    assert assert_error(reply, 400)["error"] == message


async def test_large_bodies(user: User) -> None:
    """About 7.5 MiB of file inside a 10 MiB body is accepted; more is a 413 before reading."""
    http = user.stack.http
    assert http is not None
    for size, status in ((7 * 1024 * 1024 + 400 * 1024, 200), (7 * 1024 * 1024 + 700 * 1024, 413)):
        body = json.dumps(torrent_body(data=b"x" * size)).encode()
        async with http.post(
            f"{user.stack.gw_url}/api/uploads/file",
            data=io.BytesIO(body),
            headers={"x-api-key": user.key, "Content-Type": "application/json"},
        ) as response:
            assert response.status == status, await response.text()
    too_many = {"uploads": [{"type": "torrent"}] * 1001}
    reply = await user.call("POST", "/api/uploads/batch", json=too_many)
    assert assert_error(reply, 400)["error"] == "Maximum 1000 uploads per batch request"
    reply = await user.call("POST", "/api/uploads/batch", json={"uploads": []})
    assert assert_error(reply, 400)["error"] == "uploads array is required and must not be empty"


async def test_batch_keeps_input_order_and_lists_refusals(user: User) -> None:
    """Rows in input order with consecutive orders; refused items echoed without passwords."""
    items: list[dict[str, Any]] = [
        {"type": "torrent", "upload_type": "magnet", "name": f"m{i}", "url": MAGNET}
        for i in range(12)
    ]
    items.insert(3, {"type": "torrent", "upload_type": "magnet", "url": MAGNET, "password": "pw"})
    body = await user.ok("POST", "/api/uploads/batch", json={"uploads": items})
    rows = body["data"]["uploads"]
    assert [r["name"] for r in rows] == [f"m{i}" for i in range(12)]
    orders = [r["queue_order"] for r in rows]
    assert orders == list(range(orders[0], orders[0] + 12))
    assert body["data"]["errors"] == [
        {"upload": {**items[3], "password": None}, "error": "name is required"}
    ]
    assert body["meta"] == {"total": 13, "successful": 12, "failed": 1}
    clean = await user.ok("POST", "/api/uploads/batch", json={"uploads": items[:2]})
    assert "errors" not in clean["data"] or clean["data"]["errors"] is None


async def test_webdl_password_is_sealed_and_never_returned(user: User) -> None:
    """TBM returns the password in clear; we store it sealed and answer null."""
    body = {
        "type": "webdl",
        "upload_type": "link",
        "url": "https://example.com/f.zip",
        "name": "f.zip",
        "password": "hunter2-secret",
    }
    row = (await user.ok("POST", "/api/uploads", json=body))["data"]
    assert row["password"] is None
    listed = await user.ok("GET", "/api/uploads?type=webdl")
    assert "hunter2-secret" not in str(listed)
    assert "hunter2-secret" not in user.stack.logs()


async def test_list_filters_counts_and_statistics(make_user: MakeUser) -> None:
    """Filters, pagination, statusCounts and byType as the Uploads page reads them."""
    user = await make_user()
    for i in range(3):
        await queue_magnet(user, f"Alpha {i}")
    await queue_magnet(user, "Beta")
    page = await user.ok("GET", "/api/uploads?status=queued&page=1&limit=2")
    assert [r["name"] for r in page["data"]] == ["Alpha 0", "Alpha 1"]
    assert page["pagination"] == {"page": 1, "limit": 2, "total": 4, "totalPages": 2}
    assert page["statusCounts"] == {"queued": 4}
    assert page["data"][0]["create_was_cached"] is None
    stats = page["uploadStatistics"]
    assert set(stats["byType"]) == {"torrent", "usenet", "webdl"}
    torrent = stats["byType"]["torrent"]
    assert torrent["known"] is False
    assert torrent["limit"] is None
    assert torrent["window"] == {"uncachedUsed": 0, "uncachedLimit": 60, "uncachedResetAt": None}
    assert stats["retryAt"] is None
    found = await user.ok("GET", "/api/uploads?search=BETA")
    assert [r["name"] for r in found["data"]] == ["Beta"]
    clamped = await user.ok("GET", "/api/uploads?limit=5000&page=abc")
    assert clamped["pagination"]["limit"] == 1000
    assert clamped["pagination"]["page"] == 1


async def test_reorder_moves_and_shifts(make_user: MakeUser) -> None:
    """TBM's shifts, and its refusals in its words."""
    user = await make_user()
    rows = [await queue_magnet(user, f"r{i}") for i in range(4)]
    orders = [r["queue_order"] for r in rows]
    moved = await user.ok(
        "PATCH",
        "/api/uploads/reorder",
        json={"id": rows[3]["id"], "old_order": orders[3], "new_order": orders[0]},
    )
    assert moved["data"]["queue_order"] == orders[0]
    listed = await user.ok("GET", "/api/uploads?status=queued")
    assert [r["name"] for r in listed["data"]] == ["r3", "r0", "r1", "r2"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"id": rows[0]["id"]}, 400, "id, old_order, and new_order are required"),
        ({"id": "x", "old_order": 1, "new_order": 2}, 400, "Invalid id. Must be a positive integer."),
        ({"id": rows[0]["id"], "old_order": 1, "new_order": 1}, 400, "old_order and new_order must be different"),
        ({"id": 999999, "old_order": 1, "new_order": 2}, 404, "Upload not found"),
        ({"id": rows[0]["id"], "old_order": 999, "new_order": 2}, 400, "old_order does not match current queue_order"),
    ]  # fmt: skip
    for payload, status, message in cases:
        reply = await user.call("PATCH", "/api/uploads/reorder", json=payload)
        assert assert_error(reply, status)["error"] == message, payload


async def test_retry_and_delete(make_user: MakeUser) -> None:
    """Retry refuses rows that are not failed; deletes answer TBM's messages and counts."""
    user = await make_user()
    rows = [await queue_magnet(user, f"d{i}") for i in range(3)]
    reply = await user.call("POST", f"/api/uploads/{rows[0]['id']}/retry")
    assert assert_error(reply, 400)["error"] == "Can only retry failed uploads"
    reply = await user.call("POST", "/api/uploads/bulk/retry", json={"ids": [rows[0]["id"]]})
    assert assert_error(reply, 400)["error"] == "No failed uploads found to retry"
    reply = await user.call("POST", "/api/uploads/bulk/retry", json={"ids": [999999]})
    assert assert_error(reply, 404)["error"] == "No uploads found"
    reply = await user.call("POST", "/api/uploads/bulk/retry", json={"ids": [0]})
    assert assert_error(reply, 400)["error"] == "Invalid ids. All IDs must be positive integers."
    reply = await user.call("DELETE", "/api/uploads/bulk", json={"ids": []})
    assert assert_error(reply, 400)["error"] == "ids array is required and must not be empty"
    one = await user.ok("DELETE", f"/api/uploads/{rows[0]['id']}")
    assert one["message"] == "Upload deleted successfully"
    bulk = await user.ok(
        "DELETE", "/api/uploads/bulk", json={"ids": [rows[1]["id"], rows[2]["id"], 999999]}
    )
    assert bulk["message"] == "Deleted 2 upload(s)"
    assert bulk["data"] == {"deleted": 2, "requested": 3}
    reply = await user.call("GET", f"/api/uploads/{rows[0]['id']}")
    assert assert_error(reply, 404)["error"] == "Upload not found"


async def test_another_users_rows_and_files_are_not_found(make_user: MakeUser) -> None:
    """An id or a path of another user's upload reads nothing."""
    owner, other = await make_user(), await make_user()
    path = await stage(owner)
    row = await queue_magnet(owner)
    for method, suffix in (("GET", ""), ("GET", "/download"), ("DELETE", ""), ("POST", "/retry")):
        reply = await other.call(method, f"/api/uploads/{row['id']}{suffix}")
        assert_error(reply, 404)
    body = {"type": "torrent", "upload_type": "file", "file_path": path, "name": "x.torrent"}
    assert_error(await other.call("POST", "/api/uploads", json=body), 403)
    await other.ok("DELETE", "/api/uploads/file", json={"file_path": path})
    await owner.ok("POST", "/api/uploads", json=body)


async def test_restore_goes_through_the_queue(user: User) -> None:
    """An archived torrent comes back as a queued magnet row (seed 3, zip allowed)."""
    torrent_id = user.torrent_ids[0]
    archived = await user.ok(
        "POST",
        "/api/archived-downloads",
        json={"torrent_id": torrent_id, "hash": "b" * 40, "name": "Old.Show"},
    )
    archive_id = archived["data"]["id"]
    restored = await user.ok("POST", f"/api/archived-downloads/{archive_id}/restore")
    assert restored["data"]["status"] == "queued"
    upload = (await user.ok("GET", f"/api/uploads/{restored['data']['upload_id']}"))["data"]
    assert upload["url"].startswith("magnet:?xt=urn:btih:" + "b" * 40)
    assert (upload["seed"], upload["allow_zip"], upload["name"]) == (3, 1, "Old.Show")
    archive = await user.ok("GET", "/api/archived-downloads")
    assert all(a["id"] != archive_id for a in archive["data"])


async def test_removing_the_key_removes_the_queue_and_its_files(make_user: MakeUser) -> None:
    """Staged files and rows live in the user's database: gone with the key."""
    user = await make_user()
    path = await stage(user)
    body = {"type": "torrent", "upload_type": "file", "file_path": path, "name": "x.torrent"}
    row = (await user.ok("POST", "/api/uploads", json=body))["data"]
    await user.ok("DELETE", "/api/backend/api-key")
    await user.stack.register(user.key)
    assert (await user.ok("GET", "/api/uploads"))["data"] == []
    assert_error(await user.call("GET", f"/api/uploads/{row['id']}/download"), 404)
