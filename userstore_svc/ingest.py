"""Applying a snapshot: the pure pipeline and planner between one read and one short write.

The user's lock (held through :meth:`DatabasePool.use`) makes each user's polls strictly
sequential. Nothing here awaits the network: the only awaits are SQLite calls on the user's own
connection, all inside one transaction.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from userstore_svc.core.actions import NOT_EXECUTED, Reconciled, reconcile
from userstore_svc.core.models import (
    TORRENT,
    Event,
    PipelineConfig,
    TorrentSnapshot,
    TorrentState,
)
from userstore_svc.core.pipeline import PollInput, PollResult, run_poll
from userstore_svc.core.rules.model import DESTRUCTIVE_ACTIONS, TAG_ACTIONS
from userstore_svc.core.rules.plan import (
    Intent,
    PlanInput,
    RuleEntry,
    RuleReport,
    SafetyConfig,
    plan,
    protected_keys,
)
from userstore_svc.hub import TAGS_CHANGED, Changed, EventHub, Item
from userstore_svc.store import rule_tags, user_db
from userstore_svc.store.pool import DatabasePool, offload
from userstore_svc.store.registry import Registry
from userstore_svc.store.rule_tags import TagData
from userstore_svc.store.user_db import PendingAction, StoredRule, UserData
from userstore_svc.turns import LoopTurns

# Keep event history and logs bounded: pruned every this many polls of a user.
PRUNE_EVERY_POLLS = 100
# A poll whose rules test more than this many (condition x item) pairs is evaluated on the
# heavy-poll thread instead of the event loop: about 5 ms of the cheapest conditions, so every
# poll that could hold the loop longer than that leaves it free for the other users. The thread
# waits its turn after every millisecond of work (turns.py), so the loop's work goes first.
OFFLOAD_WORK = 50_000
# TBM's words when a tag action names a tag that no longer exists (the batch fails).
INVALID_TAGS = "One or more tag IDs are invalid"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Settings that shape ingestion."""

    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    max_events: int = 20_000
    max_event_age_seconds: float = 30 * 86400.0
    max_actions: int = 20_000
    removed_retention_seconds: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class SnapshotIn:
    """A snapshot as the servicer hands it over."""

    poll_id: str
    auth_id: str
    observed_at: float
    complete: bool
    torrents: Sequence[TorrentSnapshot]
    poll_interval: float
    run_rule_id: int | None = None
    # The types whose lists were fetched whole (items of other types are left as they were).
    listed_kinds: frozenset[str] = frozenset({TORRENT})


@dataclass(frozen=True, slots=True)
class ActionOut:
    """An action for the scheduler to send."""

    action_id: int
    torrent_id: int
    action: str
    queued: bool
    rule_id: int
    rule_name: str
    needs_magnet: bool
    kind: str = TORRENT


@dataclass(frozen=True, slots=True)
class RunSummaryOut:
    """What a manual run of one rule found."""

    rule_id: int
    rule_name: str
    total: int
    matched: int
    processed: int
    dry_run: bool
    skipped: bool
    reason: str
    action: str


@dataclass(frozen=True, slots=True)
class PlanOut:
    """The answer to a snapshot."""

    poll_id: str
    auth_id: str
    applied: bool
    actions: list[ActionOut]
    next_poll_in: float | None
    has_enabled_rules: bool
    run_summary: RunSummaryOut | None = None
    # The types the enabled rules need listed (torrents always).
    kinds: frozenset[str] = frozenset({TORRENT})


@dataclass(frozen=True, slots=True)
class OutcomeIn:
    """The result of one action, from the scheduler."""

    action_id: int
    success: bool
    error_code: str
    message: str
    completed_at: float
    magnet: str | None = None


class Ingestor:
    """Applies snapshots and outcomes for the users of this shard."""

    def __init__(
        self, pool: DatabasePool, registry: Registry, hub: EventHub, config: IngestConfig
    ) -> None:
        self.pool = pool
        self.registry = registry
        self.hub = hub
        self.config = config
        self.applied = 0
        self.replayed = 0
        # Snapshots applied after a gap: the user was not polled in time (an outage, or a
        # scheduler that cannot keep up), so histories and held conditions started again.
        self.after_gap = 0
        self.torrents = 0
        self.offloaded = 0
        # Turns heavy polls gave the event loop (see turns.py).
        self.turns = 0
        # One thread: heavy polls wait for each other, and at most one at a time competes with
        # the event loop (and the SQLite threads) for the interpreter.
        self._heavy = ThreadPoolExecutor(1, thread_name_prefix="heavy-poll")

    async def ingest(self, snap: SnapshotIn) -> PlanOut:
        """Apply one snapshot and answer with the plan (a replay changes nothing)."""
        self.registry.require(snap.auth_id)
        async with self.pool.use(snap.auth_id) as handle:
            data = await user_db.load(handle)
            enabled = any(r.rule.enabled for r in data.rules)
            if data.last_observed_at is not None and snap.observed_at <= data.last_observed_at:
                self.replayed += 1
                return PlanOut(
                    snap.poll_id, snap.auth_id, False, [], None, enabled, kinds=wanted_kinds(data)
                )
            tags = None
            if any(
                r.rule.uses_tags for r in data.rules if r.rule.enabled or r.id == snap.run_rule_id
            ):
                tags = await rule_tags.load(handle)
            if poll_work(data, snap) > OFFLOAD_WORK:
                # The user's lock is held throughout, so nothing else reads or writes `data`
                # meanwhile; `offload` waits for the thread even if this task is cancelled.
                self.offloaded += 1
                turns = LoopTurns(asyncio.get_running_loop())
                outcome = await offload(
                    self._heavy, functools.partial(_apply, data, snap, self.config, tags, turns)
                )
                self.turns += turns.turns
            else:
                outcome = _apply(data, snap, self.config, tags)
            await handle.transaction(outcome.statements)
            outcome.commit_to(data)
        self.applied += 1
        self.after_gap += outcome.after_gap
        self.torrents += len(snap.torrents)
        self.registry.note_poll(snap.auth_id, snap.observed_at, outcome.present_count)
        items: list[Item] = list(outcome.events)
        if outcome.changed_count:
            items.append(Changed(snap.observed_at, outcome.changed_count))
        if outcome.tags_changed:
            # Live only, like protection_changed: TBM refetches /api/downloads/tags on it.
            items.append(Event(TAGS_CHANGED, 0, snap.observed_at, {}))
        if items:
            self.hub.publish(snap.auth_id, items)
        return outcome.plan

    def close(self) -> None:
        """Stop the heavy-poll thread (after any evaluation under way)."""
        self._heavy.shutdown(wait=True)

    async def record_outcomes(self, auth_id: str, outcomes: Sequence[OutcomeIn]) -> int:
        """Write each action's outcome (idempotent: an outcome for a settled action is ignored)."""
        if not outcomes:
            return 0
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            data = await user_db.load(handle)
            rows = await handle.fetchall(
                "SELECT id, log_id, rule_id, rule_name, torrent_key, name, action, status "
                f"FROM actions WHERE id IN ({','.join('?' * len(outcomes))})",
                [o.action_id for o in outcomes],
            )
            known = {row[0]: row for row in rows}
            statements: list[tuple[str, Any]] = []
            events: list[Event] = []
            failed_logs: dict[int, list[str]] = {}
            settled: set[int] = set()
            for o in outcomes:
                row = known.get(o.action_id)
                if row is None or row[7] != "pending":
                    continue
                _, log_id, rule_id, rule_name, key, name, action, _status = row
                settled.add(o.action_id)
                status = "succeeded" if o.success else "failed"
                statements.append(
                    (
                        "UPDATE actions SET status=?, error_code=?, error_message=?, "
                        "completed_at=? WHERE id=?",
                        (
                            status,
                            o.error_code or None,
                            o.message or None,
                            o.completed_at,
                            o.action_id,
                        ),
                    )
                )
                if action == "archive":
                    if o.success and o.magnet:
                        statements.append(
                            (
                                "UPDATE archived_downloads SET magnet=? WHERE action_id=?",
                                (o.magnet, o.action_id),
                            )
                        )
                    elif not o.success:
                        # The torrent was not deleted: it is not archived either.
                        statements.append(
                            ("DELETE FROM archived_downloads WHERE action_id=?", (o.action_id,))
                        )
                if not o.success and log_id is not None:
                    failed_logs.setdefault(log_id, []).append(o.error_code or "ERROR")
                events.append(
                    Event(
                        "AUTOMATION_ACTION",
                        key,
                        o.completed_at,
                        {
                            "action_id": o.action_id,
                            "rule_id": rule_id,
                            "rule_name": rule_name,
                            "action": action,
                            "name": name,
                            "success": o.success,
                            "error_code": o.error_code or None,
                            "message": o.message or None,
                        },
                    )
                )
            for log_id in failed_logs:
                # Outcomes arrive one at a time: count every failure of the run, not this batch.
                statements.append(
                    (
                        "UPDATE rule_logs SET success=0, error_message=(SELECT count(*) || "
                        "' action(s) failed: ' || replace(group_concat(DISTINCT "
                        "coalesce(error_code, 'ERROR')), ',', ', ') FROM actions "
                        "WHERE log_id=? AND status='failed') WHERE id=?",
                        (log_id, log_id),
                    )
                )
            ids = user_db.take_ids(data, "events", len(events))
            statements.append((user_db.INSERT_EVENT, user_db.event_rows(events, ids)))
            await handle.transaction(statements)
            data.pending = [p for p in data.pending if p.id not in settled]
        if events:
            self.hub.publish(auth_id, events)
        return len(settled)


def wanted_kinds(data: UserData) -> frozenset[str]:
    """The asset types the user's enabled rules need listed (torrents always)."""
    return _kinds_of(data.rules)


def _kinds_of(rules: Sequence[StoredRule]) -> frozenset[str]:
    kinds = {TORRENT}
    for stored in rules:
        if stored.rule.enabled:
            kinds.update(stored.rule.asset_types)
    return frozenset(kinds)


def poll_work(data: UserData, snap: SnapshotIn) -> int:
    """The (condition x item) pairs this snapshot's rules may test: its evaluation cost.

    Every rule counts at least once per item (its own loop costs about one condition).
    """
    per_item = sum(
        max(1, r.compiled.conditions)
        for r in data.rules
        if r.rule.enabled or r.id == snap.run_rule_id
    )
    return per_item * len(snap.torrents)


@dataclass(slots=True)
class _Applied:
    """The result of applying one snapshot, before and after its commit."""

    statements: list[tuple[str, Any]]
    events: list[Event]
    plan: PlanOut
    present_count: int
    changed_count: int
    new_data: dict[str, Any]
    # A tag action changed the user's download tags.
    tags_changed: bool = False
    # The snapshot came more than twice the poll interval after the previous one.
    after_gap: bool = False

    def commit_to(self, data: UserData) -> None:
        """Update the cached user data once the transaction committed."""
        for name, value in self.new_data.items():
            setattr(data, name, value)


def _apply(
    data: UserData,
    snap: SnapshotIn,
    config: IngestConfig,
    tags: TagData | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> _Applied:
    """Everything one snapshot changes, computed without I/O (`tags`: loaded if rules need them).

    `checkpoint` is called between items (on the heavy-poll thread: the event loop's turns).
    """
    now = snap.observed_at
    # A gap is judged by the interval that was in force: a user moved from the idle interval to
    # the active one must not see the idle wait as an outage.
    max_gap = 2.0 * max(snap.poll_interval, data.poll_interval or 0.0, 1.0)
    baseline = data.last_observed_at is None
    after_gap = not baseline and now - (data.last_observed_at or now) > max_gap
    result = run_poll(
        data.states,
        PollInput(
            observed_at=now,
            complete=snap.complete,
            torrents=snap.torrents,
            max_gap=max_gap,
            baseline=baseline,
            pending_missing=data.pending_missing,
            previous_at=data.last_observed_at,
            listed_kinds=snap.listed_kinds,
            checkpoint=checkpoint,
        ),
        config.pipeline,
    )
    states = result.states
    reconciled = reconcile([(p.id, p.key, p.action) for p in data.pending], states)
    last_actions = _without_unexecuted(data, reconciled)

    manual = snap.run_rule_id
    entries = [
        RuleEntry(r.compiled, r.id, r.last_evaluated_at, r.not_before)
        for r in data.rules
        if r.rule.enabled or r.id == manual
    ]
    plan_out = plan(
        PlanInput(
            now=now,
            states=states,
            events=result.events,
            rules=entries,
            holds=data.holds,
            protected=data.protected,
            limits=data.limits,
            last_actions=last_actions,
            pending=frozenset(),
            safety=config.safety,
            hold_reason=result.hold_reason,
            held_kinds=result.held_kinds,
            listed_kinds=snap.listed_kinds,
            run_rule_id=manual,
            reset_holds=after_gap,
            deferred=_current_deferred(data),
            tags=None if tags is None else tags.mappings,
            checkpoint=checkpoint,
        )
    )

    statements: list[tuple[str, Any]] = [
        (user_db.INSERT_TORRENT, [user_db.state_row(s) for s in result.changed]),
    ]
    protected = _protection_followed(data, states, now, statements)
    events: list[Event] = list(result.events) + list(plan_out.events)

    # Reconciled orphans.
    for r in reconciled:
        statements.append(
            (
                "UPDATE actions SET status=?, error_code=?, completed_at=? "
                "WHERE id=? AND status='pending'",
                (r.status, r.error_code, now, r.action_id),
            )
        )
        if r.status == NOT_EXECUTED:
            # The torrent is still listed: it was not deleted, so it is not archived either.
            statements.append(("DELETE FROM archived_downloads WHERE action_id=?", (r.action_id,)))

    # Execution log rows and per-torrent action records.
    reports = {r.rule_id: r for r in plan_out.reports}
    log_rules = [r for r in plan_out.reports if r.processed > 0 or manual == r.rule_id]
    recorded = [i for i in plan_out.intents if i.status != "held"]
    bad_tags = _invalid_tag_rules(recorded, tags)
    log_ids = dict(
        zip(
            (r.rule_id for r in log_rules),
            user_db.take_ids(data, "rule_logs", len(log_rules)),
            strict=True,
        )
    )
    statements.append(
        (
            "INSERT INTO rule_logs(id, rule_id, rule_name, execution_type, items_processed, "
            "success, error_message, executed_at, dry_run) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    log_ids[r.rule_id],
                    r.rule_id,
                    r.rule_name,
                    r.execution_type,
                    r.processed,
                    0 if r.rule_id in bad_tags else 1,
                    INVALID_TAGS if r.rule_id in bad_tags else _skip_summary(r),
                    now,
                    int(r.dry_run),
                )
                for r in log_rules
            ],
        )
    )
    action_ids = user_db.take_ids(data, "actions", len(recorded))
    archive_ids = user_db.take_ids(
        data,
        "archived_downloads",
        sum(1 for i in recorded if i.action == "archive" and not i.dry_run),
    )
    action_rows = []
    archive_rows = []
    actions_out: list[ActionOut] = []
    last_actions = dict(last_actions)
    pending: list[PendingAction] = []  # every earlier one was just reconciled
    archive_iter = iter(archive_ids)
    tag_adds: list[tuple[int, int]] = []
    tag_removes: list[tuple[int, int]] = []
    for action_id, intent in zip(action_ids, recorded, strict=True):
        state = states[intent.key]
        s = state.snap
        magnet = s.magnet if s.magnet else _rebuilt_magnet(s.hash, s.name)
        status, error = intent.status, None
        if intent.action in TAG_ACTIONS and status == "pending":
            # Carried out here, in this poll's transaction: TorBox is never called.
            status, error = (
                ("failed", INVALID_TAGS) if intent.rule_id in bad_tags else ("succeeded", None)
            )
            if error is None:
                pairs = [(s.id, tag_id) for tag_id in intent.tag_ids]
                (tag_adds if intent.action == "add_tag" else tag_removes).extend(pairs)
            events.append(_local_action_event(action_id, intent, s.name, now, error))
        action_rows.append(
            (
                action_id,
                log_ids.get(intent.rule_id),
                intent.rule_id,
                intent.rule_name,
                intent.key,
                s.hash,
                s.name,
                magnet if intent.action in DESTRUCTIVE_ACTIONS else s.magnet,
                intent.action,
                int(intent.dry_run),
                status,
                intent.reason_json,
                now,
                None if error is None else "INVALID_TAG_IDS",
                error,
                now if status != intent.status else None,
            )
        )
        last_actions[(intent.rule_id, intent.key)] = now
        if status != "pending":
            continue
        if intent.action == "archive":
            archive_rows.append(
                (next(archive_iter), s.id, s.hash, s.name, s.tracker, magnet, now, action_id)
            )
        pending.append(
            PendingAction(
                action_id,
                intent.key,
                intent.action,
                intent.rule_id,
                log_ids.get(intent.rule_id),
                now,
            )
        )
        actions_out.append(
            ActionOut(
                action_id=action_id,
                torrent_id=s.id,
                action=intent.action,
                queued=s.queued,
                rule_id=intent.rule_id,
                rule_name=intent.rule_name,
                needs_magnet=intent.action == "archive" and not s.magnet,
                kind=s.kind,
            )
        )
    statements.append(
        (
            "INSERT INTO actions(id, log_id, rule_id, rule_name, torrent_key, hash, name, magnet, "
            "action, dry_run, status, reason, created_at, error_code, error_message, "
            "completed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            action_rows,
        )
    )
    if tag_adds:
        statements.append(rule_tags.add_statement(tag_adds, now))
    if tag_removes:
        statements.append(rule_tags.remove_statement(tag_removes))
    statements.append(
        (
            "INSERT INTO archived_downloads(id, torrent_id, hash, name, tracker, magnet, "
            "archived_at, action_id) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(torrent_id) DO UPDATE "
            "SET hash=excluded.hash, name=excluded.name, tracker=excluded.tracker, "
            "magnet=excluded.magnet, archived_at=excluded.archived_at, "
            "action_id=excluded.action_id",
            archive_rows,
        )
    )

    # Rule bookkeeping.
    rules = []
    bookkeeping: list[tuple[float | None, float | None, int, int]] = []
    for stored in data.rules:
        report = reports.get(stored.id)
        evaluated = stored.id in plan_out.evaluated_rule_ids
        executed = report is not None and report.processed > 0 and not report.dry_run
        if evaluated or executed:
            stored = replace(
                stored,
                last_evaluated_at=now if evaluated else stored.last_evaluated_at,
                last_executed_at=now if executed else stored.last_executed_at,
                execution_count=stored.execution_count + (1 if executed else 0),
            )
            bookkeeping.append(
                (
                    stored.last_evaluated_at,
                    stored.last_executed_at,
                    stored.execution_count,
                    stored.id,
                )
            )
        rules.append(stored)
    statements.append(
        (
            "UPDATE rules SET last_evaluated_at=?, last_executed_at=?, execution_count=? "
            "WHERE id=?",
            bookkeeping,
        )
    )

    # Holds: write only what started or stopped.
    new_holds = plan_out.holds
    drop, add = _holds_diff(data.holds, new_holds)
    statements.append(
        ("DELETE FROM condition_holds WHERE rule_id=? AND torrent_key=? AND path=?", drop)
    )
    statements.append(
        (
            "INSERT OR REPLACE INTO condition_holds(rule_id, torrent_key, path, since) "
            "VALUES (?,?,?,?)",
            add,
        )
    )

    event_ids = user_db.take_ids(data, "events", len(events))
    statements.append((user_db.INSERT_EVENT, user_db.event_rows(events, event_ids)))
    polls = data.polls + 1
    meta = [
        ("last_observed_at", repr(now)),
        ("polls", str(polls)),
        ("pending_missing", user_db.encode_missing(result.pending_missing)),
    ]
    if data.poll_interval != float(snap.poll_interval):
        meta.append(("poll_interval", repr(float(snap.poll_interval))))
    if plan_out.deferred != data.deferred:
        meta.append(("deferred_events", user_db.encode_deferred(plan_out.deferred)))
    dates = _dates_after(data.dates, result)
    if dates != data.dates:
        meta.append((user_db.DATES_KEY, user_db.encode_dates(dates)))
    statements.append((user_db.UPSERT_META, meta))
    if polls % PRUNE_EVERY_POLLS == 0:
        statements.extend(_prune_statements(now, config))
        states = {
            k: s
            for k, s in states.items()
            if s.present or (s.removed_at or now) > now - config.removed_retention_seconds
        }

    summary = None
    if manual is not None:
        summary = _run_summary(manual, data, reports.get(manual), plan_out.intents)
        if manual in bad_tags:
            summary = replace(summary, reason=INVALID_TAGS)
    present_count = sum(1 for s in states.values() if s.present)
    plan_result = PlanOut(
        poll_id=snap.poll_id,
        auth_id=snap.auth_id,
        applied=True,
        actions=actions_out,
        next_poll_in=plan_out.next_poll_in,
        has_enabled_rules=any(r.rule.enabled for r in rules),
        run_summary=summary,
        kinds=_kinds_of(rules),
    )
    return _Applied(
        statements=statements,
        events=events,
        plan=plan_result,
        present_count=present_count,
        changed_count=len(result.changed),
        tags_changed=bool(tag_adds or tag_removes),
        after_gap=after_gap,
        new_data={
            "states": states,
            "last_observed_at": now,
            "polls": polls,
            "pending_missing": result.pending_missing,
            "poll_interval": float(snap.poll_interval),
            "dates": dates,
            "protected": protected,
            "deferred": plan_out.deferred,
            "rules": rules,
            "holds": new_holds,
            "last_actions": last_actions,
            "pending": pending,
        },
    )


def _without_unexecuted(
    data: UserData, reconciled: Sequence[Reconciled]
) -> dict[tuple[int, int], float]:
    """The cooldown records, less those of intents the snapshot shows TorBox never ran.

    Such an intent was created only once the cooldown had passed, so dropping its record lets
    the rule act again now instead of waiting out a cooldown for an action that never happened.
    """
    unexecuted = {r.action_id for r in reconciled if r.status == NOT_EXECUTED}
    if not unexecuted:
        return data.last_actions  # the usual poll: nothing to drop, nothing to copy
    last_actions = dict(data.last_actions)
    for p in data.pending:
        if p.id in unexecuted and last_actions.get((p.rule_id, p.key)) == p.created_at:
            del last_actions[(p.rule_id, p.key)]
    return last_actions


def _protection_followed(
    data: UserData,
    states: dict[int, TorrentState],
    now: float,
    statements: list[tuple[str, Any]],
) -> frozenset[int]:
    """Protect, by their own ids, the listed items that protection covers through a hash.

    A protected queued item that TorBox starts becomes a torrent with a new id: it is covered by
    the shared hash only while the queued item is remembered (removed items are kept 7 days).
    Recording the new id keeps it protected for good, and TBM then shows it protected.
    """
    if not data.protected:
        return data.protected
    covered = {
        states[key].snap.id
        for key in protected_keys(states, data.protected)
        if states[key].present and states[key].missing_since is None
    }
    new = covered - data.protected
    if not new:
        return data.protected
    statements.append(
        (
            "INSERT OR IGNORE INTO protected_downloads(torrent_id, protected_at) VALUES (?,?)",
            [(i, now) for i in sorted(new)],
        )
    )
    return data.protected | new


def _current_deferred(data: UserData) -> dict[int, dict[int, float]]:
    """Deferred events of rules that still exist and were not edited since the event.

    An edited rule may test something else entirely: an event kept for its old form must not
    make the new one act on a torrent the new trigger never saw.
    """
    updated = {r.id: r.updated_at for r in data.rules}
    current: dict[int, dict[int, float]] = {}
    for rule_id, keys in data.deferred.items():
        since = updated.get(rule_id)
        if since is None:
            continue
        kept = {key: at for key, at in keys.items() if at >= since}
        if kept:
            current[rule_id] = kept
    return current


def _invalid_tag_rules(intents: Sequence[Intent], tags: TagData | None) -> set[int]:
    """Rules whose tag action names a tag that does not exist: TBM fails the whole batch."""
    return {
        i.rule_id
        for i in intents
        if i.action in TAG_ACTIONS
        and i.status == "pending"
        and (tags is None or not tags.existing.issuperset(i.tag_ids))
    }


def _local_action_event(
    action_id: int, intent: Intent, name: str, now: float, error: str | None
) -> Event:
    """The AUTOMATION_ACTION event of an action carried out here (its outcome is known now)."""
    return Event(
        "AUTOMATION_ACTION",
        intent.key,
        now,
        {
            "action_id": action_id,
            "rule_id": intent.rule_id,
            "rule_name": intent.rule_name,
            "action": intent.action,
            "name": name,
            "success": error is None,
            "error_code": None if error is None else "INVALID_TAG_IDS",
            "message": error,
            "tag_ids": list(intent.tag_ids),
        },
    )


def _rebuilt_magnet(info_hash: str, name: str) -> str:
    from urllib.parse import quote

    return f"magnet:?xt=urn:btih:{info_hash}&dn={quote(name)}"


def _skip_summary(report: RuleReport) -> str | None:
    if not report.skipped:
        return None
    parts = [f"{count} {reason}" for reason, count in sorted(report.skipped.items())]
    return "skipped: " + "; ".join(parts)


def _holds_diff(
    old: dict[int, dict[int, dict[str, float]]], new: dict[int, dict[int, dict[str, float]]]
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str, float]]]:
    drop: list[tuple[int, int, str]] = []
    add: list[tuple[int, int, str, float]] = []
    for rule_id, by_key in old.items():
        new_rule = new.get(rule_id, {})
        for key, paths in by_key.items():
            new_paths = new_rule.get(key, {})
            drop.extend((rule_id, key, path) for path in paths if path not in new_paths)
    for rule_id, by_key in new.items():
        old_rule = old.get(rule_id, {})
        for key, paths in by_key.items():
            old_paths = old_rule.get(key, {})
            add.extend(
                (rule_id, key, path, since)
                for path, since in paths.items()
                if old_paths.get(path) != since
            )
    return drop, add


def _dates_after(
    dates: dict[int, tuple[float | None, float | None]], result: PollResult
) -> dict[int, tuple[float | None, float | None]]:
    """The dates laid over the rows after this poll (see user_db.DATES_KEY).

    A row written now holds its torrent's latest dates; a torrent whose dates alone moved keeps
    its row and has them here.
    """
    if not result.dated and not dates:
        return dates
    after = dict(dates)
    for state in result.changed:
        after.pop(state.key, None)
    for state in result.dated:
        after[state.key] = (state.snap.updated_at, state.snap.expires_at)
    return after


def _prune_statements(now: float, config: IngestConfig) -> list[tuple[str, Any]]:
    return [
        ("DELETE FROM events WHERE observed_at < ?", (now - config.max_event_age_seconds,)),
        (
            "DELETE FROM events WHERE id <= "
            "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (config.max_events,),
        ),
        (
            "DELETE FROM actions WHERE status != 'pending' AND id <= "
            "(SELECT id FROM actions ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (config.max_actions,),
        ),
        (
            "DELETE FROM torrents WHERE present = 0 AND removed_at < ?",
            (now - config.removed_retention_seconds,),
        ),
    ]


def _run_summary(
    rule_id: int, data: UserData, report: RuleReport | None, intents: list[Intent]
) -> RunSummaryOut:
    stored = next((r for r in data.rules if r.id == rule_id), None)
    if stored is None or report is None:
        return RunSummaryOut(
            rule_id, stored.rule.name if stored else "", 0, 0, 0, False, True, "rule not found", ""
        )
    held = [i for i in intents if i.rule_id == rule_id and i.status == "held"]
    reason = ""
    if held:
        reason = "destructive actions held by the safety cap"
    elif report.matched == 0:
        reason = "no torrent matched"
    elif report.processed == 0:
        reason = _skip_summary(report) or "nothing to do"
    return RunSummaryOut(
        rule_id=rule_id,
        rule_name=report.rule_name,
        total=report.total,
        matched=report.matched,
        processed=report.processed,
        dry_run=report.dry_run,
        skipped=report.processed == 0,
        reason=reason,
        action=report.action,
    )
