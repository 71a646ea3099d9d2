"""The action executor against the simulated TorBox over real HTTP: what it sends and reports."""

from __future__ import annotations

from typing import Any

from torbox.automation.v1 import torrent_pb2 as tpb

from scheduler_svc.executor import ActionExecutor
from tests.scheduler.conftest import ClientFactory, SimServer


def _action(
    action_id: int, kind: tpb.ActionType.ValueType, torrent_id: int, **extra: Any
) -> tpb.PlannedAction:
    return tpb.PlannedAction(action_id=action_id, type=kind, torrent_id=torrent_id, **extra)


async def test_every_outcome_is_reported_as_soon_as_known_and_returned_in_order(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """Stop seeding, reannounce, delete and force_start go to their endpoints; each is reported."""
    account = await sim.account(mix={"seeding": 3, "queued": 1})
    key = account["api_key"]
    seeding = account["torrent_ids"]
    queued = account["queued_ids"][0]
    executor = ActionExecutor(make_client(), concurrency=2, dry_run=False)
    actions = [
        _action(1, tpb.ACTION_TYPE_STOP_SEEDING, seeding[0]),
        _action(2, tpb.ACTION_TYPE_REANNOUNCE, seeding[1]),
        _action(3, tpb.ACTION_TYPE_DELETE, seeding[2]),
        _action(4, tpb.ACTION_TYPE_FORCE_START, queued, queued=True),
    ]
    reported: list[tpb.ActionOutcome] = []

    async def report(outcome: tpb.ActionOutcome) -> None:
        reported.append(outcome)

    outcomes = await executor.run("k", key, actions, report=report)
    assert [o.action_id for o in outcomes] == [1, 2, 3, 4]
    assert all(o.success for o in outcomes), outcomes
    assert sorted(o.action_id for o in reported) == [1, 2, 3, 4]
    log = [(r["endpoint"], r["operation"], r["id"]) for r in (await sim.state(key))["requests"]]
    assert sorted(log, key=str) == sorted(
        [
            ("torrents/controltorrent", "stop_seeding", seeding[0]),
            ("torrents/controltorrent", "reannounce", seeding[1]),
            ("torrents/controltorrent", "delete", seeding[2]),
            ("queued/controlqueued", "start", queued),
        ],
        key=str,
    )
    assert executor.sent == 4


async def test_nothing_is_sent_once_torbox_is_considered_down(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """With the breaker open every action fails as TORBOX_OUTAGE without a request."""
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    executor = ActionExecutor(make_client(), concurrency=4, dry_run=False)
    actions = [_action(i, tpb.ACTION_TYPE_DELETE, t) for i, t in enumerate(account["torrent_ids"])]
    outcomes = await executor.run("k", key, actions, halted=lambda: True)
    assert [(o.success, o.error_code) for o in outcomes] == [(False, "TORBOX_OUTAGE")] * 2
    assert sim.of(key) == []
    assert len((await sim.state(key))["torrents"]) == 2


async def test_an_archive_fetches_a_missing_magnet_and_never_deletes_without_one(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """needs_magnet: exportdata first; if it fails the torrent stays and the code says why."""
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    first, second = account["torrent_ids"]
    executor = ActionExecutor(make_client(retries=0), concurrency=1, dry_run=False)

    done = await executor.run(
        "k", key, [_action(1, tpb.ACTION_TYPE_ARCHIVE, first, needs_magnet=True)]
    )
    assert done[0].success
    assert done[0].magnet.startswith("magnet:?")

    await sim.fault(key, "http_500", endpoint="export", count=5)
    refused = await executor.run(
        "k", key, [_action(2, tpb.ACTION_TYPE_ARCHIVE, second, needs_magnet=True)]
    )
    assert not refused[0].success
    assert refused[0].error_code == "EXPORT_FAILED"
    remaining = {t["id"] for t in (await sim.state(key))["torrents"]}
    assert remaining == {second}


async def test_deleting_what_is_already_gone_counts_as_done(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """A delete TorBox answers with ITEM_NOT_FOUND succeeded in effect."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    torrent_id = account["torrent_ids"][0]
    await make_client().control_torrent("k", key, torrent_id, "delete")
    executor = ActionExecutor(make_client(), concurrency=1, dry_run=False)
    outcome = (await executor.run("k", key, [_action(9, tpb.ACTION_TYPE_DELETE, torrent_id)]))[0]
    assert outcome.success
    assert outcome.message == "already gone"


async def test_a_dry_run_scheduler_sends_nothing(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """DRY_RUN: whatever was planned, TorBox hears nothing and each outcome says DRY_RUN."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    executor = ActionExecutor(make_client(), concurrency=1, dry_run=True)
    outcome = (
        await executor.run(
            "k", key, [_action(1, tpb.ACTION_TYPE_DELETE, account["torrent_ids"][0])]
        )
    )[0]
    assert (outcome.success, outcome.error_code) == (False, "DRY_RUN")
    assert sim.of(key) == []
