"""The pure pipeline: diff, derive, aggregate, events and rule evaluation, with no I/O at all.

Each run makes fresh users, applies their first poll (untimed: it only records a baseline), then
times ``polls`` successive polls of every user: ``run_poll`` (diff, derive, aggregate, events)
and ``plan`` (rules and safety) with everything a poll carries to the next one (states, holds,
cooldowns, rule bookkeeping), exactly as the ingestor does between its read and its write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.workload import POLL_INTERVAL, Account, rule_docs
from userstore_svc.core.models import PipelineConfig, TorrentState
from userstore_svc.core.pipeline import PollInput, run_poll
from userstore_svc.core.rules.evaluate import CompiledRule, compile_rule
from userstore_svc.core.rules.plan import Holds, PlanInput, RuleEntry, SafetyConfig, plan
from userstore_svc.core.rules.schema import parse_rule


def compiled_rules() -> list[tuple[int, CompiledRule]]:
    """The benchmark rules, validated and compiled as the userstore stores them (ids 1..n)."""
    return [
        (index, compile_rule(parse_rule({**doc, "id": index})))
        for index, doc in enumerate(rule_docs(), start=1)
    ]


@dataclass(slots=True)
class _User:
    """What one user carries from poll to poll."""

    account: Account
    states: dict[int, TorrentState] = field(default_factory=dict)
    pending_missing: dict[int, tuple[int, bool]] = field(default_factory=dict)
    holds: Holds = field(default_factory=dict)
    last_actions: dict[tuple[int, int], float] = field(default_factory=dict)
    last_evaluated: dict[int, float | None] = field(default_factory=dict)
    polls: int = 0


@dataclass(slots=True)
class _Timing:
    poll_seconds: float = 0.0
    plan_seconds: float = 0.0
    torrents: int = 0
    polls: int = 0
    events: int = 0
    changed: int = 0
    intents: int = 0


def _poll(
    user: _User,
    rules: list[tuple[int, CompiledRule]],
    cfg: PipelineConfig,
    safety: SafetyConfig,
    timing: _Timing | None,
) -> None:
    account = user.account
    now = account.now
    started = time.perf_counter()
    result = run_poll(
        user.states,
        PollInput(
            observed_at=now,
            complete=True,
            torrents=account.snapshots,
            max_gap=2.0 * POLL_INTERVAL,
            baseline=user.polls == 0,
            pending_missing=user.pending_missing,
        ),
        cfg,
    )
    polled = time.perf_counter()
    out = plan(
        PlanInput(
            now=now,
            states=result.states,
            events=result.events,
            rules=[RuleEntry(c, rid, user.last_evaluated.get(rid)) for rid, c in rules],
            holds=user.holds,
            protected=frozenset(),
            limits={},
            last_actions=user.last_actions,
            pending=frozenset(),
            safety=safety,
            hold_reason=result.hold_reason,
        )
    )
    planned = time.perf_counter()
    # Carry what the ingestor would persist (not timed: that is the store's part).
    user.states = result.states
    user.pending_missing = result.pending_missing
    user.holds = out.holds
    for rule_id in out.evaluated_rule_ids:
        user.last_evaluated[rule_id] = now
    for intent in out.intents:
        if intent.status != "held":
            user.last_actions[(intent.rule_id, intent.key)] = now
    user.polls += 1
    if timing is not None:
        timing.poll_seconds += polled - started
        timing.plan_seconds += planned - polled
        timing.torrents += len(account.snapshots)
        timing.polls += 1
        timing.events += len(result.events) + len(out.events)
        timing.changed += len(result.changed)
        timing.intents += len(out.intents)


def run_once(users: int, torrents: int, polls: int, seed: int) -> dict[str, Any]:
    """One run: `users` fresh users of `torrents` each, `polls` timed polls of each."""
    rules = compiled_rules()
    cfg, safety = PipelineConfig(), SafetyConfig()
    people = [_User(Account(seed * 100_003 + i, torrents)) for i in range(users)]
    for user in people:
        _poll(user, rules, cfg, safety, None)
    timing = _Timing()
    for _ in range(polls):
        for user in people:
            user.account.advance()
        for user in people:
            _poll(user, rules, cfg, safety, timing)
    total = timing.poll_seconds + timing.plan_seconds
    rule_count = len(rules)
    return {
        "torrents_per_s": timing.torrents / total,
        "run_poll_torrents_per_s": timing.torrents / timing.poll_seconds,
        "plan_torrents_per_s": timing.torrents / timing.plan_seconds,
        "plan_us_per_torrent_rule": timing.plan_seconds / timing.torrents / rule_count * 1e6,
        "ms_per_poll": total / timing.polls * 1e3,
        "events_per_poll": timing.events / timing.polls,
        "changed_share": timing.changed / timing.torrents,
        "intents_per_poll": timing.intents / timing.polls,
        "rule_eval_us": _rule_costs(people, rules),
    }


def _rule_costs(people: list[_User], rules: list[tuple[int, CompiledRule]]) -> dict[str, float]:
    """Microseconds of one rule's test on one torrent, per rule, over every final state."""
    costs: dict[str, float] = {}
    states = [(s, u.account.now) for u in people for s in u.states.values()]
    for _rule_id, compiled in rules:
        test = compiled.test
        started = time.perf_counter()
        for state, now in states:
            test(state, now, {}, {}, None)
        costs[compiled.rule.name] = (time.perf_counter() - started) / len(states) * 1e6
    return costs
