"""TBM's tag and airlock rules end to end over real processes and the simulated TorBox.

A rule with `add_tag` tags the matching torrents at its next due evaluation and `tags_changed`
reaches the user's event stream; a second rule airlocks what the first tagged, and the edit call
reaches the simulated TorBox, which then lists the torrents airlocked (sent once each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.scenarios import control_log, torrents
from tests.e2e.stack import Stack, eventually
from tests.e2e.test_hazards import EventFeed

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(tmp_path: Path) -> Any:
    running = await Stack(tmp_path).start()
    try:
        yield running
    finally:
        await running.stop()


async def create_tag(stack: Stack, key: str) -> int:
    """A TBM tag, made as TBM's tag page makes it; its id."""
    status, body, _ = await stack.gw("POST", "/api/tags", key=key, json={"name": "keep"})
    assert status == 200, body
    tag_id: int = body["tag"]["id"]
    return tag_id


async def test_tag_rule_tags_emits_tags_changed_and_airlock_reaches_torbox(stack: Stack) -> None:
    """add_tag tags the torrents named high-* (tags_changed on the SSE stream), add_airlock then
    edits exactly those on TorBox once each, and the airlocked flag comes back in the list."""
    account = await stack.account(
        torrents=[
            {"profile": "seeding", "name": "high-1", "ratio": 2.0},
            {"profile": "seeding", "name": "low", "ratio": 0.1},
            {"profile": "seeding", "name": "high-2", "ratio": 3.0},
        ]
    )
    key = account["api_key"]
    high = {account["torrent_ids"][0], account["torrent_ids"][2]}
    await stack.register(key)
    tag_id = await create_tag(stack, key)
    feed = await EventFeed(stack, key).open()
    try:
        tagged_only = {"type": "TAGS", "operator": "is_any_of", "value": [str(tag_id)]}
        status, body, _ = await stack.gw(
            "POST",
            "/api/automation/rules",
            key=key,
            json={
                "rules": [
                    {
                        "name": "Tag high",
                        "enabled": True,
                        "assetTypes": ["torrent", "usenet"],
                        "trigger": {"type": "interval", "value": 0},
                        "groups": [
                            {
                                "logicOperator": "and",
                                "conditions": [
                                    {"type": "NAME", "operator": "starts_with", "value": "HIGH"}
                                ],
                            }
                        ],
                        "action": {"type": "add_tag", "tagIds": [tag_id]},
                    },
                    {
                        "name": "Airlock tagged",
                        "enabled": True,
                        "trigger": {"type": "interval", "value": 0},
                        "groups": [{"logicOperator": "and", "conditions": [tagged_only]}],
                        "action": {"type": "add_airlock"},
                    },
                ]
            },
        )
        assert status == 200, body
        assert body["warnings"] == []

        tag_rule = body["rules"][0]["id"]

        async def tagged() -> set[int]:
            _, logs, _ = await stack.gw("GET", f"/api/automation/rules/{tag_rule}/logs", key=key)
            return {
                action["torrent_id"]
                for log in logs["logs"]
                for action in log.get("actions", [])
                if action["action"] == "add_tag" and action["status"] == "succeeded"
            }

        assert await eventually(tagged, timeout=30, what="the tag rule") == high
        _, mapped, _ = await stack.gw("GET", "/api/downloads/tags", key=key)
        assert mapped["mappings"] == {
            str(t): [{"id": tag_id, "name": "keep"}] for t in sorted(high)
        }
        await eventually(
            lambda: _true(feed.of_type("tags_changed")), timeout=15, what="tags_changed"
        )
        actions = [e for e in feed.of_type("AUTOMATION_ACTION") if e["data"]["action"] == "add_tag"]
        assert {e["torrent_id"] for e in actions} == high
        assert all(e["data"]["success"] and e["data"]["tag_ids"] == [tag_id] for e in actions)

        async def airlocked() -> list[dict[str, Any]]:
            edits = [
                r for r in await control_log(stack, key) if r["endpoint"] == "torrents/edittorrent"
            ]
            return edits if len(edits) == 2 else []

        edits = await eventually(airlocked, timeout=30, what="the airlock edits")
        assert {e["id"] for e in edits} == high
        assert {(e["operation"], e["status"]) for e in edits} == {("airlock", 200)}

        async def listed_airlocked() -> set[int]:
            status, listing, _ = await stack.request(
                "GET",
                f"{stack.sim_url}/v1/api/torrents/mylist?bypass_cache=true",
                headers={"Authorization": f"Bearer {key}"},
            )
            assert status == 200, listing
            return {t["id"] for t in listing["data"] if t["airlocked"] is True}

        assert await listed_airlocked() == high
        # Later polls see the flag set: the airlock rule now skips them, nothing is sent again.
        airlock_rule = body["rules"][1]

        async def seen_airlocked() -> bool:
            status, preview, _ = await stack.gw(
                "POST", "/api/automation/rules/preview", key=key, json=airlock_rule
            )
            assert status == 200, preview
            reasons = {
                m["torrent_id"]: m["skip_reason"] for m in preview["torrents"] if m["matched"]
            }
            return reasons == dict.fromkeys(high, "already airlocked")

        await eventually(seen_airlocked, timeout=30, what="a poll that saw the airlocked flag")
        seen_at = (await torrents(stack, key))["observed_at"]

        async def later_polls() -> bool:
            return bool((await torrents(stack, key))["observed_at"] > seen_at)

        for _ in range(2):  # two more polls, in which nothing may be sent
            await eventually(later_polls, timeout=15, what="another poll")
            seen_at = (await torrents(stack, key))["observed_at"]
        edits = [
            r for r in await control_log(stack, key) if r["endpoint"] == "torrents/edittorrent"
        ]
        assert len(edits) == 2
    finally:
        await feed.close()


async def _true(value: Any) -> bool:
    return bool(value)
