"""The ingest flow over real SQLite files: rules to intents to outcomes, replays and writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from common.errors import InvalidArgument, NotFound, UserNotRegistered
from tests.userstore.conftest import Store, close_store, open_store
from tests.userstore.factory import T0, snap
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.core.rules.plan import SafetyConfig
from userstore_svc.downloads_service import DownloadService
from userstore_svc.ingest import IngestConfig, OutcomeIn, PlanOut, SnapshotIn
from userstore_svc.store import user_db

USER = hashlib.sha256(b"ingest-user").hexdigest()


def rule(name: str, action: str, *conditions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "interval", "value": 0},
        "groups": [{"logicOperator": "and", "conditions": list(conditions)}],
        "action": {"type": action},
        **extra,
    }


RATIO_1 = {"type": "RATIO", "operator": "gte", "value": 1}


async def ingest(
    store: Store, at: float, *torrents: TorrentSnapshot, run_rule_id: int | None = None
) -> PlanOut:
    return await store.ingestor.ingest(
        SnapshotIn(f"poll-{at}", USER, T0 + at, True, list(torrents), 60, run_rule_id)
    )


async def rows(store: Store, sql: str, *params: Any) -> list[Any]:
    async with store.pool.use(USER) as handle:
        return await handle.fetchall(sql, params)


@pytest.fixture
async def user(store: Store) -> Store:
    await store.users.register(USER, b"cipher")
    return store


async def test_replace_all_save_updates_inserts_and_deletes(user: Store) -> None:
    """Known ids are updated in place (keeping logs), new rules inserted, missing ones deleted."""
    saved = await user.rules.save_all(
        USER, [rule("a", "stop_seeding", RATIO_1), rule("b", "delete", RATIO_1)]
    )
    a, b = saved[0]["id"], saved[1]["id"]
    assert [r["name"] for r in saved] == ["a", "b"]
    plan = await ingest(user, 0, snap("seeding", ratio=2))
    assert len(plan.actions) == 1  # delete wins over stop_seeding
    logs_before = await user.rules.logs(USER, b, 10)
    assert len(logs_before) == 1
    saved = await user.rules.save_all(
        USER, [{**rule("b renamed", "delete", RATIO_1), "id": b}, rule("c", "pause", RATIO_1)]
    )
    assert [(r["id"], r["name"]) for r in saved] == [(b, "b renamed"), (max(a, b) + 1, "c")]
    # The old log is kept; saving the changed rule logged what it would do now.
    logs_after = await user.rules.logs(USER, b, 10)
    assert [log.execution_type for log in logs_after] == ["saved", logs_before[0].execution_type]
    assert logs_after[1].id == logs_before[0].id
    with pytest.raises(NotFound):
        await user.rules.get(USER, a)
    assert await rows(user, "SELECT COUNT(*) FROM rule_logs WHERE rule_id=?", a) == [(0,)]


async def test_a_stale_id_is_inserted_as_new(user: Store) -> None:
    """A rule carrying an id that does not exist is saved as a new rule."""
    saved = await user.rules.save_all(USER, [{**rule("x", "pause", RATIO_1), "id": 999}])
    assert saved[0]["id"] == 1


async def test_invalid_save_changes_nothing(user: Store) -> None:
    """A save with one bad rule is refused whole; the stored rules stay as they were."""
    await user.rules.save_all(USER, [rule("keep", "pause", RATIO_1)])
    with pytest.raises(InvalidArgument):
        await user.rules.save_all(USER, [rule("new", "pause", RATIO_1), rule("bad", "explode")])
    assert [r["name"] for r in await user.rules.list_rules(USER)] == ["keep"]


async def test_toggle_and_delete(user: Store) -> None:
    """PUT-style updates change one field and keep the rest; unknown ids are 404s."""
    (saved,) = await user.rules.save_all(USER, [rule("r", "pause", RATIO_1)])
    updated = await user.rules.update(USER, saved["id"], {"enabled": False})
    assert updated["enabled"] is False
    assert updated["groups"] == saved["groups"]
    assert not user.registry.require(USER).has_enabled_rules
    with pytest.raises(InvalidArgument):
        await user.rules.update(USER, saved["id"], {"enabled": "no"})
    with pytest.raises(NotFound):
        await user.rules.update(USER, 12345, {"enabled": True})
    await user.rules.delete(USER, saved["id"])
    with pytest.raises(NotFound):
        await user.rules.delete(USER, saved["id"])


async def test_intent_is_logged_before_the_action_and_outcome_after(user: Store) -> None:
    """An action is a pending intent (hash, name, magnet) when planned; its outcome settles it."""
    await user.rules.save_all(USER, [rule("archive", "archive", RATIO_1)])
    plan = await ingest(
        user,
        0,
        snap("seeding", id=7, ratio=2, magnet=None),
        *[snap("completed", id=i) for i in range(10, 20)],
    )
    (action,) = plan.actions
    assert (action.torrent_id, action.action, action.needs_magnet) == (7, "archive", True)
    (intent,) = await rows(
        user, "SELECT status, hash, name, magnet FROM actions WHERE id=?", action.action_id
    )
    assert intent[0] == "pending"
    assert intent[3].startswith("magnet:?xt=urn:btih:")
    archived = await rows(user, "SELECT torrent_id FROM archived_downloads")
    assert archived == [(7,)]
    recorded = await user.ingestor.record_outcomes(
        USER,
        [OutcomeIn(action.action_id, True, "", "", T0 + 1, magnet="magnet:?xt=urn:btih:full&tr=x")],
    )
    assert recorded == 1
    assert await rows(user, "SELECT status FROM actions WHERE id=?", action.action_id) == [
        ("succeeded",)
    ]
    assert await rows(user, "SELECT magnet FROM archived_downloads") == [
        ("magnet:?xt=urn:btih:full&tr=x",)
    ]
    # A second copy of the same outcome changes nothing.
    assert (
        await user.ingestor.record_outcomes(
            USER, [OutcomeIn(action.action_id, False, "X", "", T0 + 2)]
        )
        == 0
    )


async def test_a_failed_archive_is_not_archived_and_the_log_says_why(user: Store) -> None:
    """A failed delete removes the archive row it created and marks the execution log failed."""
    (saved,) = await user.rules.save_all(USER, [rule("archive", "archive", RATIO_1)])
    plan = await ingest(
        user, 0, snap("seeding", id=7, ratio=2), *[snap("completed", id=i) for i in range(10, 20)]
    )
    await user.ingestor.record_outcomes(
        USER, [OutcomeIn(plan.actions[0].action_id, False, "ACTIVE_LIMIT", "no", T0)]
    )
    assert await rows(user, "SELECT COUNT(*) FROM archived_downloads") == [(0,)]
    (log,) = await user.rules.logs(USER, saved["id"], 10)
    assert not log.success
    assert "ACTIVE_LIMIT" in (log.error_message or "")
    assert log.actions[0]["status"] == "failed"


async def test_orphaned_intents_are_reconciled_against_the_next_snapshot(user: Store) -> None:
    """An intent without outcome is settled by what the next snapshot shows."""
    await user.rules.save_all(USER, [rule("stop", "stop_seeding", RATIO_1, cooldown_minutes=0)])
    first = await ingest(user, 0, snap("seeding", id=1, ratio=2), snap("seeding", id=2, ratio=2))
    assert len(first.actions) == 2
    # No outcomes arrive (the scheduler died); the next snapshot shows torrent 1 stopped.
    second = await ingest(
        user, 60, snap("completed", id=1, ratio=2), snap("seeding", id=2, ratio=2)
    )
    statuses = dict(
        await rows(
            user,
            "SELECT torrent_key, status FROM actions WHERE id IN (?, ?)",
            first.actions[0].action_id,
            first.actions[1].action_id,
        )
    )
    # Torrent 2 still seeds: TorBox never ran that one.
    assert statuses == {1: "succeeded", 2: "not_executed"}
    assert [a.torrent_id for a in second.actions] == [2]


@pytest.mark.parametrize("action", ["stop_seeding", "archive"])
async def test_an_action_the_next_snapshot_shows_never_ran_is_sent_again_despite_cooldown(
    user: Store, action: str
) -> None:
    """Lost in flight, effect absent: not executed, retried now (no 30-minute cooldown wait);
    an archive row written for it is removed first, and a new one written with the retry."""
    await user.rules.save_all(USER, [rule("r", action, RATIO_1)])  # default cooldown
    first = await ingest(user, 0, snap("seeding", id=1, ratio=2))
    (lost,) = first.actions
    if action == "archive":
        assert await rows(user, "SELECT action_id FROM archived_downloads") == [(lost.action_id,)]
    # The scheduler died before TorBox ran it: the next snapshot still lists it seeding.
    second = await ingest(user, 60, snap("seeding", id=1, ratio=2))
    assert await rows(
        user, "SELECT status, error_code FROM actions WHERE id=?", lost.action_id
    ) == [("not_executed", "NOT_EXECUTED")]
    (retry,) = second.actions
    assert (retry.torrent_id, retry.action) == (1, action)
    if action == "archive":
        assert await rows(user, "SELECT action_id FROM archived_downloads") == [(retry.action_id,)]
    # The retry's outcome is lost too, but this time the effect shows: no third send. (A torrent
    # missing once is only flagged, so a delete is not confirmed yet: unknown, still no resend.)
    third = await ingest(user, 120, *([] if action == "archive" else [snap("completed", id=1)]))
    assert third.actions == []
    assert await rows(user, "SELECT status FROM actions WHERE id=?", retry.action_id) == [
        ("unknown" if action == "archive" else "succeeded",)
    ]


async def test_an_action_whose_effect_cannot_be_seen_keeps_its_cooldown(user: Store) -> None:
    """Not listed in the next snapshot (an incomplete one): unknown, never retried blind."""
    await user.rules.save_all(USER, [rule("r", "stop_seeding", RATIO_1)])
    first = await ingest(user, 0, snap("seeding", id=1, ratio=2), snap("seeding", id=2))
    (lost,) = first.actions
    second = await user.ingestor.ingest(
        SnapshotIn("partial", USER, T0 + 60, False, [snap("seeding", id=2)], 60)
    )
    assert await rows(user, "SELECT status FROM actions WHERE id=?", lost.action_id) == [
        ("unknown",)
    ]
    assert second.actions == []
    third = await ingest(user, 120, snap("seeding", id=1, ratio=2), snap("seeding", id=2))
    assert third.actions == []  # the cooldown of an action that may have run still applies


async def test_replaying_a_snapshot_changes_nothing(user: Store) -> None:
    """The same snapshot twice: the second is not applied and the database is untouched."""
    await user.rules.save_all(USER, [rule("stop", "stop_seeding", RATIO_1)])
    torrents = [snap("seeding", id=1, ratio=2), snap(id=2, total_downloaded=50)]
    first = await ingest(user, 0, *torrents)
    before = await rows(user, "SELECT * FROM torrents ORDER BY 1")
    events = await rows(user, "SELECT COUNT(*) FROM events")
    again = await ingest(user, 0, *torrents)
    assert first.applied
    assert not again.applied
    assert again.actions == []
    assert await rows(user, "SELECT * FROM torrents ORDER BY 1") == before
    assert await rows(user, "SELECT COUNT(*) FROM events") == events
    assert await rows(user, "SELECT COUNT(*) FROM actions") == [(1,)]


async def test_only_what_changed_is_written(user: Store) -> None:
    """Of 100 torrents, a poll where 10 moved writes 10 torrent rows (plus bookkeeping)."""
    torrents = [snap("completed", id=i) for i in range(1, 101)]
    await ingest(user, 0, *torrents)
    await ingest(user, 60, *torrents)
    async with user.pool.use(USER) as handle:
        before = handle.conn.total_changes
    moved = [
        snap("seeding", id=i, total_uploaded=500) if i <= 10 else t
        for i, t in enumerate(torrents, 1)
    ]
    await ingest(user, 120, *moved)
    async with user.pool.use(USER) as handle:
        written = handle.conn.total_changes - before
    # 10 torrent rows, their events, and three meta rows.
    events = await rows(user, "SELECT COUNT(*) FROM events WHERE observed_at=?", T0 + 120)
    assert written == 10 + events[0][0] + 3


async def stored_dates(store: Store) -> list[tuple[int, float | None]]:
    """Each torrent row's `updated_at` as stored (without the dates laid over it)."""
    stored = [user_db.state_from_row(row) for row in await rows(store, user_db.SELECT_TORRENTS)]
    return sorted((s.key, s.snap.updated_at) for s in stored)


async def test_dates_alone_moving_rewrite_no_row_yet_survive_reopening(tmp_path: Path) -> None:
    """TorBox moves an active torrent's updated_at and expires_at on every list. When nothing
    else moved the row is not rewritten: the dates are kept beside it (one meta value) and laid
    over it when read, so a reopened database answers with the dates last seen. A later real
    change writes the row and the dates beside it go."""
    store = await open_store(tmp_path)
    await store.users.register(USER, b"c")
    idle = [snap("completed", id=i, active=True, updated_at=T0, expires_at=T0 + 9) for i in (1, 2)]
    await ingest(store, 0, *idle)
    await ingest(store, 60, *idle)
    async with store.pool.use(USER) as handle:
        before = handle.conn.total_changes
    dated = [t._replace(updated_at=T0 + 120, expires_at=T0 + 129) for t in idle]
    await ingest(store, 120, *dated)
    async with store.pool.use(USER) as handle:
        # Three meta rows as on every poll, and the dates: no torrent row.
        assert handle.conn.total_changes - before == 4
        cached = dict((await user_db.load(handle)).states)
    stored = await stored_dates(store)
    assert stored == [(1, T0), (2, T0)]
    await close_store(store)
    store = await open_store(tmp_path)
    try:
        async with store.pool.use(USER) as handle:
            reread = (await user_db.load(handle)).states
        assert reread == cached
        assert [(s.snap.updated_at, s.snap.expires_at) for s in reread.values()] == [
            (T0 + 120, T0 + 129)
        ] * 2
        moved = dated[0]._replace(seeds=3, updated_at=T0 + 180, expires_at=T0 + 189)
        await ingest(store, 180, moved, dated[1]._replace(updated_at=T0 + 180))
        stored = await stored_dates(store)
        assert stored == [(1, T0 + 180), (2, T0)]
        dates = await rows(store, "SELECT value FROM meta WHERE key=?", user_db.DATES_KEY)
        assert json.loads(dates[0][0]) == {"2": [T0 + 180, T0 + 129]}
    finally:
        await close_store(store)


async def test_state_survives_reopening_exactly(tmp_path: Path) -> None:
    """After closing and reopening, the cached and the stored state are the same."""
    store = await open_store(tmp_path)
    await store.users.register(USER, b"c")
    for at in range(0, 600, 60):
        await ingest(
            store,
            at,
            snap("seeding", id=1, total_uploaded=at * 10),
            snap(id=2, total_downloaded=at),
        )
    async with store.pool.use(USER) as handle:
        cached = dict((await user_db.load(handle)).states)
    await close_store(store)
    again = await open_store(tmp_path)
    try:
        async with again.pool.use(USER) as handle:
            assert (await user_db.load(handle)).states == cached
    finally:
        await close_store(again)


async def test_a_boolean_condition_matches_state_read_back_from_disk(tmp_path: Path) -> None:
    """A private torrent that did not change since the database was closed still matches
    "PRIVATE is true" (the remembered snapshot is read back with real booleans)."""
    store = await open_store(tmp_path)
    await store.users.register(USER, b"c")
    private = {"type": "PRIVATE", "operator": "is_true", "value": True}
    await store.rules.save_all(
        USER, [rule("private", "pause", private, dry_run=True, cooldown_minutes=0)]
    )
    torrent = snap("seeding", id=1, private=True)
    await ingest(store, 0, torrent)
    assert await rows(store, "SELECT torrent_key, status FROM actions") == [(1, "dry_run")]
    await close_store(store)
    again = await open_store(tmp_path)
    try:
        await ingest(again, 60, torrent)
        assert await rows(again, "SELECT torrent_key, status FROM actions") == [
            (1, "dry_run"),
            (1, "dry_run"),
        ]
    finally:
        await close_store(again)


async def test_dry_run_logs_would_have_and_sends_nothing(tmp_path: Path) -> None:
    """With DRY_RUN every match is recorded as a dry-run action and no action is planned."""
    store = await open_store(
        tmp_path, config=IngestConfig(safety=SafetyConfig(global_dry_run=True))
    )
    try:
        await store.users.register(USER, b"c")
        (saved,) = await store.rules.save_all(USER, [rule("stop", "stop_seeding", RATIO_1)])
        plan = await ingest(store, 0, snap("seeding", id=1, ratio=2))
        assert plan.actions == []
        (log,) = await store.rules.logs(USER, saved["id"], 10)
        assert log.dry_run
        assert log.execution_type == "scheduled"
        assert [(a["action"], a["status"], a["dry_run"]) for a in log.actions] == [
            ("stop_seeding", "dry_run", True)
        ]
        reason = json.loads(log.actions[0]["reason_json"])
        assert reason[0]["value"] == 2.0
        assert reason[0]["threshold"] == 1.0
    finally:
        await close_store(store)


async def test_manual_run_reports_what_it_found(user: Store) -> None:
    """A manual run of one rule reports totals, matches and what it did."""
    (saved,) = await user.rules.save_all(
        USER, [{**rule("stop", "stop_seeding", RATIO_1), "enabled": False}]
    )
    plan = await ingest(
        user, 0, snap("seeding", id=1, ratio=2), snap(id=2), run_rule_id=saved["id"]
    )
    summary = plan.run_summary
    assert summary is not None
    assert (summary.total, summary.matched, summary.processed, summary.skipped) == (2, 1, 1, False)
    (log,) = await user.rules.logs(USER, saved["id"], 10)
    assert log.execution_type == "manual"


async def test_unregistered_users_are_refused(store: Store) -> None:
    """Snapshots for a user that never registered create nothing."""
    with pytest.raises(UserNotRegistered):
        await ingest(store, 0, snap())
    assert not store.pool.path_for(USER).exists()


async def test_a_user_being_moved_is_frozen_until_the_move_ends(user: Store) -> None:
    """While a user moves, snapshots and reads are refused; an abort restores the user."""
    from common.errors import FailedPrecondition, Unavailable
    from userstore_svc.moves import MoveService

    moves = MoveService(user.pool, user.registry, user.clock)
    await ingest(user, 0, snap())
    frozen = await moves.begin(USER)
    assert frozen.user.status == "active"
    assert frozen.size > 0
    with pytest.raises(Unavailable):
        await ingest(user, 60, snap())
    with pytest.raises(Unavailable):
        await user.rules.list_rules(USER)
    again = await moves.begin(USER)
    assert again.user.status == "active"
    await moves.abort(USER)
    assert (await ingest(user, 60, snap())).applied
    with pytest.raises(FailedPrecondition):
        await moves.finish(USER)


async def _ingest_every(
    store: Store, at: float, *torrents: TorrentSnapshot, interval: float = 60
) -> PlanOut:
    return await store.ingestor.ingest(
        SnapshotIn(f"poll-{at}", USER, T0 + at, True, list(torrents), interval)
    )


async def test_unknowns_pending_removals_and_deferred_events_survive_reopening(
    tmp_path: Path,
) -> None:
    """Nulls stay None on disk; a flagged torrent and a held event outlive a restart."""
    store = await open_store(tmp_path)
    await store.users.register(USER, b"c")
    added = {"type": "NAME", "operator": "matches", "value": "^sample"}
    await store.rules.save_all(
        USER,
        [
            rule(
                "added",
                "delete",
                added,
                trigger={"type": "event", "events": ["TORRENT_ADDED"]},
            )
        ],
    )
    torrents = [snap(id=i, name=f"t{i}") for i in range(1, 7)]
    queued = snap("queued", id=50, size=None, seeds=None, active=None)
    await ingest(store, 0, *torrents, queued)
    # Most of the list vanishes while a new sample arrives: the delete is held, the event kept.
    plan = await ingest(store, 60, torrents[0], queued, snap(id=10, name="sample-x"))
    assert plan.actions == []
    async with store.pool.use(USER) as handle:
        cached = await user_db.load(handle)
        states, deferred, missing = dict(cached.states), cached.deferred, cached.pending_missing
    assert deferred
    assert missing
    await close_store(store)
    again = await open_store(tmp_path)
    try:
        async with again.pool.use(USER) as handle:
            data = await user_db.load(handle)
            assert data.states == states
            assert data.states[-50].snap.size is None
            assert data.deferred == deferred
            assert data.pending_missing == missing
        plan = await ingest(again, 120, *torrents, queued, snap(id=10, name="sample-x"))
        assert [(a.torrent_id, a.action) for a in plan.actions] == [(10, "delete")]
    finally:
        await close_store(again)


async def test_moving_from_the_idle_to_the_active_interval_is_not_an_outage(user: Store) -> None:
    """The gap is judged by the interval that was in force: a 30-minute idle wait is no gap."""
    await _ingest_every(user, 0, snap("seeding", id=1, created_at=T0), interval=1800)
    await _ingest_every(user, 1800, snap("seeding", id=1, created_at=T0), interval=1800)
    # The user saves a rule: polls every minute from now on.
    await _ingest_every(user, 3600, snap("seeding", id=1, created_at=T0), interval=60)
    async with user.pool.use(USER) as handle:
        state = (await user_db.load(handle)).states[1]
    assert state.seeding_run_since == T0  # one unbroken run: no outage was seen


async def test_editing_a_rule_drops_the_events_kept_for_its_old_form(user: Store) -> None:
    """A TORRENT_ADDED delete held by a glitch, then the rule is edited: nothing is deleted."""
    added = {"type": "NAME", "operator": "contains", "value": "sample"}
    event = {"type": "event", "events": ["TORRENT_ADDED"]}
    saved = await user.rules.save_all(USER, [rule("added", "delete", added, trigger=event)])
    torrents = [snap(id=i, name=f"t{i}") for i in range(1, 7)]
    await ingest(user, 0, *torrents)
    newcomer = snap(id=10, name="Movie.sample", progress=0.01)
    assert (await ingest(user, 60, torrents[0], newcomer)).actions == []
    async with user.pool.use(USER) as handle:
        assert (await user_db.load(handle)).deferred
    # The user rewrites the rule: "on TORRENT_STALLED, progress under 5 %".
    user.now[0] = T0 + 90
    stalled = {"type": "PROGRESS", "operator": "lt", "value": 5}
    await user.rules.save_all(
        USER,
        [
            rule(
                "added",
                "delete",
                stalled,
                id=saved[0]["id"],
                trigger={"type": "event", "events": ["TORRENT_STALLED"]},
            )
        ],
    )
    plan = await ingest(user, 120, *torrents, newcomer)
    assert plan.actions == []


async def test_a_saved_rule_waits_one_interval_and_logs_what_it_would_do(user: Store) -> None:
    """A delete rule every 30 minutes, saved with a matching torrent: nothing for 30 minutes,
    then one delete; the log shows at once what it would have done on the last poll."""
    doomed = snap("seeding", id=1, ratio=2.0)
    await ingest(user, 0, doomed, snap(id=2))
    user.now[0] = T0 + 10
    saved = await user.rules.save_all(
        USER, [rule("ratio", "delete", RATIO_1, trigger={"type": "interval", "value": 30})]
    )
    (log,) = await user.rules.logs(USER, saved[0]["id"], 10)
    assert (log.execution_type, log.items_processed, log.dry_run) == ("saved", 0, True)
    assert log.error_message is not None
    assert "would delete 1 of 2 downloads: Some.Torrent" in log.error_message
    for at in range(60, 1800, 60):
        assert (await ingest(user, at, doomed, snap(id=2))).actions == []
    plan = await ingest(user, 1810, doomed, snap(id=2))
    assert [(a.torrent_id, a.action) for a in plan.actions] == [(1, "delete")]


async def test_enabling_a_rule_restarts_its_wait(user: Store) -> None:
    """A disabled rule switched on waits one interval too (TBM's first-evaluation timing)."""
    doomed = snap("seeding", id=1, ratio=2.0)
    saved = await user.rules.save_all(
        USER,
        [
            rule(
                "ratio",
                "stop_seeding",
                RATIO_1,
                enabled=False,
                trigger={"type": "interval", "value": 5},
            )
        ],
    )
    await ingest(user, 0, doomed)
    user.now[0] = T0 + 100
    await user.rules.update(USER, saved[0]["id"], {"enabled": True})
    assert (await ingest(user, 200, doomed)).actions == []
    assert (await ingest(user, 390, doomed)).actions == []
    plan = await ingest(user, 400, doomed)
    assert [(a.torrent_id, a.action) for a in plan.actions] == [(1, "stop_seeding")]


async def test_protection_follows_a_queued_item_into_the_torrent_it_becomes(user: Store) -> None:
    """The torrent a protected queued item becomes is protected by its own id from then on."""
    downloads = DownloadService(user.pool, user.registry, user.clock)
    await ingest(user, 0, snap("queued", id=77, hash="e" * 40), snap(id=1))
    await downloads.set_protected(USER, [77], True)
    await ingest(user, 60, snap(id=501, hash="e" * 40), snap(id=1))
    assert await downloads.get_protected(USER) == [77, 501]
    assert await rows(user, "SELECT torrent_id FROM protected_downloads ORDER BY 1") == [
        (77,),
        (501,),
    ]
    allowed, blocked = await downloads.assert_protection(USER, [501, 1], "delete")
    assert (allowed, blocked) == ([1], [501])


async def test_a_rule_with_a_huge_interval_saves_and_logs(user: Store) -> None:
    """No interval makes the first-evaluation date unprintable (it is capped at ten years)."""
    await ingest(user, 0, snap("seeding", id=1, ratio=2.0))
    saved = await user.rules.save_all(
        USER, [rule("never", "pause", RATIO_1, trigger={"type": "interval", "value": 1e12})]
    )
    (log,) = await user.rules.logs(USER, saved[0]["id"], 10)
    assert log.execution_type == "saved"
