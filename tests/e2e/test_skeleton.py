"""The walking skeleton end to end: a key registered over REST, polled, its torrents served back."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, eventually

pytestmark = pytest.mark.e2e


async def test_registered_key_is_polled_and_its_torrents_are_served(stack: Stack) -> None:
    """ensure-db registers the key; after a poll REST lists exactly the simulated torrents."""
    account = await stack.account(
        mix={"downloading": 2, "seeding": 2, "stalled": 1, "finished_inactive": 1, "queued": 1}
    )
    key = account["api_key"]
    registered = await stack.register(key)
    assert registered["success"] is True
    assert registered["dbExists"] is True
    assert registered["wasCreated"] is True
    assert len(registered["authId"]) == 64

    expected_torrents = set(account["torrent_ids"])
    expected_queued = set(account["queued_ids"])

    async def listed() -> list[dict[str, object]] | None:
        status, body, _ = await stack.gw("GET", "/api/automation/torrents", key=key)
        assert status == 200, body
        torrents = body["torrents"]
        return torrents if len(torrents) == len(expected_torrents) + len(expected_queued) else None

    torrents = await eventually(listed, what="the first poll")
    assert {t["torrent_id"] for t in torrents if not t["queued"]} == expected_torrents
    assert {t["torrent_id"] for t in torrents if t["queued"]} == expected_queued
    raw = await stack.sim("GET", f"/_sim/accounts/{key}")
    by_id = {t["id"]: t for t in raw["torrents"]}
    for torrent in torrents:
        if torrent["queued"]:
            assert torrent["status"] == "queued"
            continue
        source = by_id[torrent["torrent_id"]]
        assert torrent["hash"] == source["hash"]
        assert torrent["name"] == source["name"]
        assert torrent["first_seen_at"].endswith("Z")
        for field in (
            "last_download_activity_at",
            "stalled_since",
            "seeding_time_seconds",
            "avg_download_speed_5m",
            "stall_count",
            "last_total_downloaded",
        ):
            assert field in torrent

    again = await stack.register(key)
    assert again["wasCreated"] is False


async def test_wrong_key_is_400_and_unregistered_key_is_404(stack: Stack) -> None:
    """A key TorBox refuses gets 400 at ensure-db; a never-registered key gets 404 elsewhere."""
    status, body, _ = await stack.gw(
        "POST", "/api/backend/api-key/ensure-db", key="not-a-real-key-0123456789"
    )
    assert status == 400
    assert body == {
        "success": False,
        "error": "Invalid API key: TorBox refused it",
        "code": "INVALID_API_KEY",
        "field": "apiKey",
    }

    account = await stack.account(mix={"seeding": 1})
    status, body, _ = await stack.gw("GET", "/api/automation/torrents", key=account["api_key"])
    assert status == 404
    assert body["success"] is False
    assert body["error"] == "User not registered"

    status, body, _ = await stack.gw("POST", "/api/backend/api-key/ensure-db", key="short")
    assert status == 400
    assert body["code"] == "INVALID_API_KEY"


@pytest.mark.parametrize("service", ["gateway", "scheduler", "userstore"])
async def test_sigterm_exits_zero_within_grace(tmp_path: Path, service: str) -> None:
    """Each service stops cleanly on SIGTERM: exit code 0 well within its grace period."""
    running = await Stack(tmp_path).start()
    try:
        process = {
            "gateway": running.gateway,
            "scheduler": running.scheduler_procs[0],
            "userstore": running.userstores[0],
        }[service]
        assert process is not None
        code = await process.stop(timeout=12, sig=signal.SIGTERM)
        assert code == 0, process.output()[-3000:]
    finally:
        await running.stop()
