"""Real scenarios end to end: presets on a living account, faults, crashes, restarts, removal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.scenarios import (
    REAL_TIME,
    SCENARIO_ENV,
    SEEDING_HOURS,
    STALLED_MINUTES,
    control_log,
    enable_presets,
    torrents,
)
from tests.e2e.stack import Stack, eventually

pytestmark = pytest.mark.e2e

# A poll every second; "within one poll" is checked with room for a busy machine.
SLACK_SECONDS = 3.0


@pytest.fixture
async def live(tmp_path: Path) -> Any:
    """A stack whose simulated torrents live in real time."""
    stack = await Stack(tmp_path, env=SCENARIO_ENV, sim_args=REAL_TIME).start()
    try:
        yield stack
    finally:
        await stack.stop()


async def test_presets_fire_on_exactly_the_right_torrents_once_each(live: Stack) -> None:
    """Ratio, stall and seeding-time presets act once each, in the poll the condition came true;
    healthy torrents are never touched."""
    mb = 1_000_000
    account = await live.account(
        torrents=[
            # Crosses ratio 1 after ~3 s of seeding: stop_seeding by the ratio preset.
            {
                "profile": "seeding",
                "name": "ratio-climber",
                "size": 100 * mb,
                "ratio": 0.7,
                "upload_rate": 10 * mb,
            },
            # No progress at all: stalled, then archived after 6 s of stall.
            {"profile": "stalled", "name": "stuck", "size": 100 * mb, "progress": 0.3},
            # Seeds without uploading: stop_seeding by the seeding-time preset after 7.2 s.
            {"profile": "dead_seed", "name": "dead-seed", "size": 100 * mb, "ratio": 0.2},
            # Healthy: downloading steadily for the whole test, and a finished inactive one.
            {
                "profile": "downloading",
                "name": "healthy-download",
                "size": 100_000 * mb,
                "progress": 0.1,
                "download_rate": 20 * mb,
            },
            {"profile": "finished_inactive", "name": "done"},
        ]
    )
    key = account["api_key"]
    ids = dict(
        zip(["ratio", "stuck", "dead", "healthy", "done"], account["torrent_ids"], strict=True)
    )
    await live.register(key)
    rules = {r["groups"][0]["conditions"][0]["type"]: r for r in await enable_presets(live, key)}

    async def all_acted() -> list[dict[str, Any]] | None:
        log = await control_log(live, key)
        acted = {r["id"] for r in log}
        return log if {ids["ratio"], ids["stuck"], ids["dead"]} <= acted else None

    await eventually(all_acted, timeout=60, what="the three presets to act")
    await asyncio.sleep(4)  # several more polls: nothing may be sent again
    log = await control_log(live, key)
    sent = sorted((r["id"], r["operation"]) for r in log)
    assert sent == sorted(
        [(ids["ratio"], "stop_seeding"), (ids["stuck"], "delete"), (ids["dead"], "stop_seeding")]
    )
    assert all(r["result"] == "ok" for r in log)

    status = {t["torrent_id"]: t for t in (await torrents(live, key))["torrents"]}
    assert status[ids["healthy"]]["last_action"] is None
    assert status[ids["done"]]["last_action"] is None

    ratio_action = status[ids["ratio"]]["last_action"]
    assert ratio_action["rule_id"] == rules["RATIO"]["id"]
    assert ratio_action["status"] == "succeeded"
    # Acted in the very poll that first saw the ratio reach 1.
    _, events, _ = await live.gw("GET", f"/api/automation/torrents/{ids['ratio']}/events", key=key)
    reached = [e for e in events["events"] if e["type"] == "TORRENT_RATIO_REACHED"]
    assert len(reached) == 1
    assert reached[0]["observed_at"] == ratio_action["created_at"]

    dead_action = status[ids["dead"]]["last_action"]
    assert dead_action["rule_id"] == rules["SEEDING_TIME"]["id"]
    (seeding,) = dead_action["reason"]
    # It was seeding before the user's first poll: its seeding time is known as a lower bound.
    hours = seeding["value"]["at_least"]
    assert SEEDING_HOURS <= hours <= SEEDING_HOURS + SLACK_SECONDS / 3600

    stuck = status.get(ids["stuck"])
    assert stuck is None  # archived: deleted from TorBox, so no longer listed
    _, archived, _ = await live.gw("GET", "/api/archived-downloads", key=key)
    (row,) = archived["data"]
    assert row["torrent_id"] == str(ids["stuck"])
    assert row["magnet"].startswith("magnet:?xt=urn:btih:")
    _, logs, _ = await live.gw(
        "GET", f"/api/automation/rules/{rules['DOWNLOAD_STALLED_TIME']['id']}/logs", key=key
    )
    # Newest first: the execution, then the row saving the rule wrote (what it would do).
    execution, on_save = logs["logs"]
    assert on_save["execution_type"] == "saved"
    (record,) = execution["actions"]
    (stalled,) = record["reason"]
    # Stalled since before the first poll: its stall time is a lower bound, and "gt" holds on it.
    minutes = stalled["value"]["at_least"]
    assert STALLED_MINUTES < minutes <= STALLED_MINUTES + SLACK_SECONDS / 60
    assert execution["success"] == 1


# Short fault windows: a stall threshold of ~2 s falls inside a 4-second fault.
FAULT_STALL_MINUTES = 0.03
FAULT_SECONDS = 4.0
FAULTS: list[dict[str, Any]] = [
    {"kind": "http_500"},
    {"kind": "bad_gateway_html"},
    {"kind": "unavailable_503"},
    {"kind": "rate_limit_429", "retry_after": 2},
    {"kind": "timeout", "delay": 4},
    {"kind": "slow", "delay": 4},
    {"kind": "malformed_json"},
    {"kind": "empty_once", "count": 1},
    # A brief revocation (fewer refusals than stop a user) must heal by itself.
    {"kind": "revoked", "count": 2},
    {"kind": "business_500"},
]


async def _fault_scenario(stack: Stack, fault: dict[str, Any]) -> None:
    account = await stack.account(
        torrents=[
            {"profile": "stalled", "name": "stuck", "progress": 0.3},
            *[{"profile": "finished_inactive"} for _ in range(11)],
        ]
    )
    key = account["api_key"]
    await stack.register(key)
    rules = [
        {
            "name": "archive stalled",
            "trigger": {"type": "interval", "value": 0},
            "groups": [
                {
                    "conditions": [
                        {
                            "type": "DOWNLOAD_STALLED_TIME",
                            "operator": "gt",
                            "value": FAULT_STALL_MINUTES,
                        }
                    ]
                }
            ],
            "action": {"type": "archive"},
        }
    ]
    first = await eventually(lambda: _observed(stack, key), what="the first poll")
    spec = {"api_key": key, "endpoint": "mylist", **fault}
    if "count" not in spec:
        spec["seconds"] = FAULT_SECONDS
    await stack.sim("POST", "/_sim/faults", json=spec)
    status, _, _ = await stack.gw("POST", "/api/automation/rules", key=key, json={"rules": rules})
    assert status == 200
    # Long enough for the rule to have fired had a poll gone through.
    await asyncio.sleep(FAULT_SECONDS)
    if "count" not in spec:
        # A timed fault spoils every poll of the window: nothing at all may be sent.
        assert await control_log(stack, key) == [], fault
    listed = (await torrents(stack, key, include_removed=True))["torrents"]
    healthy = [t for t in listed if t["name"] != "stuck"]
    assert len(healthy) == 11, fault
    assert all(t["present"] for t in healthy), fault
    await stack.sim("DELETE", f"/_sim/faults/{key}")

    async def recovered() -> bool:
        observed = await _observed(stack, key)
        return observed is not None and observed > first

    await eventually(recovered, timeout=30, what=f"polling to resume after {fault['kind']}")
    log = await eventually(lambda: control_log(stack, key), timeout=30, what="the archive")
    await asyncio.sleep(1.5)
    log = await control_log(stack, key)
    assert [(r["operation"], r["result"]) for r in log] == [("delete", "ok")], fault


async def test_faults_do_nothing_destructive_and_polling_recovers(live: Stack) -> None:
    """During each fault nothing is deleted or removed; afterwards polling resumes by itself and
    the pending archive happens exactly once."""
    results = await asyncio.gather(
        *(_fault_scenario(live, fault) for fault in FAULTS), return_exceptions=True
    )
    failures = [
        f"{f['kind']}: {r!r}" for f, r in zip(FAULTS, results, strict=True) if r is not None
    ]
    assert failures == []


async def _observed(stack: Stack, key: str) -> str | None:
    status, body, _ = await stack.gw("GET", "/api/automation/torrents", key=key)
    return body.get("observed_at") if status == 200 else None


async def test_sigkill_userstore_loses_nothing_and_sends_nothing_twice(live: Stack) -> None:
    """Killing the userstore mid-run loses no rule, log row or archive, and repeats no delete."""
    stall_times = [3, 5, 7, 9, 11, 13]
    account = await live.account(
        torrents=[
            *[
                {
                    "profile": "stalls_later",
                    "stall_after": t,
                    "size": 10**12,
                    "download_rate": 10**6,
                }
                for t in stall_times
            ],
            *[{"profile": "finished_inactive"} for _ in range(20)],
        ]
    )
    key = account["api_key"]
    doomed = set(account["torrent_ids"][: len(stall_times)])
    await live.register(key)
    rule = {
        "name": "archive stalled",
        "trigger": {"type": "interval", "value": 0},
        "groups": [
            {
                "conditions": [
                    {"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": STALLED_MINUTES}
                ]
            }
        ],
        "action": {"type": "archive"},
    }
    _, saved, _ = await live.gw("POST", "/api/automation/rules", key=key, json={"rules": [rule]})
    rule_id = saved["rules"][0]["id"]

    async def some_archived() -> bool:
        return len(await control_log(live, key)) >= 2

    await eventually(some_archived, timeout=60, what="the first archives")
    old = live.userstores[0]
    port = old.port
    await old.kill()
    await asyncio.sleep(1.5)  # the scheduler keeps polling into a dead shard meanwhile
    await live.start_userstore(0, port=port)

    async def all_archived() -> bool:
        return {r["id"] for r in await control_log(live, key)} == doomed

    await eventually(all_archived, timeout=90, what="every stalled torrent archived")
    await asyncio.sleep(3)
    log = await control_log(live, key)
    deletes = [r["id"] for r in log if r["operation"] == "delete"]
    assert sorted(deletes) == sorted(doomed)  # each exactly once
    _, rules, _ = await live.gw("GET", "/api/automation/rules", key=key)
    assert [r["id"] for r in rules["rules"]] == [rule_id]
    _, archived, _ = await live.gw("GET", "/api/archived-downloads", key=key)
    assert {int(row["torrent_id"]) for row in archived["data"]} == doomed
    _, logs, _ = await live.gw("GET", f"/api/automation/rules/{rule_id}/logs", key=key)
    logged = {a["torrent_id"] for entry in logs["logs"] for a in entry["actions"]}
    assert logged == doomed


async def test_scheduler_restart_resumes_polling_within_an_interval(live: Stack) -> None:
    """After the scheduler restarts, users are polled again within one interval of it being up."""
    account = await live.account(mix={"downloading": 3, "seeding": 2})
    key = account["api_key"]
    await live.register(key)
    await eventually(lambda: _observed(live, key), what="the first poll")
    scheduler = live.scheduler_procs[0]
    port = scheduler.port
    assert await scheduler.stop() == 0
    stopped_at = await _observed(live, key)
    await asyncio.sleep(2)
    assert await _observed(live, key) == stopped_at
    await live.start_scheduler(0, port=port)
    loop = asyncio.get_running_loop()
    up = loop.time()

    async def polled_again() -> bool:
        observed = await _observed(live, key)
        return observed is not None and observed != stopped_at

    await eventually(polled_again, timeout=30, interval=0.1, what="polling to resume")
    # One interval (1 s), plus the first registry sync and the spread of the first poll.
    assert loop.time() - up <= 1 + 0.3 + 1 + SLACK_SECONDS


async def test_removing_a_key_deletes_the_database_and_stops_polling(live: Stack) -> None:
    """Removing the key deletes the user's file, and TorBox is not called for them again."""
    account = await live.account(mix={"seeding": 2})
    key = account["api_key"]
    registered = await live.register(key)
    await eventually(lambda: _observed(live, key), what="the first poll")
    db = live.root / "shard0" / "users" / f"user_{registered['authId']}.sqlite"
    assert db.exists()
    status, body, _ = await live.gw("DELETE", "/api/backend/api-key", key=key)
    assert status == 200
    assert body["removed"] is True
    assert not db.exists()
    await asyncio.sleep(1)
    stats = await live.sim("GET", "/_sim/stats")
    calls = stats["by_key"].get(key, {})
    await asyncio.sleep(4)
    assert (await live.sim("GET", "/_sim/stats"))["by_key"].get(key, {}) == calls
    status, body, _ = await live.gw("GET", "/api/automation/torrents", key=key)
    assert status == 404
    assert json.dumps(body).find(key) == -1
