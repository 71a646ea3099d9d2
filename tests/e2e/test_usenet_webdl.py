"""Usenet and web downloads end to end: one rule per type acts exactly once at the simulated
TorBox, and a user whose rules are about torrents only never has those lists fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.scenarios import control_log
from tests.e2e.stack import Stack, eventually

pytestmark = pytest.mark.e2e

DAY = 86_400.0
# TorBox's list and queue calls of the types other than torrents, as the simulator counts them.
OTHER_LISTS = (
    "usenet/mylist",
    "webdl/mylist",
    "queued/getqueued?type=usenet",
    "queued/getqueued?type=webdl",
)


@pytest.fixture
async def stack(tmp_path: Path) -> Any:
    # A running simulated clock (downloads progress), and stalls noticed after 3 s idle.
    running = await Stack(
        tmp_path, env={"STALL_AFTER_MINUTES": "0.05"}, sim_args=("--time-scale", "1")
    ).start()
    try:
        yield running
    finally:
        await running.stop()


async def add(stack: Stack, key: str, **body: Any) -> int:
    """One usenet or web download on the simulated account; its id (or queued id)."""
    made = await stack.sim("POST", f"/_sim/accounts/{key}/downloads", json=body)
    return int(made.get("id") or made["queued_id"])


def rule(name: str, types: list[str], action: dict[str, Any], *conds: dict[str, Any]) -> Any:
    return {
        "name": name,
        "enabled": True,
        "assetTypes": types,
        "trigger": {"type": "interval", "value": 0},
        "groups": [{"logicOperator": "and", "conditions": list(conds)}],
        "action": action,
    }


async def polls(stack: Stack, key: str, count: int) -> None:
    """Wait for `count` more polls of this user (the usenet list's observed_at moves)."""
    for _ in range(count):
        _, first, _ = await stack.gw("GET", "/api/automation/torrents?type=all", key=key)

        async def moved(seen: Any = first["observed_at"]) -> bool:
            _, now, _ = await stack.gw("GET", "/api/automation/torrents?type=all", key=key)
            return bool(now["observed_at"] and now["observed_at"] != seen)

        await eventually(moved, timeout=15, what="another poll")


async def test_one_rule_per_type_acts_once_each(stack: Stack) -> None:
    """Delete failed usenet older than 2 days, force-start a queued web download, tag a stalled
    usenet download: exactly those calls reach TorBox, once, and the tag lands on the stalled
    one only."""
    account = await stack.account(torrents=[{"profile": "seeding", "name": "a torrent"}])
    key = account["api_key"]
    old_failed = await add(stack, key, type="usenet", profile="failed", created_ago=3 * DAY)
    await add(stack, key, type="usenet", profile="failed", name="recent failure")
    stuck = await add(stack, key, type="usenet", profile="stalled", progress=0.3, name="stuck")
    await add(stack, key, type="usenet", size=10**12, rate=10**7, name="moving")
    waiting = await add(stack, key, type="webdl", profile="queued", name="waiting")
    await add(stack, key, type="webdl", profile="completed", name="done")
    await stack.register(key)
    _, made, _ = await stack.gw("POST", "/api/tags", key=key, json={"name": "stalled"})
    tag = made["tag"]["id"]
    rules = [
        rule(
            "Old failed usenet",
            ["usenet"],
            {"type": "delete"},
            {"type": "STATUS", "operator": "is_any_of", "value": ["failed"]},
            {"type": "AGE", "operator": "gt", "value": 48},
        ),
        rule(
            "Start queued web",
            ["webdl"],
            {"type": "force_start"},
            {"type": "STATUS", "operator": "is_any_of", "value": ["queued"]},
        ),
        rule(
            "Tag stalled usenet",
            ["usenet"],
            {"type": "add_tag", "tagIds": [tag]},
            {"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 0},
        ),
    ]
    status, body, _ = await stack.gw(
        "POST", "/api/automation/rules", key=key, json={"rules": rules}
    )
    assert status == 200, body
    assert body["warnings"] == []

    async def sent() -> list[tuple[Any, ...]]:
        log = await control_log(stack, key)
        found = [(r["endpoint"], r["operation"], r["id"], r.get("type")) for r in log]
        return found if len(found) >= 2 else []

    await eventually(sent, timeout=30, what="the delete and the force start")

    async def tagged() -> Any:
        _, mapped, _ = await stack.gw("GET", "/api/downloads/tags", key=key)
        return mapped["mappings"]

    assert await eventually(tagged, timeout=30, what="the stall tag") == {
        str(stuck): [{"id": tag, "name": "stalled"}]
    }
    await polls(stack, key, 3)  # nothing more may be sent
    assert sorted(await sent()) == [
        ("queued/controlqueued", "start", waiting, "webdl"),
        ("usenet/controlusenetdownload", "delete", old_failed, "usenet"),
    ]
    assert await tagged() == {str(stuck): [{"id": tag, "name": "stalled"}]}

    # The API keeps TorBox's ids per type; the torrents answer alone keeps TBM's shape.
    _, items, _ = await stack.gw("GET", "/api/automation/torrents?type=usenet", key=key)
    by_name = {t["name"]: t for t in items["torrents"]}
    assert by_name["stuck"]["torrent_id"] == stuck
    assert by_name["stuck"]["asset_type"] == "usenet"
    assert by_name["stuck"]["stalled_since"] is not None
    assert by_name["moving"]["stalled_since"] is None
    assert old_failed not in {t["torrent_id"] for t in items["torrents"]}  # deleted: gone
    _, plain, _ = await stack.gw("GET", "/api/automation/torrents", key=key)
    assert [t["name"] for t in plain["torrents"]] == ["a torrent"]
    assert "asset_type" not in plain["torrents"][0]
    calls = (await stack.sim("GET", f"/_sim/accounts/{key}"))["calls"]
    assert all(calls.get(name, 0) > 0 for name in OTHER_LISTS)


async def test_torrent_rules_only_fetch_no_other_list(stack: Stack) -> None:
    """A user whose rules are about torrents pays for no usenet or web-download call, even with
    such downloads on the account."""
    account = await stack.account(torrents=[{"profile": "seeding", "name": "seed"}])
    key = account["api_key"]
    await add(stack, key, type="usenet", profile="failed", created_ago=3 * DAY)
    await add(stack, key, type="webdl", profile="queued")
    await stack.register(key)
    only_torrents = rule(
        "Stop zzz",
        ["torrent"],
        {"type": "stop_seeding"},
        {"type": "NAME", "operator": "contains", "value": "zzz"},
    )
    status, body, _ = await stack.gw(
        "POST", "/api/automation/rules", key=key, json={"rules": [only_torrents]}
    )
    assert status == 200, body
    await polls(stack, key, 4)
    calls = (await stack.sim("GET", f"/_sim/accounts/{key}"))["calls"]
    assert calls["torrents/mylist"] >= 4
    assert {name: calls.get(name, 0) for name in OTHER_LISTS} == dict.fromkeys(OTHER_LISTS, 0)
