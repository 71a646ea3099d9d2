"""The upload queue end to end over real processes: budget, order, fairness and crashes.

Two users queue magnets and .torrent files through the gateway as TBM's Next.js server does; the
scheduler's worker pushes them to the simulator, whose hourly uncached budget is compressed to a
few seconds. Every upload must land exactly once, in queue order per user, deferred rows must
carry TBM's marker strings and resume by themselves, and a SIGKILL of the userstore or of the
scheduler mid-queue must lose and duplicate nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack, eventually

pytestmark = pytest.mark.e2e

UNCACHED_MARKER = "Uncached rate limit reached. Will retry automatically."
MARKERS = {
    UNCACHED_MARKER,
    "Rate limit reached. Will retry automatically.",
    "TorBox API unavailable. Will retry automatically.",
    "TorBox create timed out or failed to connect. Will retry shortly.",
    "TorBox is still processing a queued upload. Will retry automatically.",
}
WORKER_ENV = {
    "UPLOAD_POLL_SECONDS": "0.2",
    "UPLOAD_BATCH": "5",
    "UPLOAD_LEASE_SECONDS": "5",
    "UPLOAD_RATE_LIMIT_FALLBACK_SECONDS": "1",
    "RATE_LIMIT_PER_MINUTE": "6000000",
    "RATE_LIMIT_BURST": "1000000",
    "TORBOX_RATE_PER_MINUTE": "100000",
}
# 40 uncached creates per key and type every 3 s; no per-minute limit in the way.
BUDGET = ("--time-scale", "0", "--rate-limit-per-minute", "0")
BUDGET_ARGS = (*BUDGET, "--uncached-per-hour", "40", "--uncached-window-seconds", "3")
NO_BUDGET_ARGS = (*BUDGET, "--uncached-per-hour", "0")


def magnet(user: int, i: int) -> tuple[str, str]:
    """A distinct magnet and its infohash."""
    info_hash = f"{user:02x}{i:038x}"
    return f"magnet:?xt=urn:btih:{info_hash}&dn=u{user}.m{i}", info_hash


def torrent_file(user: int, i: int) -> tuple[bytes, str]:
    """A valid single-file .torrent and its infohash."""
    name = f"u{user}-file-{i}".encode()
    info = b"d6:lengthi1024e4:name" + str(len(name)).encode() + b":" + name
    info += b"12:piece lengthi16384ee"
    return b"d4:info" + info + b"e", hashlib.sha1(info).hexdigest()


async def call(stack: Stack, key: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """A gateway call that must succeed."""
    status, body, _ = await stack.gw(method, path, key=key, **kw)
    assert status == 200, (method, path, status, body)
    result: dict[str, Any] = body
    return result


async def queue(stack: Stack, key: str, user: int, magnets: int, files: int) -> list[str]:
    """Queue magnets (one batch) then staged files (one by one); returns hashes in queue order."""
    hashes: list[str] = []
    items = []
    for i in range(magnets):
        url, info_hash = magnet(user, i)
        items.append({"type": "torrent", "upload_type": "magnet", "url": url, "name": f"m{i}"})
        hashes.append(info_hash)
    if items:
        body = await call(stack, key, "POST", "/api/uploads/batch", json={"uploads": items})
        assert body["meta"]["successful"] == magnets
    for i in range(files):
        data, info_hash = torrent_file(user, i)
        staged = await call(
            stack,
            key,
            "POST",
            "/api/uploads/file",
            json={
                "file_data": base64.b64encode(data).decode(),
                "filename": f"f{i}.torrent",
                "type": "torrent",
            },
        )
        row = {
            "type": "torrent",
            "upload_type": "file",
            "file_path": staged["data"]["file_path"],
            "name": f"f{i}.torrent",
        }
        await call(stack, key, "POST", "/api/uploads", json=row)
        hashes.append(info_hash)
    return hashes


async def rows(stack: Stack, key: str, status: str = "") -> list[dict[str, Any]]:
    """Every upload row of a user (or those with `status`)."""
    query = f"?limit=1000&status={status}" if status else "?limit=1000"
    data: list[dict[str, Any]] = (await call(stack, key, "GET", "/api/uploads" + query))["data"]
    return data


async def landed(stack: Stack, key: str) -> list[str]:
    """Hashes on the simulated account, in the order TorBox created them."""
    account = await stack.sim("GET", f"/_sim/accounts/{key}")
    items = [*account["torrents"], *account["queued"]]
    return [t["hash"] for t in sorted(items, key=lambda t: t["id"])]


async def creates(stack: Stack, key: str) -> list[dict[str, Any]]:
    """The simulator's log of create calls for the account."""
    account = await stack.sim("GET", f"/_sim/accounts/{key}")
    return [r for r in account["requests"] if r["endpoint"] == "torrents/createtorrent"]


async def new_user(stack: Stack) -> str:
    """A registered account with nothing on it."""
    key: str = (await stack.account(torrents=[]))["api_key"]
    await stack.register(key)
    return key


async def all_done(stack: Stack, key: str, expected: int) -> bool:
    """Every row completed."""
    found = await rows(stack, key)
    assert not [r for r in found if r["status"] == "failed"], found
    return len(found) == expected and all(r["status"] == "completed" for r in found)


async def everything_done(stack: Stack, keys: list[str], expected: list[list[str]]) -> bool:
    """Every row of every user completed."""
    for key, hashes in zip(keys, expected, strict=True):
        if not await all_done(stack, key, len(hashes)):
            return False
    return True


def assert_exactly_once(hashes_landed: list[str], expected: list[str]) -> None:
    """Each upload is on TorBox once, and in the user's queue order."""
    assert sorted(hashes_landed) == sorted(expected)
    assert len(set(hashes_landed)) == len(hashes_landed)
    assert hashes_landed == expected


@pytest.fixture
async def budget_stack(tmp_path: Path) -> Any:
    """A stack whose simulator allows 40 uncached creates per type every 3 s."""
    stack = await Stack(tmp_path, env=WORKER_ENV, sim_args=BUDGET_ARGS).start()
    try:
        yield stack
    finally:
        await stack.stop()


async def test_two_users_land_exactly_once_in_order_through_the_budget(budget_stack: Stack) -> None:
    """200 magnets and 20 files from two users: all land once, in order; deferrals show TBM's
    marker and resume by themselves."""
    stack = budget_stack
    keys = [await new_user(stack), await new_user(stack)]
    expected = [
        await queue(stack, keys[0], 0, magnets=150, files=10),
        await queue(stack, keys[1], 1, magnets=50, files=10),
    ]
    seen_markers: set[str] = set()

    async def deferred_marker() -> bool:
        for row in await rows(stack, keys[0], "queued"):
            if row["error_message"]:
                seen_markers.add(row["error_message"])
                assert row["next_attempt_at"] is not None
        return UNCACHED_MARKER in seen_markers

    await eventually(deferred_marker, timeout=30, interval=0.1, what="an uncached deferral")
    assert seen_markers <= MARKERS
    stats = (await call(stack, keys[0], "GET", "/api/uploads"))["uploadStatistics"]
    assert stats["byType"]["torrent"]["window"]["uncachedLimit"] == 60
    await eventually(lambda: everything_done(stack, keys, expected), timeout=60)
    for key, hashes in zip(keys, expected, strict=True):
        assert_exactly_once(await landed(stack, key), hashes)
        ok = [r for r in await creates(stack, key) if r["result"] == "ok"]
        assert len(ok) == len(hashes)
        done = await rows(stack, key)
        assert all(r["torbox_torrent_id"] and r["torbox_hash"] for r in done)
        assert all(r["create_was_cached"] is False for r in done)


async def test_a_burst_does_not_delay_another_users_single_upload(tmp_path: Path) -> None:
    """While one user's 300 magnets drain, another's single magnet lands within a cycle."""
    stack = await Stack(tmp_path, env=WORKER_ENV, sim_args=NO_BUDGET_ARGS).start()
    try:
        burst, single = await new_user(stack), await new_user(stack)
        await queue(stack, burst, 0, magnets=300, files=0)
        expected = await queue(stack, single, 1, magnets=1, files=0)
        await eventually(lambda: all_done(stack, single, 1), timeout=20, interval=0.05)
        # The burst was still draining: the single upload did not wait behind it.
        assert len(await rows(stack, burst, "queued")) >= 200
        assert await landed(stack, single) == expected
        await eventually(lambda: all_done(stack, burst, 300), timeout=60)
    finally:
        await stack.stop()


@pytest.mark.parametrize("victim", ["userstore", "scheduler"])
async def test_sigkill_mid_queue_loses_and_duplicates_nothing(
    budget_stack: Stack, victim: str
) -> None:
    """A crash of either process while uploads are in flight: all land, once, in order."""
    stack = budget_stack
    key = await new_user(stack)
    expected = await queue(stack, key, 0, magnets=100, files=10)

    async def some_landed() -> bool:
        return len(await landed(stack, key)) >= 20

    await eventually(some_landed, timeout=30, interval=0.05, what="the first creates")
    if victim == "userstore":
        old = stack.userstores[0]
        port = old.port
        await old.kill()
        await asyncio.sleep(1.0)  # the worker keeps going into a dead shard meanwhile
        await stack.start_userstore(0, port=port)
    else:
        old = stack.scheduler_procs[0]
        port = old.port
        await old.kill()
        await stack.start_scheduler(0, port=port)
    await eventually(lambda: all_done(stack, key, len(expected)), timeout=60)
    assert_exactly_once(await landed(stack, key), expected)


async def test_every_type_lands_and_refusals_fail_with_torboxs_words(budget_stack: Stack) -> None:
    """Usenet and web downloads land (the sealed password reaches TorBox); business refusals
    fail their row with TorBox's message; a transient nothing is never a failure."""
    stack = budget_stack
    key = await new_user(stack)
    nzb = base64.b64encode(b"<?xml version='1.0'?><nzb><file/></nzb>").decode()
    staged = await call(
        stack,
        key,
        "POST",
        "/api/uploads/file",
        json={"file_data": nzb, "filename": "show.nzb", "type": "usenet"},
    )
    not_torrent = await call(
        stack,
        key,
        "POST",
        "/api/uploads/file",
        json={"file_data": "bm9wZQ==", "filename": "x.torrent", "type": "torrent"},
    )
    link = "https://example.com/files/big.zip"
    items = [
        {"type": "usenet", "upload_type": "file", "file_path": staged["data"]["file_path"],
         "name": "show.nzb"},
        {"type": "webdl", "upload_type": "link", "url": link, "name": "big.zip",
         "password": "s3cret-pass"},
        {"type": "torrent", "upload_type": "file", "file_path": not_torrent["data"]["file_path"],
         "name": "x.torrent"},
        {"type": "torrent", "upload_type": "magnet", "url": "magnet:?xt=urn:btih:nothing",
         "name": "bad"},
        {"type": "torrent", "upload_type": "magnet", "url": magnet(7, 1)[0], "name": "uncached",
         "add_only_if_cached": True},
    ]  # fmt: skip
    await call(stack, key, "POST", "/api/uploads/batch", json={"uploads": items})

    async def settled() -> list[dict[str, Any]] | None:
        found = await rows(stack, key)
        return found if all(r["status"] in ("completed", "failed") for r in found) else None

    by_name = {r["name"]: r for r in await eventually(settled, timeout=30)}
    assert by_name["show.nzb"]["status"] == "completed"
    assert by_name["big.zip"]["status"] == "completed"
    assert by_name["big.zip"]["torbox_torrent_id"] is not None
    refused = {n: by_name[n]["error_message"] for n in ("x.torrent", "bad", "uncached")}
    assert refused == {
        "x.torrent": "The torrent or magnet link is not valid.",
        "bad": "The torrent or magnet link is not valid.",
        "uncached": "This download is not cached on TorBox.",
    }
    assert all(by_name[n]["status"] == "failed" for n in refused)
    account = await stack.sim("GET", f"/_sim/accounts/{key}")
    assert [d["password"] for d in account["webdl"]] == ["s3cret-pass"]
    assert len(account["usenet"]) == 1
    assert "s3cret-pass" not in stack.logs()
    # A failed row retried goes back to the queue and fails again the same way (not lost).
    await call(stack, key, "POST", f"/api/uploads/{by_name['bad']['id']}/retry")
    again = await eventually(settled, timeout=30)
    assert {r["name"]: r["status"] for r in again}["bad"] == "failed"


async def test_a_create_sent_but_never_confirmed_is_resolved_once(budget_stack: Stack) -> None:
    """The scheduler dies while TorBox is still answering a create (which then goes through):
    its next boot sends the row again, TorBox says "already exists", and the row completes. The
    torrent is on TorBox once."""
    stack = budget_stack
    key = await new_user(stack)
    await stack.sim(
        "POST",
        "/_sim/faults",
        json={"api_key": key, "kind": "late_answer", "endpoint": "create", "delay": 3.0},
    )
    expected = await queue(stack, key, 3, magnets=1, files=0)

    async def in_flight() -> bool:
        return len(await rows(stack, key, "processing")) == 1

    await eventually(in_flight, timeout=10, interval=0.05, what="the create in flight")
    old = stack.scheduler_procs[0]
    port = old.port
    await old.kill()

    async def created() -> bool:
        return await landed(stack, key) == expected

    await eventually(created, timeout=10, what="TorBox having done the create")
    await stack.start_scheduler(0, port=port)
    await eventually(lambda: all_done(stack, key, 1), timeout=20)
    assert await landed(stack, key) == expected
    results = [r["result"] for r in await creates(stack, key)]
    assert results.count("ok") == 1
    assert "DUPLICATE_ITEM" in results
    row = (await rows(stack, key))[0]
    assert row["torbox_hash"] == expected[0]
