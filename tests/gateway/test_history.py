"""A torrent's transfer history over REST: the kept byte counters and the speeds between them."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import assert_error, assert_iso

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_torrent_history(make_user: MakeUser) -> None:
    """Oldest first, the first sample without a speed, counters never going back, 400 and 404."""
    user = await make_user(mix={"downloading": 1})
    torrent_id = user.torrent_ids[0]
    path = f"/api/automation/torrents/{torrent_id}/history"

    async def moved() -> dict[str, Any] | None:
        # This module's simulator is its own: moving its clock moves only this test's torrent.
        await user.stack.sim("POST", "/_sim/clock/advance", json={"seconds": 20})
        status, body, _ = await user.call("GET", path)
        if status == 404:
            return None  # not polled yet
        assert status == 200, body
        return body if len(body["samples"]) >= 3 else None

    body = await eventually(moved, timeout=30, interval=1.2, what="samples of a download")
    assert_iso(body["observed_since"])
    samples = body["samples"]
    assert samples[0]["download_speed"] is None
    assert samples[0]["upload_speed"] is None
    times = [assert_iso(s["observed_at"]) for s in samples]
    assert times == sorted(times)
    for before, after in pairwise(samples):
        assert after["downloaded"] >= before["downloaded"]
        assert after["download_speed"] >= 0
        assert after["upload_speed"] >= 0
    assert any(s["download_speed"] > 0 for s in samples[1:]), samples

    assert_error(
        await user.call("GET", "/api/automation/torrents/x/history"), 400, field="torrent_id"
    )
    assert_error(await user.call("GET", "/api/automation/torrents/999999999/history"), 404)
