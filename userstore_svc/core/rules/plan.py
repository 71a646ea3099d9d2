"""From rule matches to actions, under every safety rule; pure, with `now` passed in.

For one poll of one user:
1. Each enabled rule whose trigger fires is evaluated (interval due, or one of its events happened
   to the torrent; a manual run evaluates one rule on every torrent).
2. A match becomes a candidate only if the action would do something (stop_seeding only on a
   seeding torrent, ...), the torrent is not protected against it, its own seeding limit does not
   override it, no earlier action on it awaits an outcome, and the rule's cooldown has passed.
3. ``max_actions_per_run`` caps each rule; then each torrent gets at most one action: a destructive
   one wins over the rest, and rule order breaks ties.
4. Destructive actions are held when the snapshot is unconfirmed, or when there are more than the
   cap (a count, or a share of the user's torrents): none are sent and an AUTOMATION_HELD event
   says why. Dry run (global or per rule) records everything and sends nothing.

Tag actions (add_tag, remove_tag) change only the user's own data: they skip items that already
have every target tag (add) or none of them (remove), and are exempt from protection, the caps
and the one-action-per-torrent choice, since they neither destroy anything nor reach TorBox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from userstore_svc.core import telemetry
from userstore_svc.core.models import TORRENT, Event, TorrentState, split_key
from userstore_svc.core.rules.evaluate import (
    CompiledRule,
    Growing,
    explain,
    traces_json,
)
from userstore_svc.core.rules.model import (
    DESTRUCTIVE_ACTIONS,
    PROTECTED_ACTIONS,
    SEED_ENDING_ACTIONS,
    TAG_ACTIONS,
)
from userstore_svc.core.status import DOWNLOADING, SEEDING

LIMIT_RULE_ID = 0
LIMIT_RULE_NAME = "Torrent seeding limit"
DEFAULT_COOLDOWN_MINUTES = 30.0
# An event whose action had to wait (held, cooldown, an earlier action pending) is kept this long
# for its rule to evaluate again; then it is dropped.
DEFERRED_EVENT_SECONDS = 24 * 3600.0
# Why a matched torrent's action may still come later: its event is kept for the rule.
_WAIT_REASONS = frozenset(
    {
        "cooldown",
        "an earlier action awaits its outcome",
        "max_actions_per_run",
        "not in the latest snapshot",
    }
)

# Start of each running hold: rule id -> torrent key -> condition path -> since.
Holds = dict[int, dict[int, dict[str, float]]]
# Events an event-triggered rule could not act on yet: rule id -> torrent key -> event time.
Deferred = dict[int, dict[int, float]]
_NO_HOLDS: Mapping[str, float] = MappingProxyType({})
_NO_TAGS: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class TorrentLimit:
    """A torrent's own seeding limits; they override rules that would end its seeding early."""

    seed_ratio: float | None
    seed_time_hours: float | None

    def reached(self, state: TorrentState, now: float) -> bool:
        """True once either limit is met (seeding may stop)."""
        ratio = state.snap.ratio
        if self.seed_ratio is not None and ratio is not None and ratio >= self.seed_ratio:
            return True
        return (
            self.seed_time_hours is not None
            and telemetry.seeding_time(state, now) >= self.seed_time_hours * 3600.0
        )


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """An enabled rule with the bookkeeping the trigger needs."""

    compiled: CompiledRule
    rule_id: int
    last_evaluated_at: float | None
    # A rule just saved or enabled waits one trigger interval before its first scheduled
    # evaluation, as TBM's backend does: a preset saved to try it must not act within seconds.
    not_before: float | None = None


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """The caps that keep a wrong rule from emptying an account."""

    global_dry_run: bool = False
    max_destructive_per_poll: int = 10
    max_destructive_share: float = 0.25
    # The share cap applies from this many destructive actions on (1 of 3 is not a rampage).
    share_cap_min_count: int = 3


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything the planner reads for one poll."""

    now: float
    states: Mapping[int, TorrentState]
    events: Sequence[Event]
    rules: Sequence[RuleEntry]
    holds: Mapping[int, Mapping[int, Mapping[str, float]]]
    # The ids TBM protected (torrent ids and queued ids alike; see protected_keys).
    protected: frozenset[int]
    limits: Mapping[int, TorrentLimit]
    # When each (rule id, torrent key) last produced an action record (for cooldowns).
    last_actions: Mapping[tuple[int, int], float]
    # Torrents with an action whose outcome is not known yet.
    pending: frozenset[int]
    safety: SafetyConfig
    # Set when the snapshot is unconfirmed: destructive actions must wait ...
    hold_reason: str | None = None
    # ... on items of these types (None: every type).
    held_kinds: frozenset[str] | None = None
    # The types listed whole this poll: a rule acts only on items of its types listed now.
    listed_kinds: frozenset[str] = frozenset({TORRENT})
    # A manual run of one rule: evaluated on every torrent whatever its trigger.
    run_rule_id: int | None = None
    # After an outage every hold restarts (the condition was not observed in between).
    reset_holds: bool = False
    # Events earlier polls could not act on (see DEFERRED_EVENT_SECONDS).
    deferred: Mapping[int, Mapping[int, float]] = field(default_factory=dict)
    # Each item's TBM tag ids by TorBox id (an item without a row has none); None when they were
    # not loaded, which makes TAGS conditions unknown and tag actions wait.
    tags: Mapping[int, frozenset[int]] | None = None
    # Called between items (a heavy poll's thread gives the event loop its turn); no effect on
    # the plan.
    checkpoint: Callable[[], None] | None = None

    def tags_of(self, state: TorrentState) -> frozenset[int] | None:
        """One item's tag ids, or None when unknown."""
        if self.tags is None:
            return None
        return self.tags.get(state.snap.id, _NO_TAGS)


@dataclass(frozen=True, slots=True)
class Intent:
    """One action to log and (unless dry run or held) send."""

    rule_id: int
    rule_name: str
    key: int
    action: str
    dry_run: bool
    status: str  # "pending", "dry_run" or "held"
    reason_json: str
    execution_type: str
    # The tag ids of a tag action.
    tag_ids: tuple[int, ...] = ()


@dataclass(slots=True)
class RuleReport:
    """What one evaluated rule did this poll (for the execution log and a manual run's answer)."""

    rule_id: int
    rule_name: str
    execution_type: str
    action: str
    dry_run: bool
    total: int = 0
    matched: int = 0
    processed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlanOutput:
    """Intents in order, the holds to keep, reports per evaluated rule, events, and a poll hint."""

    intents: list[Intent]
    holds: Holds
    reports: list[RuleReport]
    events: list[Event]
    evaluated_rule_ids: list[int]
    next_poll_in: float | None
    deferred: Deferred = field(default_factory=dict)


def skip_reason(
    action: str,
    state: TorrentState,
    item_tags: frozenset[int] | None = None,
    tag_ids: tuple[int, ...] = (),
) -> str | None:
    """Why `action` would do nothing to this torrent now, or None when it would act.

    `item_tags` (None: unknown) and `tag_ids` (the action's targets) matter to tag actions only.
    """
    status = state.status
    if not state.present or state.missing_since is not None:
        return "not in the latest snapshot"
    if action in TAG_ACTIONS:
        return _tag_skip(action, item_tags, tag_ids)
    if action in ("add_airlock", "remove_airlock"):
        # Unknown (TorBox did not say, a queued item) is not "off": nothing is sent blind.
        airlocked = state.snap.airlocked
        if airlocked is None:
            return "airlock state unknown"
        if action == "add_airlock":
            return "already airlocked" if airlocked else None
        return None if airlocked else "not airlocked"
    if action == "stop_seeding":
        return None if status in SEEDING else "not seeding"
    if action in ("pause", "reannounce"):
        return None if status in DOWNLOADING or status in SEEDING else "not active"
    if action == "resume":
        return None if status == "paused" else "not paused"
    if action == "force_start":
        # Only an item of TorBox's queue can be started (controlqueued takes the queued id); a
        # listed torrent in a qBittorrent "queuedDL" state is TorBox's to schedule.
        return None if state.snap.queued else "not queued"
    return None


def _tag_skip(
    action: str, item_tags: frozenset[int] | None, tag_ids: tuple[int, ...]
) -> str | None:
    """TBM's pre-filter: add_tag skips items with every target tag, remove_tag those with none."""
    if item_tags is None:
        return "tags unknown"
    if action == "add_tag":
        return "already tagged" if item_tags.issuperset(tag_ids) else None
    return None if item_tags.intersection(tag_ids) else "not tagged"


def protected_keys(
    states: Mapping[int, TorrentState], protected_ids: frozenset[int]
) -> frozenset[int]:
    """The torrents protection covers: the ids TBM protected, and every item with their hashes.

    TBM protects the id it shows: a torrent's id, or a queued item's queued id. The two id spaces
    are separate, so an id covers the torrent *and* the queued item that carry it (protecting
    too much is safe; too little loses a download). Protection follows the hash: the torrent a
    protected queued item becomes, or a protected torrent re-added under a new id, stays
    protected while we remember the old item.
    """
    if not protected_ids:
        return frozenset()
    hashes = {s.snap.hash for s in states.values() if s.snap.id in protected_ids and s.snap.hash}
    return frozenset(
        key
        for key, s in states.items()
        if s.snap.id in protected_ids or (s.snap.hash and s.snap.hash in hashes)
    )


def _cooldown_passed(rule_cooldown: float | None, last: float | None, now: float) -> bool:
    minutes = DEFAULT_COOLDOWN_MINUTES if rule_cooldown is None else rule_cooldown
    return last is None or now - last >= minutes * 60.0 - 1e-6


def plan(inp: PlanInput) -> PlanOutput:
    """Choose this poll's actions (see the module docstring for the order of checks)."""
    now = inp.now
    present = {k: s for k, s in inp.states.items() if s.present}
    shielded = protected_keys(inp.states, inp.protected)
    # Torrents some destructive rule wants to act on this poll, before any per-rule limit: the
    # blast-radius cap judges what the rules matched, not what a limit let through.
    wanted: set[int] = set()
    by_event: dict[str, set[int]] = {}
    for event in inp.events:
        by_event.setdefault(event.type, set()).add(event.torrent_key)

    kinds_present = {s.snap.kind for s in present.values()}
    new_holds: Holds = {}
    deferred: Deferred = {}
    reports: list[RuleReport] = []
    evaluated: list[int] = []
    candidates: list[list[Intent]] = []
    hint: float | None = None

    for entry in inp.rules:
        compiled, rule = entry.compiled, entry.compiled.rule
        manual = inp.run_rule_id == entry.rule_id
        if inp.run_rule_id is not None and not manual:
            # A manual run of another rule: this one's bookkeeping stands as it was.
            if entry.rule_id in inp.deferred:
                deferred[entry.rule_id] = dict(inp.deferred[entry.rule_id])
            if entry.rule_id in inp.holds:
                new_holds[entry.rule_id] = {k: dict(v) for k, v in inp.holds[entry.rule_id].items()}
            continue
        eligible = inp.listed_kinds.intersection(rule.asset_types)
        rule_present = (
            present
            if eligible.issuperset(kinds_present)
            else {k: s for k, s in present.items() if s.snap.kind in eligible}
        )
        targets, execution_type = _targets(entry, rule_present, by_event, now, manual)
        waiting = _still_deferred(entry, inp, rule_present, now)
        if waiting and rule.trigger.kind == "event":
            targets |= set(waiting)
        # Holds are kept on every poll, whether or not the trigger fires now. (Targets are among
        # the present torrents: as many means all of them.)
        scope = (
            rule_present
            if compiled.tracks_holds or len(targets) == len(rule_present)
            else {k: rule_present[k] for k in targets}
        )
        if not scope and not targets:
            if waiting:
                deferred[entry.rule_id] = dict(waiting)  # nothing listed to act on yet
            hint = _min(hint, _interval_wait(entry, now))
            continue
        report = RuleReport(
            rule_id=entry.rule_id,
            rule_name=rule.name,
            execution_type=execution_type,
            action=rule.action,
            dry_run=inp.safety.global_dry_run or rule.dry_run,
            total=len(targets),
        )
        rule_holds = {} if inp.reset_holds else inp.holds.get(entry.rule_id, {})
        matched, kept, hint = _evaluate(entry, scope, targets, rule_holds, inp, hint)
        if kept:
            new_holds[entry.rule_id] = kept
        if targets or manual:
            evaluated.append(entry.rule_id)
            hint = _min(hint, _interval_wait(entry, now, evaluated_now=True))
        else:
            hint = _min(hint, _interval_wait(entry, now))
            continue
        report.matched = len(matched)
        chosen = _choose(entry, report, matched, waiting, inp, shielded, wanted, deferred)
        candidates.append(chosen)
        reports.append(report)

    if inp.run_rule_id is None:
        candidates.append(_limit_intents(present, inp, shielded))

    # Tag actions touch only the user's own data: each one stands, beside any TorBox action.
    local = [i for chosen in candidates for i in chosen if i.action in TAG_ACTIONS]
    remote = [[i for i in chosen if i.action not in TAG_ACTIONS] for chosen in candidates]
    intents = _one_per_torrent(remote) + local
    events: list[Event] = []
    intents = _apply_caps(intents, len(present), inp, events, len(wanted))
    for intent in intents:
        if intent.status == "held" and intent.execution_type == "event":
            # Held by a cap or an unconfirmed list: the event waits for a poll that may act.
            waited = inp.deferred.get(intent.rule_id, {}).get(intent.key, now)
            deferred.setdefault(intent.rule_id, {})[intent.key] = waited
    by_rule = {r.rule_id: r for r in reports}
    for intent in intents:
        counted = by_rule.get(intent.rule_id)
        if counted is not None and intent.status != "held":
            counted.processed += 1
    return PlanOutput(
        intents=intents,
        holds=new_holds,
        reports=reports,
        events=events,
        evaluated_rule_ids=evaluated,
        next_poll_in=hint,
        deferred=deferred,
    )


Matched = list[tuple[int, TorrentState, Mapping[str, float]]]


def _evaluate(
    entry: RuleEntry,
    scope: Mapping[int, TorrentState],
    targets: set[int],
    rule_holds: Mapping[int, Mapping[str, float]],
    inp: PlanInput,
    hint: float | None,
) -> tuple[Matched, dict[int, dict[str, float]], float | None]:
    """Test one rule on its scope: the matched targets, the holds to keep, and the poll hint."""
    compiled = entry.compiled
    if compiled.sole is not None:
        return _evaluate_sole(compiled.sole, scope, targets, rule_holds, inp, hint)
    now, test, tags, checkpoint = inp.now, compiled.test, inp.tags, inp.checkpoint
    growing, tracks = compiled.growing, compiled.tracks_holds
    # Targets are among the scope's torrents: as many means every one is a target.
    every = len(targets) == len(scope)
    matched: Matched = []
    kept: dict[int, dict[str, float]] = {}
    # A rule without held conditions writes no hold: one scratch map serves all its items.
    scratch: dict[str, float] = {}
    for key, state in scope.items():
        if checkpoint is not None:
            checkpoint()
        if state.missing_since is not None:
            # Not in the latest list: not observed, so no hold runs on (it starts again).
            continue
        holds = rule_holds.get(key, _NO_HOLDS) if rule_holds else _NO_HOLDS
        item_tags = None if tags is None else tags.get(state.snap.id, _NO_TAGS)
        out: dict[str, float] = {} if tracks else scratch
        result = test(state, now, holds, out, item_tags)
        if tracks and out:
            kept[key] = out
        if not every and key not in targets:
            continue
        if result is True:
            matched.append((key, state, holds))
        elif growing or (tracks and out):
            hint = _min(hint, _crossing(growing, state, now, out, compiled))
    return matched, kept, hint


def _evaluate_sole(
    sole: Growing,
    scope: Mapping[int, TorrentState],
    targets: set[int],
    rule_holds: Mapping[int, Mapping[str, float]],
    inp: PlanInput,
    hint: float | None,
) -> tuple[Matched, dict[int, dict[str, float]], float | None]:
    """`_evaluate` for a rule that is one growing condition (see CompiledRule.sole).

    One reading per item gives both the result and the value the hint needs; such a rule holds
    nothing and reads no tags (its field is a number).
    """
    now, test, checkpoint = inp.now, sole.test, inp.checkpoint
    threshold, seconds_per_unit = sole.threshold, sole.seconds_per_unit
    every = len(targets) == len(scope)
    matched: Matched = []
    for key, state in scope.items():
        if checkpoint is not None:
            checkpoint()
        if state.missing_since is not None or not (every or key in targets):
            continue
        value, result = test(state, now, None)
        if result is True:
            matched.append((key, state, rule_holds.get(key, _NO_HOLDS)))
        elif isinstance(value, float) and value <= threshold:
            crossing = max(0.0, (threshold - value) * seconds_per_unit)
            if hint is None or crossing < hint:
                hint = crossing
    return matched, {}, hint


def _choose(
    entry: RuleEntry,
    report: RuleReport,
    matched: Matched,
    waiting: Mapping[int, float],
    inp: PlanInput,
    shielded: frozenset[int],
    wanted: set[int],
    deferred: Deferred,
) -> list[Intent]:
    """The intents of one rule's matches, in key order, after every check of `_checks`."""
    rule, now = entry.compiled.rule, inp.now
    execution_type = report.execution_type
    destructive = rule.action in DESTRUCTIVE_ACTIONS and not report.dry_run
    cap = rule.max_actions_per_run
    why_not = _checks(entry, inp, shielded)
    raw = entry.compiled.raw
    chosen: list[Intent] = []
    for key, state, holds in sorted(matched, key=_first):
        reason = why_not(state, key)
        if reason is None and destructive:
            wanted.add(key)
        if reason is None and cap is not None and len(chosen) >= cap:
            reason = "max_actions_per_run"
        if reason is not None:
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
            if execution_type == "event" and reason in _WAIT_REASONS:
                deferred.setdefault(entry.rule_id, {})[key] = waiting.get(key, now)
            continue
        chosen.append(
            Intent(
                rule_id=entry.rule_id,
                rule_name=rule.name,
                key=key,
                action=rule.action,
                dry_run=report.dry_run,
                status="dry_run" if report.dry_run else "pending",
                reason_json=traces_json(explain(rule, state, now, holds, inp.tags_of(state), raw)),
                execution_type=execution_type,
                tag_ids=rule.tag_ids,
            )
        )
    return chosen


def _first(item: tuple[int, TorrentState, Mapping[str, float]]) -> int:
    return item[0]


def _still_deferred(
    entry: RuleEntry, inp: PlanInput, present: Mapping[int, TorrentState], now: float
) -> dict[int, float]:
    """This rule's deferred events that have not expired and whose torrent is still listed."""
    waiting = inp.deferred.get(entry.rule_id)
    if not waiting or entry.compiled.rule.trigger.kind != "event":
        return {}
    return {
        key: at
        for key, at in waiting.items()
        if key in present and now - at <= DEFERRED_EVENT_SECONDS
    }


def _targets(
    entry: RuleEntry,
    present: Mapping[int, TorrentState],
    by_event: Mapping[str, set[int]],
    now: float,
    manual: bool,
) -> tuple[set[int], str]:
    """The torrents this rule is evaluated on now, and how the evaluation was triggered."""
    rule = entry.compiled.rule
    if manual:
        return set(present), "manual"
    if rule.trigger.kind == "event":
        keys: set[int] = set()
        for name in rule.trigger.events:
            keys |= by_event.get(name, set())
        return {k for k in keys if k in present}, "event"
    last = entry.last_evaluated_at
    due = last is None or now - last >= rule.trigger.interval_minutes * 60.0 - 1e-6
    if entry.not_before is not None and now < entry.not_before - 1e-6:
        due = False
    return (set(present) if due else set()), "scheduled"


def _interval_wait(entry: RuleEntry, now: float, *, evaluated_now: bool = False) -> float | None:
    """Seconds until an interval rule is due again."""
    rule = entry.compiled.rule
    if rule.trigger.kind != "interval" or rule.trigger.interval_minutes <= 0:
        return None
    last = now if evaluated_now else entry.last_evaluated_at
    wait = 0.0 if last is None else max(0.0, last + rule.trigger.interval_minutes * 60.0 - now)
    if entry.not_before is not None:
        wait = max(wait, entry.not_before - now)
    return wait


def _checks(
    entry: RuleEntry, inp: PlanInput, shielded: frozenset[int]
) -> Callable[[TorrentState, int], str | None]:
    """Why a matched torrent gets no action from this rule (None: it gets one).

    The checks run in this order, the first that fails naming the reason; what depends only on
    the rule is settled once, not per torrent.
    """
    rule, now = entry.compiled.rule, inp.now
    action, tag_ids, rule_id = rule.action, rule.tag_ids, entry.rule_id
    tags = inp.tags if action in TAG_ACTIONS else None  # only tag actions read them
    guarded = shielded if action in PROTECTED_ACTIONS else frozenset()
    limits = inp.limits if action in SEED_ENDING_ACTIONS else {}
    pending, last_actions = inp.pending, inp.last_actions
    minutes = DEFAULT_COOLDOWN_MINUTES if rule.cooldown_minutes is None else rule.cooldown_minutes
    cooldown = minutes * 60.0 - 1e-6

    def why_not(state: TorrentState, key: int) -> str | None:
        item_tags = None if tags is None else tags.get(state.snap.id, _NO_TAGS)
        reason = skip_reason(action, state, item_tags, tag_ids)
        if reason is not None:
            return reason
        if key in guarded:
            return "protected"
        limit = limits.get(key) if limits else None
        if limit is not None and not limit.reached(state, now):
            return "torrent seeding limit not reached"
        if key in pending:
            return "an earlier action awaits its outcome"
        last = last_actions.get((rule_id, key))
        if last is not None and not now - last >= cooldown:
            return "cooldown"
        return None

    return why_not


def _limit_intents(
    present: Mapping[int, TorrentState], inp: PlanInput, shielded: frozenset[int]
) -> list[Intent]:
    """Stop seeding torrents whose own limit is reached (the limit is a rule of its own)."""
    intents = []
    for key in sorted(inp.limits):
        state = present.get(key)
        if state is None or not inp.limits[key].reached(state, inp.now):
            continue
        if skip_reason("stop_seeding", state) is not None or key in shielded:
            continue
        if key in inp.pending or not _cooldown_passed(
            None, inp.last_actions.get((LIMIT_RULE_ID, key)), inp.now
        ):
            continue
        limit = inp.limits[key]
        dry = inp.safety.global_dry_run
        intents.append(
            Intent(
                rule_id=LIMIT_RULE_ID,
                rule_name=LIMIT_RULE_NAME,
                key=key,
                action="stop_seeding",
                dry_run=dry,
                status="dry_run" if dry else "pending",
                reason_json=(
                    f'[{{"type":"TORRENT_LIMIT","seed_ratio":{_json_num(limit.seed_ratio)},'
                    f'"seed_time_hours":{_json_num(limit.seed_time_hours)},'
                    f'"ratio":{_json_num(state.snap.ratio)},'
                    f'"seeding_hours":{telemetry.seeding_time(state, inp.now) / 3600.0:.4f}}}]'
                ),
                execution_type="limit",
            )
        )
    return intents


def _json_num(value: float | None) -> str:
    return "null" if value is None else repr(float(value))


def _one_per_torrent(candidates: list[list[Intent]]) -> list[Intent]:
    """At most one action per torrent: the first destructive one, else the first by rule order."""
    best: dict[int, Intent] = {}
    order: list[int] = []
    for rule_intents in candidates:
        for intent in rule_intents:
            current = best.get(intent.key)
            if current is None:
                best[intent.key] = intent
                order.append(intent.key)
            elif intent.action in DESTRUCTIVE_ACTIONS and current.action not in DESTRUCTIVE_ACTIONS:
                best[intent.key] = intent
    return [best[key] for key in order]


def _apply_caps(
    intents: list[Intent], present: int, inp: PlanInput, events: list[Event], wanted: int
) -> list[Intent]:
    """Hold every destructive action when the snapshot is unconfirmed or the cap is exceeded.

    `wanted` counts the torrents destructive rules matched and would act on, before any rule's
    ``max_actions_per_run``: a runaway rule with a limit of 2 that matches the whole account
    must be held, not allowed to empty it two torrents a poll.
    """
    live = [i for i in intents if i.action in DESTRUCTIVE_ACTIONS and i.status == "pending"]
    if not live:
        return intents
    if inp.hold_reason is not None:
        if inp.held_kinds is None:
            return _hold(intents, live, inp.hold_reason, inp.now, events)
        # One type's list is unconfirmed: that type's items wait; the others face the caps.
        held = [i for i in live if split_key(i.key)[0] in inp.held_kinds]
        if held:
            intents = _hold(intents, held, inp.hold_reason, inp.now, events)
            live = [i for i in live if split_key(i.key)[0] not in inp.held_kinds]
            if not live:
                return intents
    safety = inp.safety
    count = max(len(live), wanted)
    reason = None
    if count > safety.max_destructive_per_poll:
        reason = (
            f"{count} torrents matched destructive rules in one poll, over the cap of "
            f"{safety.max_destructive_per_poll}"
        )
    elif count >= safety.share_cap_min_count and count > present * safety.max_destructive_share:
        reason = (
            f"{count} torrents matched destructive rules, more than "
            f"{safety.max_destructive_share:.0%} of the user's {present} torrents"
        )
    if reason is None:
        return intents
    return _hold(intents, live, reason, inp.now, events)


def _held_entry(intent: Intent) -> dict[str, object]:
    """One held action as AUTOMATION_HELD lists it (the item's type unless a torrent)."""
    kind, item_id, _queued = split_key(intent.key)
    entry: dict[str, object] = {
        "torrent_id": item_id,
        "rule_id": intent.rule_id,
        "rule_name": intent.rule_name,
        "action": intent.action,
    }
    if kind != TORRENT:
        entry["asset_type"] = kind
    return entry


def _hold(
    intents: list[Intent], live: list[Intent], reason: str, now: float, events: list[Event]
) -> list[Intent]:
    """Mark the `live` destructive intents held, with one AUTOMATION_HELD event saying why."""
    events.append(
        Event(
            "AUTOMATION_HELD",
            0,
            now,
            {
                "reason": reason,
                "held": [_held_entry(i) for i in live],
            },
        )
    )
    held_keys = {i.key for i in live}
    return [
        Intent(
            rule_id=i.rule_id,
            rule_name=i.rule_name,
            key=i.key,
            action=i.action,
            dry_run=i.dry_run,
            status="held",
            reason_json=i.reason_json,
            execution_type=i.execution_type,
        )
        if i.key in held_keys and i.status == "pending" and i.action in DESTRUCTIVE_ACTIONS
        else i
        for i in intents
    ]


def _crossing(
    growing: tuple[Growing, ...],
    state: TorrentState,
    now: float,
    holds: Mapping[str, float],
    compiled: CompiledRule,
) -> float | None:
    """The soonest a growing condition or a hold of this torrent completes (seconds from now)."""
    soonest: float | None = None
    for g in growing:
        value, result = g.test(state, now, None)
        # A lower bound grows just as the value does: it too crosses at the estimated time.
        if result is not True and isinstance(value, float) and value <= g.threshold:
            soonest = _min(soonest, max(0.0, (g.threshold - value) * g.seconds_per_unit))
    if holds:
        for path, minutes in compiled.held:
            since = holds.get(path)
            if since is not None:
                remaining = since + minutes * 60.0 - now
                if remaining > 0:
                    soonest = _min(soonest, remaining)
    return soonest


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
