"""The compiled rule's short-cuts against a plain reading of the three-valued logic they replace."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.userstore.factory import T0, Feed, snap
from tests.userstore.test_rule_plan import run
from userstore_svc.core.models import TorrentState
from userstore_svc.core.rules.evaluate import (
    CompiledRule,
    ConditionTrace,
    Tri,
    _held,
    _number_op,
    compile_rule,
    explain,
    raw_test,
    trace_dict,
    traces_json,
)
from userstore_svc.core.rules.fields import AtLeast
from userstore_svc.core.rules.model import Condition, Group, Rule, Trigger
from userstore_svc.core.rules.plan import RuleEntry

# Conditions with thresholds around their interesting values; growing ones among them.
POOL: tuple[tuple[str, str, Any], ...] = (
    ("SEEDS", "gt", 0),
    ("PEERS", "lt", 1),
    ("RATIO", "gte", 0.5),
    ("PROGRESS", "eq", 100),
    ("SEEDING_TIME", "gte", 0.02),
    ("SEEDING_TIME", "gt", 0.5),
    ("DOWNLOADING_TIME", "lte", 0.01),
    ("DOWNLOAD_STALLED_TIME", "gt", 1),
    ("LAST_UPLOAD_ACTIVITY_AT", "gte", 2),
    ("AVG_UPLOAD_SPEED", "lt", 0.001),
    ("NAME", "contains", "sample"),
    ("NAME", "not_contains", "torrent"),
    ("STATUS", "is_any_of", ("seeding", "stalled")),
    ("PRIVATE", "is_false", None),
    ("TAGS", "is_any_of", (1,)),
)

conditions = st.tuples(
    st.sampled_from(POOL),
    st.booleans(),
    st.sampled_from((None, None, 1.0, 5.0)),
)


def _group(path: str, draw: Any, depth: int) -> Group:
    """A random group: conditions and (above depth 0) nested groups, maybe empty or negated."""
    conds = tuple(
        Condition(f"{path}.c{i}", ftype, op, value, for_minutes=minutes, negate=negate)
        for i, ((ftype, op, value), negate, minutes) in enumerate(
            draw(st.lists(conditions, max_size=3))
        )
    )
    count = draw(st.integers(0, 2)) if depth > 0 else 0
    groups = tuple(_group(f"{path}.g{i}", draw, depth - 1) for i in range(count))
    return Group(path, draw(st.sampled_from(("and", "or"))), conds, groups, draw(st.booleans()))


@st.composite
def rules(draw: Any) -> Rule:
    return Rule(
        id=1,
        name="r",
        enabled=True,
        trigger=Trigger("interval"),
        root=_group("", draw, 2),
        action="stop_seeding",
        cooldown_minutes=None,
        dry_run=False,
        max_actions_per_run=None,
        asset_types=("torrent",),
    )


@st.composite
def states(draw: Any) -> tuple[TorrentState, float]:
    """A torrent watched over a few polls, in random profiles, with a random field unknown."""
    feed = Feed(interval=600)
    feed.poll(-600)
    at = 0.0
    for step in range(draw(st.integers(1, 4))):
        profile = draw(st.sampled_from(("downloading", "stalled", "seeding", "completed")))
        unknown = draw(st.sampled_from(("", "peers", "ratio", "total_uploaded", "seeds")))
        fields: dict[str, Any] = {
            "created_at": T0,
            "name": draw(st.sampled_from(("Some.Torrent", "a sample", "x"))),
            "total_uploaded": step * draw(st.integers(0, 2000)),
            "peers": draw(st.integers(0, 2)),
        }
        if unknown:
            fields[unknown] = None
        feed.poll(at, snap(profile, **fields))
        at += draw(st.sampled_from((60.0, 600.0, 1800.0)))
    return feed.state(), T0 + at - 60.0


def reference(
    group: Group,
    negate: bool,
    state: TorrentState,
    now: float,
    holds: dict[str, float],
    out: dict[str, float],
    tags: frozenset[int] | None,
) -> Tri:
    """Every condition evaluated, in document order, then AND / OR as the module defines them."""
    flip = negate != group.negate
    is_and = (group.logic == "and") != flip
    results: list[Tri] = []
    for cond in group.conditions:
        _value, result = raw_test(cond)(state, now, tags)
        if cond.negate != flip and result is not None:
            result = not result
        if cond.for_minutes:
            result = _held(result, cond.path, cond.for_minutes, now, holds, out)
        results.append(result)
    results += [reference(g, flip, state, now, holds, out, tags) for g in group.groups]
    if not results:
        return None
    if any(r is (not is_and) for r in results):
        return not is_and
    return None if any(r is None for r in results) else is_and


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules(), states(), st.sampled_from((None, frozenset(), frozenset({1}))), st.booleans())
def test_compiled_rule_equals_the_reference(
    rule: Rule, seen: tuple[TorrentState, float], tags: frozenset[int] | None, running: bool
) -> None:
    state, now = seen
    compiled = compile_rule(rule)
    # Some holds already running (a minute or an hour ago), so both outcomes of a hold occur.
    holds = {p: now - (3600.0 if running else 60.0) for p in rule.for_minutes_paths[::2]}
    out: dict[str, float] = {}
    expected_out: dict[str, float] = {}
    result = compiled.test(state, now, holds, out, tags)
    assert result is reference(rule.root, False, state, now, holds, expected_out, tags)
    # Short-cuts skip only parts that keep no hold: every hold is as up to date as before.
    assert out == expected_out
    if compiled.sole is not None:
        assert compiled.sole.test(state, now, tags)[1] is result
    assert compiled.held == tuple(
        (c.path, c.for_minutes) for c in _conditions(rule.root) if c.for_minutes
    )
    # The compiled raw tests explain exactly as tests built afresh.
    traces = explain(rule, state, now, holds, tags, compiled.raw)
    assert traces == explain(rule, state, now, holds, tags)
    assert traces_json(traces) == _plain_json(traces)


def _plain_json(traces: list[ConditionTrace]) -> str:
    """The action log's JSON as json.dumps writes it (the encoder traces_json keeps must agree)."""
    rows = [
        {**trace_dict(t), **({"held_since": t.held_since} if t.held_since is not None else {})}
        for t in traces
    ]
    return json.dumps(rows, separators=(",", ":"))


@pytest.mark.parametrize(
    "trace",
    [
        ConditionTrace("c", "NAME", "contains", 'é\u2028"x', 'Ünïcode "name"\n', "match"),
        ConditionTrace("c", "PEERS", "lt", {"value": 1.0, "for_minutes": 60}, 0.0, "match", 1e9),
        ConditionTrace("c", "RATIO", "gte", 1, {"at_least": 0.5}, "unknown", None),
        ConditionTrace("c", "SEEDS", "gt", 0, float("inf"), "no_match", float("nan")),
    ],
)
def test_traces_json_writes_what_json_dumps_writes(trace: ConditionTrace) -> None:
    assert traces_json([trace, trace]) == _plain_json([trace, trace])


def _conditions(group: Group) -> list[Condition]:
    return [*group.conditions, *(c for g in group.groups for c in _conditions(g))]


def _rule(root: Group) -> Rule:
    return Rule(
        1, "r", True, Trigger("interval"), root, "stop_seeding", None, False, None, ("torrent",)
    )


def _one(cond: Condition, *, negate: bool = False, extra: tuple[Condition, ...] = ()) -> Rule:
    inner = Group("g0", "and", (cond, *extra))
    return _rule(Group("", "and", (), (inner,), negate))


GROWS = Condition("c", "SEEDING_TIME", "gte", 24.0)


@pytest.mark.parametrize(
    ("rule", "sole"),
    [
        (_one(GROWS), True),
        (_one(Condition("c", "DOWNLOAD_STALLED_TIME", "gt", 360.0)), True),
        (_one(Condition("c", "SEEDING_TIME", "lt", 24.0)), False),  # lt does not grow into a match
        (_one(Condition("c", "RATIO", "gte", 1.0)), False),  # a ratio does not grow by itself
        (_one(dataclasses.replace(GROWS, negate=True)), False),
        (_one(GROWS, negate=True), False),  # negated by its group
        (_one(dataclasses.replace(GROWS, for_minutes=5.0)), False),  # held
        (_one(GROWS, extra=(Condition("d", "PEERS", "lt", 1.0),)), False),
        (_rule(Group("", "and", (GROWS,), (Group("e", "and", ()),))), False),  # an empty group
    ],
)
def test_sole_only_for_a_rule_that_is_one_growing_condition(rule: Rule, sole: bool) -> None:
    assert (compile_rule(rule).sole is not None) is sole


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gt", 2.0, True),
        ("gt", 1.0, False),
        ("gt", AtLeast(2.0), True),
        ("gt", AtLeast(1.0), None),
        ("gte", 1.0, True),
        ("gte", AtLeast(1.0), True),
        ("gte", AtLeast(0.5), None),
        ("lt", 0.5, True),
        ("lt", 1.0, False),
        ("lt", AtLeast(1.0), False),
        ("lt", AtLeast(0.5), None),
        ("lte", 1.0, True),
        ("lte", AtLeast(1.0), None),
        ("lte", AtLeast(1.5), False),
        ("eq", 1.0 + 1e-12, True),
        ("eq", 1.1, False),
        ("eq", AtLeast(1.0), None),
        ("eq", AtLeast(1.1), False),
    ],
)
def test_number_operators_on_exact_values_and_lower_bounds(
    operator: str, value: float, expected: bool | None
) -> None:
    assert _number_op(operator, 1.0)(value) is expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([c for c in POOL if c[0] in ("SEEDING_TIME", "DOWNLOAD_STALLED_TIME")]),
    st.lists(states(), min_size=1, max_size=4),
)
def test_the_sole_reading_plans_as_the_general_path(
    cond: tuple[str, str, Any], seen: list[tuple[TorrentState, float]]
) -> None:
    """A one-condition growing rule: same matches, intents and poll hint with the short-cut off."""
    ftype, op, value = cond
    compiled = compile_rule(_one(Condition("c", ftype, op, value)))
    assert compiled.sole is not None
    now = max(t for _s, t in seen)
    items = {key: s._replace(snap=s.snap._replace(id=key)) for key, (s, _t) in enumerate(seen, 1)}
    outputs = [
        run([RuleEntry(variant, 1, None)], items, now=now)
        for variant in (compiled, dataclasses.replace(compiled, sole=None))
    ]
    assert outputs[0] == outputs[1]


def test_compiled_rule_keeps_its_fields() -> None:
    compiled: CompiledRule = compile_rule(_one(GROWS))
    assert (compiled.conditions, compiled.tracks_holds, compiled.held) == (1, False, ())
