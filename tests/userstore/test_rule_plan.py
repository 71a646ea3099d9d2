"""The planner: triggers, held conditions, cooldowns, caps, protection, limits and dry run."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.userstore.factory import T0, Feed, snap
from userstore_svc.core.models import Event, TorrentState
from userstore_svc.core.rules.evaluate import compile_rule
from userstore_svc.core.rules.plan import (
    Holds,
    PlanInput,
    PlanOutput,
    RuleEntry,
    SafetyConfig,
    TorrentLimit,
    plan,
)
from userstore_svc.core.rules.schema import parse_rule


def entry(
    rule_id: int,
    action: str,
    *conditions: dict[str, Any],
    last: float | None = None,
    **options: Any,
) -> RuleEntry:
    doc = {
        "name": f"rule{rule_id}",
        "trigger": options.pop("trigger", {"type": "interval", "value": 0}),
        "groups": [{"logicOperator": "and", "conditions": list(conditions)}],
        "action": {"type": action},
        **options,
    }
    return RuleEntry(compile_rule(parse_rule(doc)), rule_id, last)


RATIO_1 = {"type": "RATIO", "operator": "gte", "value": 1}
ALWAYS = {"type": "SEEDS", "operator": "gte", "value": 0}


def states(*snaps: Any) -> dict[int, TorrentState]:
    feed = Feed()
    feed.poll(0, *snaps)
    feed.poll(60, *snaps)
    return feed.states


def run(
    rules: list[RuleEntry],
    torrents: dict[int, TorrentState],
    *,
    now: float = T0 + 60,
    events: list[Event] | None = None,
    holds: Holds | None = None,
    **kwargs: Any,
) -> PlanOutput:
    return plan(
        PlanInput(
            now=now,
            states=torrents,
            events=events or [],
            rules=rules,
            holds=holds or {},
            protected=kwargs.pop("protected", frozenset()),
            limits=kwargs.pop("limits", {}),
            last_actions=kwargs.pop("last_actions", {}),
            pending=kwargs.pop("pending", frozenset()),
            safety=kwargs.pop("safety", SafetyConfig()),
            **kwargs,
        )
    )


def acted(out: PlanOutput) -> list[tuple[int, str, str]]:
    return [(i.key, i.action, i.status) for i in out.intents]


def test_action_skips_torrents_where_it_would_do_nothing() -> None:
    """stop_seeding only touches seeding torrents; resume only paused; force_start only queued."""
    torrents = states(
        snap("seeding", id=1, ratio=2),
        snap(id=2, ratio=2),
        snap("paused", id=3),
        snap("queued", id=4),
    )
    out = run([entry(1, "stop_seeding", ALWAYS)], torrents)
    assert acted(out) == [(1, "stop_seeding", "pending")]
    assert out.reports[0].skipped == {"not seeding": 3}
    assert acted(run([entry(1, "resume", ALWAYS)], torrents)) == [(3, "resume", "pending")]
    assert acted(run([entry(1, "force_start", ALWAYS)], torrents)) == [
        (-4, "force_start", "pending")
    ]


def test_protected_torrents_are_never_stopped_archived_or_deleted() -> None:
    """Protection blocks stopping, pausing, archiving and deleting, but not a reannounce."""
    torrents = states(snap("seeding", id=1, ratio=2), snap("seeding", id=2, ratio=2))
    for action in ("stop_seeding", "delete", "archive", "pause"):
        out = run([entry(1, action, RATIO_1)], torrents, protected=frozenset({1}))
        assert [i.key for i in out.intents] == [2]
        assert out.reports[0].skipped == {"protected": 1}
    out = run([entry(1, "reannounce", RATIO_1)], torrents, protected=frozenset({1}))
    assert [i.key for i in out.intents] == [1, 2]


def test_cooldown_per_rule_and_torrent() -> None:
    """A rule does not act on the same torrent again within its cooldown (30 minutes by default)."""
    torrents = states(snap("seeding", id=1, ratio=2))
    recent = {(1, 1): T0 + 60 - 600}
    assert run([entry(1, "reannounce", RATIO_1)], torrents, last_actions=recent).intents == []
    assert (
        run(
            [entry(1, "reannounce", RATIO_1, cooldown_minutes=5)], torrents, last_actions=recent
        ).intents
        != []
    )
    other_rule = {(2, 1): T0}
    assert run([entry(1, "reannounce", RATIO_1)], torrents, last_actions=other_rule).intents != []


def test_no_second_action_while_an_earlier_one_awaits_its_outcome() -> None:
    """A torrent with an action whose outcome is not known yet gets no other, from any rule,
    destructive or not; the others still do."""
    torrents = states(snap("seeding", id=1, ratio=2), snap("seeding", id=2, ratio=2))
    for action in ("delete", "stop_seeding", "reannounce"):
        out = run([entry(1, action, RATIO_1)], torrents, pending=frozenset({1}))
        assert [i.key for i in out.intents] == [2]
        assert out.reports[0].skipped == {"an earlier action awaits its outcome": 1}


def test_max_actions_per_run_caps_a_rule() -> None:
    """A rule acts on at most max_actions_per_run torrents per poll, lowest ids first."""
    torrents = states(*[snap("seeding", id=i, ratio=2) for i in range(1, 6)])
    out = run([entry(1, "stop_seeding", RATIO_1, max_actions_per_run=2)], torrents)
    assert [i.key for i in out.intents] == [1, 2]
    assert out.reports[0].skipped == {"max_actions_per_run": 3}


def test_one_action_per_torrent_destructive_wins_then_rule_order() -> None:
    """Two rules on one torrent: a destructive action wins; otherwise the earlier rule."""
    torrents = states(
        snap("seeding", id=1, ratio=2), *[snap("completed", id=i) for i in range(2, 12)]
    )
    out = run([entry(1, "stop_seeding", RATIO_1), entry(2, "delete", RATIO_1)], torrents)
    assert acted(out) == [(1, "delete", "pending")]
    out = run([entry(1, "stop_seeding", RATIO_1), entry(2, "reannounce", RATIO_1)], torrents)
    assert acted(out) == [(1, "stop_seeding", "pending")]


def test_blast_radius_count_cap_holds_every_destructive_action() -> None:
    """More destructive actions than the cap in one poll: none are sent, an event says why."""
    torrents = states(*[snap("seeding", id=i, ratio=2) for i in range(1, 101)])
    out = run(
        [entry(1, "delete", RATIO_1)], torrents, safety=SafetyConfig(max_destructive_per_poll=10)
    )
    assert {i.status for i in out.intents} == {"held"}
    assert len(out.intents) == 100
    assert [e.type for e in out.events] == ["AUTOMATION_HELD"]
    assert "over the cap of 10" in out.events[0].data["reason"]
    assert out.reports[0].processed == 0


def test_blast_radius_share_cap() -> None:
    """Deleting more than a quarter of the user's torrents is held, even under the count cap."""
    torrents = states(*[snap("seeding", id=i, ratio=2 if i <= 4 else 0) for i in range(1, 11)])
    out = run([entry(1, "archive", RATIO_1)], torrents)
    assert {i.status for i in out.intents} == {"held"}
    assert "25%" in out.events[0].data["reason"]
    few = states(*[snap("seeding", id=i, ratio=2 if i <= 2 else 0) for i in range(1, 11)])
    assert {i.status for i in run([entry(1, "archive", RATIO_1)], few).intents} == {"pending"}


def test_non_destructive_actions_are_not_capped() -> None:
    """The cap counts deletes and archives only; stopping seeding is not held by it."""
    torrents = states(*[snap("seeding", id=i, ratio=2) for i in range(1, 31)])
    out = run([entry(1, "stop_seeding", RATIO_1)], torrents)
    assert {i.status for i in out.intents} == {"pending"}


def test_unconfirmed_snapshot_holds_destructive_actions_only() -> None:
    """A suspicious snapshot holds deletes and archives; stopping seeding still goes."""
    torrents = states(
        snap("seeding", id=1, ratio=2), *[snap("completed", id=i) for i in range(2, 12)]
    )
    out = run([entry(1, "delete", RATIO_1)], torrents, hold_reason="snapshot collapsed")
    assert acted(out) == [(1, "delete", "held")]
    assert out.events[0].data["reason"] == "snapshot collapsed"
    assert acted(run([entry(1, "stop_seeding", RATIO_1)], torrents, hold_reason="x")) == [
        (1, "stop_seeding", "pending")
    ]


@pytest.mark.parametrize(("global_dry", "rule_dry"), [(True, False), (False, True)])
def test_dry_run_records_everything_and_sends_nothing(global_dry: bool, rule_dry: bool) -> None:
    """Dry run (global or per rule) plans intents marked dry_run, never pending ones."""
    torrents = states(*[snap("seeding", id=i, ratio=2) for i in range(1, 4)])
    out = run(
        [entry(1, "stop_seeding", RATIO_1, dry_run=rule_dry)],
        torrents,
        safety=SafetyConfig(global_dry_run=global_dry),
    )
    assert {(i.status, i.dry_run) for i in out.intents} == {("dry_run", True)}
    assert out.reports[0].dry_run


def test_torrent_limits_override_rules_until_reached() -> None:
    """A torrent's own seeding limit keeps rules from ending its seeding early, then stops it."""
    torrents = states(snap("seeding", id=1, ratio=1.5), snap("seeding", id=2, ratio=3.5))
    limits = {1: TorrentLimit(3.0, None), 2: TorrentLimit(3.0, None)}
    out = run([entry(1, "stop_seeding", RATIO_1)], torrents, limits=limits)
    by_key = {i.key: i for i in out.intents}
    assert set(by_key) == {2}
    assert out.reports[0].skipped == {"torrent seeding limit not reached": 1}
    alone = run([], torrents, limits=limits)
    assert [(i.key, i.rule_name, i.action) for i in alone.intents] == [
        (2, "Torrent seeding limit", "stop_seeding")
    ]


def test_interval_trigger_gates_evaluation() -> None:
    """An interval rule is evaluated only when its interval has passed since the last evaluation."""
    torrents = states(snap("seeding", id=1, ratio=2))
    rule = entry(
        1, "stop_seeding", RATIO_1, trigger={"type": "interval", "value": 30}, last=T0 + 60 - 600
    )
    out = run([rule], torrents)
    assert out.intents == []
    assert out.evaluated_rule_ids == []
    assert out.next_poll_in == pytest.approx(1200)
    due = replace(rule, last_evaluated_at=T0 + 60 - 1800)
    out = run([due], torrents)
    assert out.evaluated_rule_ids == [1]
    assert len(out.intents) == 1


def test_event_trigger_evaluates_only_torrents_the_event_happened_to() -> None:
    """An event rule runs for the torrents with that event in this poll, and only them."""
    torrents = states(*[snap("seeding", id=i, ratio=2) for i in range(1, 4)])
    rule = entry(
        1, "stop_seeding", RATIO_1, trigger={"type": "event", "events": ["TORRENT_RATIO_REACHED"]}
    )
    assert run([rule], torrents).intents == []
    events = [Event("TORRENT_RATIO_REACHED", 2, T0 + 60), Event("TORRENT_STALLED", 3, T0 + 60)]
    out = run([rule], torrents, events=events)
    assert [i.key for i in out.intents] == [2]
    assert out.intents[0].execution_type == "event"


def test_for_minutes_requires_the_condition_to_hold_across_polls() -> None:
    """A held condition matches only after holding for for_minutes without a break."""
    rule = entry(1, "stop_seeding", {**RATIO_1, "for_minutes": 10})
    torrents = states(snap("seeding", id=1, ratio=2))
    holds: Holds = {}
    fired = []
    for minute, ratio in [(0, 2), (5, 2), (9, 2), (10, 2), (12, 0.5), (13, 2), (22, 2), (23, 2)]:
        current = {1: torrents[1]._replace(snap=torrents[1].snap._replace(ratio=ratio))}
        out = run([rule], current, now=T0 + minute * 60, holds=holds)
        holds = out.holds
        fired.append(bool(out.intents))
    assert fired == [False, False, False, True, False, False, False, True]


def test_holds_restart_after_an_outage() -> None:
    """After a gap in observation a hold starts over."""
    rule = entry(1, "stop_seeding", {**RATIO_1, "for_minutes": 10})
    torrents = states(snap("seeding", id=1, ratio=2))
    out = run([rule], torrents, now=T0, holds={})
    out = run([rule], torrents, now=T0 + 900, holds=out.holds, reset_holds=True)
    assert out.intents == []
    assert out.holds == {1: {1: {"groups[0].conditions[0]": T0 + 900}}}


def test_manual_run_evaluates_one_rule_whatever_its_trigger() -> None:
    """A manual run evaluates only the named rule, on every torrent, now."""
    torrents = states(snap("seeding", id=1, ratio=2))
    slow = entry(1, "stop_seeding", RATIO_1, trigger={"type": "interval", "value": 600}, last=T0)
    other = entry(2, "reannounce", ALWAYS)
    out = run([slow, other], torrents, run_rule_id=1)
    assert [(i.rule_id, i.execution_type) for i in out.intents] == [(1, "manual")]
    assert [r.rule_id for r in out.reports] == [1]


def test_next_poll_hint_when_a_threshold_is_about_to_be_crossed() -> None:
    """The plan asks for a poll when a time-based condition will next cross its threshold."""
    feed = Feed(interval=600)
    for i in range(3):
        feed.poll(i * 600, snap("seeding", id=1))
    rule = entry(1, "stop_seeding", {"type": "SEEDING_TIME", "operator": "gte", "value": 1})
    out = run([rule], feed.states, now=T0 + 1200)
    assert out.intents == []
    assert out.next_poll_in == pytest.approx(2400)


def test_same_snapshot_twice_sends_nothing_new() -> None:
    """Once an action is recorded, planning again on the same state sends nothing (cooldown)."""
    torrents = states(snap("seeding", id=1, ratio=2))
    rule = entry(1, "stop_seeding", RATIO_1)
    first = run([rule], torrents)
    assert len(first.intents) == 1
    again = run([rule], torrents, last_actions={(1, 1): T0 + 60})
    assert again.intents == []
