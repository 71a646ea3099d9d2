"""Issue 14, "no wrong destructive action", end to end over real processes.

Each hazard runs on its own simulated account and registered user, with destructive rules
(delete or archive) enabled, and checks two things in what the simulated TorBox received (its
control log):
- zero wrong actions: the torrents the hazard is about are never deleted, archived or stopped;
- the rule that must fire does, exactly once, on its control torrent: proof that the user was
  polled and the rules evaluated, so "nothing happened" is not just a dead stack.

All the scenarios share one stack and run at the same time (each on its own user, so the
per-user blast-radius cap of one never hides another's); each test waits for its own.
Thresholds are scaled down (seconds, not hours) as in test_scenarios.py, except in the
young-account scenario, which is about the full-size preset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.scenarios import REAL_TIME, SCENARIO_ENV, control_log, torrents
from tests.e2e.stack import Stack, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MB = 1_000_000
# A held condition of 0.1 minutes: it must hold for 6 seconds before the rule may act.
HOLD_MINUTES = 0.1
HOLD_SECONDS = HOLD_MINUTES * 60
# Polls run every second; "soon after" is checked with room for a busy machine.
SLACK_SECONDS = 3.0
# After the control action: several more polls in which nothing more may be sent.
SETTLE_SECONDS = 3.0
# Every scenario ends well within this (the whole file runs them side by side).
SCENARIO_TIMEOUT = 120.0

# The services run `python -m ...` from the current folder, so this checkout's code is what
# runs; the generated protobuf package ("torbox", under common/gen) is mapped by the editable
# install to wherever the venv was installed from, so it is put first here explicitly too.
WORKTREE_ENV = {
    **SCENARIO_ENV,
    "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "common" / "gen"),
}

Scenario = Callable[[Stack], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(function: Scenario) -> Scenario:
    """Register a scenario under its name (without the leading underscore)."""
    SCENARIOS[function.__name__.lstrip("_")] = function
    return function


class Hazards:
    """The shared stack and the running scenarios; a test awaits its own scenario's outcome."""

    def __init__(self, stack: Stack, log_path: Path) -> None:
        self.stack = stack
        self.log_path = log_path
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, names: list[str]) -> None:
        """Start the scenarios side by side."""
        for name in names:
            run = asyncio.wait_for(SCENARIOS[name](self.stack), SCENARIO_TIMEOUT)
            self.tasks[name] = asyncio.ensure_future(run)

    async def outcome(self, name: str) -> None:
        """Wait for one scenario; on failure, keep every process's output for the report."""
        try:
            await self.tasks[name]
        except Exception as exc:
            self.log_path.write_text(self.stack.logs())
            raise AssertionError(f"{name}: {exc!r}\n(process output: {self.log_path})") from exc


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hazards(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hazards]:
    """One stack in real time; only the scenarios of the selected tests are started."""
    selected = {item.name for item in request.session.items}
    names = [name for name in SCENARIOS if f"test_{name}" in selected]
    root = tmp_path_factory.mktemp("hazards")
    stack = await Stack(root, env=WORKTREE_ENV, sim_args=REAL_TIME).start()
    running = Hazards(stack, root / "processes.log")
    running.start(names)
    try:
        yield running
    finally:
        for task in running.tasks.values():
            task.cancel()
        await asyncio.gather(*running.tasks.values(), return_exceptions=True)
        for feed in list(EventFeed.opened):
            await feed.close()
        await stack.stop()


# Helpers --------------------------------------------------------------------------------------


def rule(
    name: str,
    conditions: list[dict[str, Any]],
    action: str,
    *,
    events: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A rule in TBM's format: one group of AND-ed conditions, every poll or on events."""
    trigger: dict[str, Any] = (
        {"type": "event", "events": events}
        if events is not None
        else {"type": "interval", "value": 0}
    )
    return {
        "name": name,
        "enabled": True,
        "trigger": trigger,
        "groups": [{"logicOperator": "and", "conditions": conditions}],
        "action": {"type": action},
        **extra,
    }


async def save_rules(stack: Stack, key: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace the user's rules through the gateway; returns them as saved (with ids)."""
    status, body, _ = await stack.gw(
        "POST", "/api/automation/rules", key=key, json={"rules": rules}
    )
    assert status == 200, body
    saved: list[dict[str, Any]] = body["rules"]
    return saved


@dataclass
class User:
    """A registered user of a simulated account, with its event stream open."""

    stack: Stack
    key: str
    ids: list[int]
    queued: list[int]
    feed: EventFeed

    async def no_holds(self) -> None:
        """Assert no destructive action was ever held for this user, then close the stream.

        A hold means some destructive rule matched something: where no glitch or mass match
        is expected, that is a wrong match the blast-radius cap happened to catch.
        """
        try:
            held = self.feed.of_type("AUTOMATION_HELD")
            assert held == [], held
        finally:
            await self.feed.close()


async def new_user(stack: Stack, specs: list[dict[str, Any]]) -> User:
    """A simulated account with these torrents, registered, its event stream open."""
    created = await stack.account(torrents=specs)
    key: str = created["api_key"]
    await stack.register(key)
    feed = await EventFeed(stack, key).open()
    return User(stack, key, created["torrent_ids"], created["queued_ids"], feed)


def pads(count: int, label: str = "pad", **spec: Any) -> list[dict[str, Any]]:
    """Torrents the scenario's rules never match, so the share cap (more than a quarter of the
    user's torrents matched at once) can never hide a wrong match as a mere hold."""
    return [{"name": f"{label}-{i:02d}", **spec} for i in range(count)]


async def observed(stack: Stack, key: str) -> str | None:
    """When the user was last polled (None before the first poll)."""
    status, body, _ = await stack.gw("GET", "/api/automation/torrents", key=key)
    return body.get("observed_at") if status == 200 else None


async def first_poll(stack: Stack, key: str) -> str:
    """Wait for the user's first poll; returns its time."""
    when: str = await eventually(lambda: observed(stack, key), what="the first poll")
    return when


async def polls_after(stack: Stack, key: str, since: str, count: int = 1) -> None:
    """Wait until `count` more polls of the user were applied after `since`."""
    last = since
    for _ in range(count):
        previous = last

        async def newer(previous: str = previous) -> str | None:
            now = await observed(stack, key)
            return now if now is not None and now > previous else None

        last = await eventually(newer, timeout=30, what="another poll")


def seconds(iso: str) -> float:
    """Epoch seconds of the gateway's ISO-8601 times."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def sent(log: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(endpoint, operation, id) of every control request, in order."""
    return [(r["endpoint"], str(r["operation"]), r["id"]) for r in log]


async def wait_for_actions(
    stack: Stack, key: str, expected: list[tuple[str, str, int]], what: str
) -> list[dict[str, Any]]:
    """Wait until every expected control request arrived, then let more polls run; the log."""

    async def arrived() -> list[dict[str, Any]] | None:
        log = await control_log(stack, key)
        return log if set(expected) <= set(sent(log)) else None

    await eventually(arrived, timeout=60, what=what)
    await asyncio.sleep(SETTLE_SECONDS)
    return await control_log(stack, key)


def delete_of(torrent_id: int) -> tuple[str, str, int]:
    """The control request that deletes (or archives) a mylist torrent."""
    return ("torrents/controltorrent", "delete", torrent_id)


async def statuses(stack: Stack, key: str) -> dict[int, dict[str, Any]]:
    """The gateway's status of every torrent it knows, removed ones included, by id."""
    listed = (await torrents(stack, key, include_removed=True))["torrents"]
    return {t["torrent_id"]: t for t in listed}


async def rule_actions(stack: Stack, key: str, rule_id: int) -> list[dict[str, Any]]:
    """Every action record a rule's execution logs hold."""
    status, body, _ = await stack.gw("GET", f"/api/automation/rules/{rule_id}/logs", key=key)
    assert status == 200, body
    return [action for log in body["logs"] for action in log["actions"]]


async def torrent_events(stack: Stack, key: str, torrent_id: int) -> list[str]:
    """The types of one torrent's recorded events, oldest first."""
    status, body, _ = await stack.gw(
        "GET", f"/api/automation/torrents/{torrent_id}/events", key=key
    )
    assert status == 200, body
    return [e["type"] for e in reversed(body["events"])]


class EventFeed:
    """The user's Server-Sent Events (GET /api/automation/events), collected as they arrive."""

    # Every feed still open, closed when the stack stops (a failed scenario leaves its own).
    opened: ClassVar[set[EventFeed]] = set()

    def __init__(self, stack: Stack, key: str) -> None:
        self.stack = stack
        self.key = key
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def open(self) -> EventFeed:
        """Connect, and return once the gateway said the stream is connected."""
        self._task = asyncio.create_task(self._read())
        EventFeed.opened.add(self)
        connected = asyncio.create_task(self._connected.wait())
        await asyncio.wait({self._task, connected}, timeout=10, return_when=FIRST_COMPLETED)
        connected.cancel()
        if self._task.done():
            self._task.result()  # the stream failed: say why
        assert self._connected.is_set(), "the event stream did not connect"
        return self

    async def close(self) -> None:
        """Disconnect."""
        EventFeed.opened.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        assert self.stack.http is not None
        async with self.stack.http.get(
            self.stack.gw_url + "/api/automation/events",
            headers={"x-api-key": self.key},
            timeout=aiohttp.ClientTimeout(total=None),
        ) as response:
            assert response.status == 200, await response.text()
            async for raw in response.content:
                line = raw.decode().strip()
                if line == ": connected":
                    self._connected.set()
                elif line.startswith("data: "):
                    self.events.append(json.loads(line[len("data: ") :]))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The events of one type received so far."""
        return [e for e in self.events if e.get("event") == kind]


# Scenarios ------------------------------------------------------------------------------------


@scenario
async def _negated_hold(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {"profile": "downloading", "name": "seeded-download", "size": 10**12, "seeds": 12},
            {"profile": "seeding", "name": "seeded-seed", "seeds": 3, "upload_rate": MB},
            # Seeds unknown: "not (seeds > 0)" is unknown too, never true.
            {"profile": "downloading", "name": "seeds-unknown", "size": 10**12, "nulls": ["seeds"]},
            {"profile": "dead_seed", "name": "no-seeds"},
            *pads(12, profile="downloading", size=10**12, seeds=5),
        ],
    )
    key, control = user.key, user.ids[3]
    no_seeds_rule = rule(
        "delete without seeds for 6 s",
        [
            {
                "type": "SEEDS",
                "operator": "gt",
                "value": 0,
                "negate": True,
                "for_minutes": HOLD_MINUTES,
            }
        ],
        "delete",
    )
    (saved,) = await save_rules(stack, key, [no_seeds_rule])
    log = await wait_for_actions(stack, key, [delete_of(control)], "the seedless torrent's delete")
    assert sent(log) == [delete_of(control)], log
    assert all(r["result"] == "ok" for r in log), log

    (action,) = await rule_actions(stack, key, saved["id"])
    assert action["torrent_id"] == control, action
    (trace,) = action["reason"]
    acted_at = seconds(action["created_at"])
    first_seen = seconds((await statuses(stack, key))[control]["first_seen_at"])
    held_since = trace["held_since"]
    # The hold began no earlier than the first poll, and the rule acted only once it had
    # lasted 6 seconds, in the first poll after (the planner asks for a poll right then).
    assert held_since >= first_seen - 1e-3, (trace, first_seen)
    assert acted_at - held_since >= HOLD_SECONDS - 1e-3, (action, trace)
    assert acted_at - first_seen >= HOLD_SECONDS - 1e-3, (action, first_seen)
    assert acted_at - held_since <= HOLD_SECONDS + SLACK_SECONDS, (action, trace)
    await user.no_holds()


@scenario
async def _averages_unknown_until_observed(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {
                "profile": "seeding",
                "name": "steady-uploader",
                "size": 100_000 * MB,
                "ratio": 0.5,
                "upload_rate": 2 * MB,
            },
            {"profile": "dead_seed", "name": "idle-seed", "ratio": 0.3},
            *pads(6, profile="seeding", size=100_000 * MB, ratio=0.1, upload_rate=MB),
        ],
    )
    key, (uploader, idle) = user.key, user.ids[:2]
    day_rule = rule(
        "delete slow uploaders (24 h average)",
        [{"type": "AVG_UPLOAD_SPEED", "operator": "lt", "value": 0.1, "hours": 24}],
        "delete",
    )
    # The control: the same test over 7.2 seconds, a window the user is watched for.
    short_rule = rule(
        "delete slow uploaders (7.2 s average)",
        [{"type": "AVG_UPLOAD_SPEED", "operator": "lt", "value": 0.1, "hours": 0.002}],
        "delete",
    )
    day, short = await save_rules(stack, key, [day_rule, short_rule])
    log = await wait_for_actions(stack, key, [delete_of(idle)], "the idle seed's delete")
    # The steady uploader is never deleted, and the 24-hour rule never acts at all.
    assert sent(log) == [delete_of(idle)], (uploader, log)
    assert await rule_actions(stack, key, day["id"]) == []
    (action,) = await rule_actions(stack, key, short["id"])
    assert action["torrent_id"] == idle, action
    first_seen = seconds((await statuses(stack, key))[idle]["first_seen_at"])
    assert seconds(action["created_at"]) - first_seen >= 0.002 * 3600 - 1e-3, action
    await user.no_holds()


@scenario
async def _unknown_size_is_not_zero(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {"profile": "metadl", "name": "magnet-without-metadata"},
            {"profile": "queued", "name": "queued-item"},
            {"profile": "finished_inactive", "name": "small-file", "size": 10 * MB},
            {"profile": "downloading", "name": "big-download", "size": 10**12},
            *pads(10, profile="finished_inactive", size=10**10),
        ],
    )
    key, (metadl, control) = user.key, user.ids[:2]
    (queued_id,) = user.queued
    await save_rules(
        stack,
        key,
        [
            rule(
                "delete tiny torrents",
                [{"type": "FILE_SIZE", "operator": "lt", "value": 0.05}],
                "delete",
            )
        ],
    )
    log = await wait_for_actions(stack, key, [delete_of(control)], "the small torrent's delete")
    # Nothing else: no delete of the magnet, no controlqueued for the queued item.
    assert sent(log) == [delete_of(control)], log
    listed = await statuses(stack, key)
    assert (listed[metadl]["size"], listed[metadl]["present"]) == (None, True), listed[metadl]
    queued_rows = [t for t in listed.values() if t["queued"]]
    assert [(t["torrent_id"], t["size"], t["present"]) for t in queued_rows] == [
        (queued_id, None, True)
    ]
    await user.no_holds()


@scenario
async def _qbittorrent_states(stack: Stack) -> None:
    # The forced states sit on "stalled" torrents, so no bytes move: only the state says why.
    user = await new_user(
        stack,
        [
            {
                "profile": "stalled",
                "name": "queued-dl",
                "progress": 0.2,
                "download_state": "queuedDL",
                "active": True,
            },
            {
                "profile": "stalled",
                "name": "checking-dl",
                "progress": 0.4,
                "download_state": "checkingDL",
            },
            {
                "profile": "stalled",
                "name": "allocating",
                "progress": 0.0,
                "download_state": "allocating",
            },
            {"profile": "stalled", "name": "really-stalled", "progress": 0.3},
            {"profile": "finished_inactive", "name": "completed-active", "active": True},
            {"profile": "seeding", "name": "seeding", "upload_rate": MB},
            *pads(12, profile="finished_inactive"),
        ],
    )
    key = user.key
    queued_dl, checking, allocating, stalled, completed, seeding = user.ids[:6]
    await save_rules(
        stack,
        key,
        [
            rule(
                "archive stalled downloads (6 h preset, scaled down)",
                [{"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": HOLD_MINUTES}],
                "archive",
            ),
            rule(
                "stop seeding at any ratio",
                [{"type": "RATIO", "operator": "gte", "value": 0}],
                "stop_seeding",
            ),
        ],
    )
    stop = ("torrents/controltorrent", "stop_seeding", seeding)
    log = await wait_for_actions(stack, key, [delete_of(stalled), stop], "the archive and the stop")
    assert sorted(sent(log)) == sorted([delete_of(stalled), stop]), log
    untouched = {queued_dl, checking, allocating, completed}
    assert not untouched & {r["id"] for r in log}, log
    listed = await statuses(stack, key)
    assert listed[queued_dl]["status"] == "queued", listed[queued_dl]
    assert {listed[i]["status"] for i in (checking, allocating)} == {"checking"}
    assert listed[completed]["status"] == "completed", listed[completed]
    _, archived, _ = await stack.gw("GET", "/api/archived-downloads", key=key)
    assert [row["torrent_id"] for row in archived["data"]] == [str(stalled)], archived
    await user.no_holds()


@scenario
async def _protected_queued_item(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {"profile": "queued", "name": "guard-queued"},
            {"profile": "finished_inactive", "name": "guard-control"},
            {"profile": "finished_inactive", "name": "other"},
        ],
    )
    key, control = user.key, user.ids[0]
    (queued_id,) = user.queued
    status, body, _ = await stack.gw(
        "PUT",
        "/api/downloads/protect",
        key=key,
        json={"download_ids": [queued_id], "protected": True},
    )
    assert status == 200, body
    assert body["protected_ids"] == [str(queued_id)], body
    await save_rules(
        stack,
        key,
        [
            rule(
                "delete guard-*",
                [{"type": "NAME", "operator": "starts_with", "value": "guard"}],
                "delete",
            )
        ],
    )
    log = await wait_for_actions(stack, key, [delete_of(control)], "the control's delete")
    assert sent(log) == [delete_of(control)], log
    assert not [r for r in log if r["endpoint"] == "queued/controlqueued"], log
    listed = await statuses(stack, key)
    row = next(t for t in listed.values() if t["queued"])
    assert (row["torrent_id"], row["protected"], row["present"]) == (queued_id, True, True), row
    assert row["last_action"] is None, row
    await user.no_holds()


@scenario
async def _last_activity_fires(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {"profile": "stalled", "name": "never-moves", "progress": 0.5},
            {"profile": "downloading", "name": "moving", "size": 10**12, "download_rate": 5 * MB},
        ],
    )
    key, stuck = user.key, user.ids[0]
    (saved,) = await save_rules(
        stack,
        key,
        [
            rule(
                "delete without download activity for 6 s",
                [{"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "gt", "value": HOLD_MINUTES}],
                "delete",
            )
        ],
    )
    log = await wait_for_actions(stack, key, [delete_of(stuck)], "the idle torrent's delete")
    assert sent(log) == [delete_of(stuck)], log
    (action,) = await rule_actions(stack, key, saved["id"])
    (trace,) = action["reason"]
    # Never seen moving: what is known is "at least as long as we watched".
    assert trace["value"]["at_least"] > HOLD_MINUTES, trace
    first_seen = seconds((await statuses(stack, key))[stuck]["first_seen_at"])
    assert seconds(action["created_at"]) - first_seen >= HOLD_SECONDS - 1e-3, action
    await user.no_holds()


async def faults_spent(stack: Stack, key: str) -> None:
    """Wait until the simulator has used up every fault scheduled for this key."""

    async def spent() -> bool:
        account = await stack.sim("GET", f"/_sim/accounts/{key}")
        return not account["faults"]

    await eventually(spent, timeout=30, what="the faults to be used up")


SAMPLE_ADDED_RULE = rule(
    "delete new samples",
    [{"type": "NAME", "operator": "matches", "value": "^sample"}],
    "delete",
    events=["TORRENT_ADDED"],
)


@scenario
async def _one_poll_flap(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {"profile": "seeding", "name": "sample-flap", "upload_rate": MB},
            {"profile": "finished_inactive", "name": "sample-gone-awhile"},
            *pads(4, profile="finished_inactive"),
        ],
    )
    key, (flap, gone) = user.key, user.ids[:2]
    await save_rules(stack, key, [SAMPLE_ADDED_RULE])
    start = await first_poll(stack, key)
    # One mylist answer without sample-flap, then three without sample-gone-awhile (long
    # enough to be confirmed removed); then both are back, under the same ids.
    for torrent_id, count in ((flap, 1), (gone, 3)):
        await stack.sim(
            "POST",
            "/_sim/faults",
            json={"api_key": key, "kind": "hide_torrents", "ids": [torrent_id], "count": count},
        )
    await faults_spent(stack, key)
    back = await observed(stack, key)
    assert back is not None
    assert back > start
    await polls_after(stack, key, back, 2)
    removed_meanwhile = await torrent_events(stack, key, gone)
    assert "TORRENT_REMOVED" in removed_meanwhile, removed_meanwhile
    added = await stack.sim(
        "POST", f"/_sim/accounts/{key}/torrents", json={"profile": "seeding", "name": "sample-new"}
    )
    new = added["torrent_id"]
    log = await wait_for_actions(stack, key, [delete_of(new)], "the new sample's delete")
    assert sent(log) == [delete_of(new)], log
    for torrent_id in (flap, gone):
        events = await torrent_events(stack, key, torrent_id)
        assert "TORRENT_ADDED" not in events, (torrent_id, events)
    await user.no_holds()


@scenario
async def _blast_radius_held(stack: Stack) -> None:
    user = await new_user(
        stack,
        [{"profile": "finished_inactive", "name": f"everything-{i:02d}"} for i in range(20)],
    )
    key = user.key
    await first_poll(stack, key)
    (saved,) = await save_rules(
        stack,
        key,
        [
            rule(
                "a runaway rule",
                [{"type": "NAME", "operator": "matches", "value": "."}],
                "delete",
                max_actions_per_run=2,
            )
        ],
    )
    assert saved["max_actions_per_run"] == 2, saved

    async def held_seen() -> list[dict[str, Any]]:
        return user.feed.of_type("AUTOMATION_HELD")

    await eventually(held_seen, timeout=30, what="an AUTOMATION_HELD event")
    await asyncio.sleep(SETTLE_SECONDS)
    held = user.feed.of_type("AUTOMATION_HELD")
    await user.feed.close()
    assert await control_log(stack, key) == []
    data = held[0]["data"]
    assert "20 torrents matched destructive rules" in data["reason"], data
    # Held: the two this poll's limit let through, and they were not sent either.
    assert len(data["held"]) == 2, data
    assert all(h["action"] == "delete" for h in data["held"]), data
    assert await rule_actions(stack, key, saved["id"]) == []


@scenario
async def _list_glitch(stack: Stack) -> None:
    user = await new_user(
        stack,
        [
            {"profile": "seeding", "name": "sample-one", "upload_rate": MB},
            {"profile": "finished_inactive", "name": "sample-two"},
            {"profile": "downloading", "name": "sample-three", "size": 10**12},
            {"profile": "finished_inactive", "name": "sample-four"},
            *pads(4, profile="finished_inactive"),
        ],
    )
    key = user.key
    await save_rules(stack, key, [SAMPLE_ADDED_RULE])
    await first_poll(stack, key)
    for fault in (
        {"kind": "partial_list", "fraction": 0.6, "count": 2},
        {"kind": "empty_once", "count": 2},
    ):
        await stack.sim("POST", "/_sim/faults", json={"api_key": key, **fault})
    await faults_spent(stack, key)
    back = await observed(stack, key)
    assert back is not None
    await polls_after(stack, key, back, 2)
    added = await stack.sim(
        "POST", f"/_sim/accounts/{key}/torrents", json={"profile": "seeding", "name": "sample-new"}
    )
    new = added["torrent_id"]
    log = await wait_for_actions(stack, key, [delete_of(new)], "the new sample's delete")
    assert sent(log) == [delete_of(new)], log
    listed = await statuses(stack, key)
    assert all(listed[i]["present"] for i in user.ids), [listed[i] for i in user.ids]
    for torrent_id in user.ids:
        events = await torrent_events(stack, key, torrent_id)
        assert "TORRENT_ADDED" not in events, (torrent_id, events)
    await user.no_holds()


@scenario
async def _nulls_are_unknown(stack: Stack) -> None:
    nulls = ["seeds", "progress"]
    user = await new_user(
        stack,
        [
            # Behind the nulls: no seeds and unfinished, which the rule would delete if it knew.
            {"profile": "stalled", "name": "null-one", "progress": 0.2, "nulls": nulls},
            {"profile": "stalled", "name": "null-two", "progress": 0.6, "nulls": nulls},
            {"profile": "stalled", "name": "no-seeds-control", "progress": 0.4},
            *pads(5, profile="downloading", size=10**12, seeds=5),
            *[{"profile": "seeding", "name": f"seed-{i}", "upload_rate": MB} for i in range(4)],
        ],
    )
    key, control = user.key, user.ids[2]
    await save_rules(
        stack,
        key,
        [
            rule(
                "delete seedless unfinished",
                [
                    {"type": "SEEDS", "operator": "lt", "value": 1},
                    {"type": "PROGRESS", "operator": "lt", "value": 100},
                ],
                "delete",
            )
        ],
    )
    log = await wait_for_actions(stack, key, [delete_of(control)], "the control's delete")
    assert sent(log) == [delete_of(control)], log
    listed = await statuses(stack, key)
    for torrent_id in user.ids[:2]:
        row = listed[torrent_id]
        assert (row["seeds"], row["last_progress"], row["present"]) == (None, None, True), row
    await user.no_holds()


@scenario
async def _young_account_full_preset(stack: Stack) -> None:
    two_days = 2 * 86_400
    user = await new_user(
        stack,
        [
            *[
                {
                    "profile": "stalled",
                    "name": f"stalled-{i}",
                    "progress": 0.2 * i + 0.1,
                    "age_seconds": two_days,
                }
                for i in range(3)
            ],
            {"profile": "finished_inactive", "name": "young-control"},
            *pads(5, "seeding", profile="seeding", upload_rate=MB),
            *pads(5, "downloading", profile="downloading", size=10**12),
        ],
    )
    key, stalled, control = user.key, user.ids[:3], user.ids[3]
    first = await first_poll(stack, key)
    status, presets, _ = await stack.gw("GET", "/api/automation/presets", key=key)
    assert status == 200, presets
    (preset,) = [
        p
        for p in presets["presets"]
        if (p.get("metadata") or {}).get("preset") == "archive-stalled-6h"
    ]
    assert preset["groups"][0]["conditions"][0]["value"] == 360, preset
    full_preset = {**preset, "enabled": True, "trigger": {"type": "interval", "value": 0}}
    control_rule = rule(
        "delete the control",
        [{"type": "NAME", "operator": "equals", "value": "young-control"}],
        "delete",
    )
    await save_rules(stack, key, [full_preset, control_rule])
    saved_at = time.time()
    await wait_for_actions(stack, key, [delete_of(control)], "the control's delete")
    # About ten seconds of polling with the preset enabled.
    await asyncio.sleep(max(0.0, saved_at + 10 - time.time()))
    log = await control_log(stack, key)
    assert sent(log) == [delete_of(control)], log
    listed = await statuses(stack, key)
    watched = time.time() - seconds(first)
    for torrent_id in stalled:
        row = listed[torrent_id]
        assert (row["present"], row["status"]) == (True, "stalled"), row
        # Stalled for two days, say TorBox's dates; we know only what we watched.
        assert row["download_stalled_seconds"] <= watched + SLACK_SECONDS, row
    _, archived, _ = await stack.gw("GET", "/api/archived-downloads", key=key)
    assert archived["data"] == [], archived
    await user.no_holds()


# Tests ----------------------------------------------------------------------------------------


async def test_negated_hold(hazards: Hazards) -> None:
    """Negated held condition: "SEEDS gt 0", negated, for 0.1 min -> delete.

    Must not: delete a torrent with seeds (downloading or seeding), nor one whose seeds TorBox
    sends as null (the negation of unknown is unknown). Must: delete the dead seed (0 seeds)
    exactly once, only after the negated test has held for 6 s from a hold that began no earlier
    than the first poll (checked against the action's time and the held_since in its reason).
    """
    await hazards.outcome("negated_hold")


async def test_averages_unknown_until_observed(hazards: Hazards) -> None:
    """Averages: "AVG_UPLOAD_SPEED over 24 h lt 0.1 MB/s" -> delete.

    Must not: delete the torrent uploading 2 MB/s steadily; the 24-hour rule never acts at
    all, as its average is unknown until 24 h are watched (a partial window must not be read as
    a full one). Must: the same test over 7.2 s (a window that is watched) deletes the idle seed
    once, no earlier than 7.2 s after it was first seen, and touches no uploader.
    """
    await hazards.outcome("averages_unknown_until_observed")


async def test_unknown_size_is_not_zero(hazards: Hazards) -> None:
    """Unknown read as 0: "FILE_SIZE lt 0.05 GB" -> delete.

    Must not: delete the metaDL magnet (size 0 and files [] in mylist: not known yet) nor the
    queued item (getqueued says nothing of size); no controlqueued request at all. Must: delete
    the real 10 MB torrent exactly once.
    """
    await hazards.outcome("unknown_size_is_not_zero")


async def test_qbittorrent_states(hazards: Hazards) -> None:
    """qBittorrent states: the stall preset scaled down (DOWNLOAD_STALLED_TIME gt 0.1 min).

    Must not: archive torrents that move no bytes because TorBox says queuedDL (active true),
    checkingDL or allocating; send stop_seeding (from "RATIO gte 0 -> stop_seeding") to a
    completed item TorBox flags active. Must: archive the really stalled torrent once (a delete
    on TorBox plus an archived row) and stop the real seeding torrent once.
    """
    await hazards.outcome("qbittorrent_states")


async def test_protected_queued_item(hazards: Hazards) -> None:
    """Protecting a queued item: PUT /api/downloads/protect with the queued id.

    A rule deletes everything named guard-*. Must not: delete the protected queued item (no
    controlqueued request at all, no action recorded on it). Must: delete the unprotected
    guard-control torrent exactly once.
    """
    await hazards.outcome("protected_queued_item")


async def test_last_activity_fires(hazards: Hazards) -> None:
    """LAST_DOWNLOAD_ACTIVITY_AT gt 0.1 min -> delete: a rule that must fire, fires.

    Must: delete the torrent that never moves a byte, once, no earlier than 6 s after it was
    first seen (its value is a lower bound, "at least as long as watched"). Must not: delete
    the torrent downloading 5 MB/s.
    """
    await hazards.outcome("last_activity_fires")


async def test_one_poll_flap(hazards: Hazards) -> None:
    """A flapping list: TORRENT_ADDED and NAME matches ^sample -> delete.

    sample-flap is missing from one mylist answer, sample-gone-awhile from three (long enough
    to be confirmed removed). Must not: delete either when it comes back under its id, nor
    record TORRENT_ADDED for them. Must: delete sample-new, really added later through the
    admin API, exactly once.
    """
    await hazards.outcome("one_poll_flap")


async def test_blast_radius_held(hazards: Hazards) -> None:
    """Blast radius: a delete rule matching all 20 torrents, max_actions_per_run 2.

    Must not: delete anything, not even the two the per-run limit lets through (20 matched,
    over the cap of 10 a poll). Must: an AUTOMATION_HELD event on the user's event stream names
    the 20 matches and the two held deletes; no action is recorded for the rule.
    """
    await hazards.outcome("blast_radius_held")


async def test_list_glitch(hazards: Hazards) -> None:
    """List glitches: two partial lists (60% missing) and an empty one (twice, so the
    scheduler's re-fetch is empty too), on an account of eight torrents, with a TORRENT_ADDED
    ^sample delete rule.

    Must not: delete (or even match and hold) the sample-* torrents that reappear after each
    glitch, nor record TORRENT_ADDED for them. Must: delete sample-new, really added after the
    glitches, exactly once; every original torrent is still present afterwards.
    """
    await hazards.outcome("list_glitch")


async def test_nulls_are_unknown(hazards: Hazards) -> None:
    """Nulls: seeds and progress null on 2 of 12 torrents; "SEEDS lt 1 AND PROGRESS lt 100"
    -> delete.

    Must not: delete the two (unknown is not 0, whatever lies behind the nulls). Must: delete
    the stalled torrent with 0 seeds and 40% progress exactly once.
    """
    await hazards.outcome("nulls_are_unknown")


async def test_young_account_full_preset(hazards: Hazards) -> None:
    """A young account: the full 6-hour stall preset (DOWNLOAD_STALLED_TIME gt 360 -> archive)
    saved after the user's first poll, on torrents TorBox shows stalled for two days.

    Must not: archive anything over ten seconds of polling (the stall time is known only from
    our first sight, a lower bound of seconds, not TorBox's dates). Must: a destructive rule
    saved alongside deletes its control torrent once (destructive actions are live here).
    """
    await hazards.outcome("young_account_full_preset")
