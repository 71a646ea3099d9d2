"""Rule evaluation over torrent states: three-valued logic, held conditions, and explanations.

A condition is True, False or None (unknown). AND is False if any part is False, else unknown if
any part is unknown; OR is True if any part is True, else unknown if any is unknown. Negating an
unknown stays unknown, and a rule matches only when its result is True: unknown never matches.
A value known only as a lower bound (:class:`~userstore_svc.core.rules.fields.AtLeast`) decides a
comparison only when every value at or above the bound agrees; otherwise the test is unknown.

Negation is pushed down to the conditions (De Morgan's laws hold in this three-valued logic), so
every condition knows the test it finally contributes. A condition with ``for_minutes`` is True
only once that test, negation included, has held continuously for that long: "no seeds for an
hour" is ``SEEDS gt 0``, negated, held 60 minutes. The caller keeps the start of each hold per
(rule, condition, torrent) between polls; an unknown result ends a hold.

TAGS reads the item's TBM tag ids, which the caller passes beside the state (the store loads
them; None when they were not loaded, which makes every TAGS condition unknown). An empty STATUS
list, an empty text or an empty tag list (TBM's editor defaults) is unknown too: it matches
nothing, negated or not.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from userstore_svc.core.models import TorrentState
from userstore_svc.core.rules.fields import FIELDS, AtLeast
from userstore_svc.core.rules.model import Condition, Group, Rule, iter_conditions
from userstore_svc.core.rules.schema import regex_options

Tri = bool | None
Tags = frozenset[int] | None
RawTest = Callable[[TorrentState, float, Tags], tuple[Any, Tri]]
# (state, now, holds of this torrent: path -> since, new holds to fill, its tag ids) -> result
Test = Callable[[TorrentState, float, Mapping[str, float], dict[str, float], Tags], Tri]


def _number_op(operator: str, threshold: float) -> Callable[[Any], Tri]:
    """A comparison of an exact value, or of a lower bound `v` (the true value is v or more).

    One closure per operator: a bound decides only where every value at or above it agrees.
    """
    t = threshold
    if operator == "gt":
        return lambda v: (True if v > t else None) if type(v) is AtLeast else v > t
    if operator == "gte":
        return lambda v: (True if v >= t else None) if type(v) is AtLeast else v >= t
    if operator == "lt":
        return lambda v: (False if v >= t else None) if type(v) is AtLeast else v < t
    if operator == "lte":
        return lambda v: (False if v > t else None) if type(v) is AtLeast else v <= t
    # eq: false once a bound is past the threshold, unknown until then.
    tolerance = 1e-9 * max(1.0, abs(t))
    return lambda v: (False if v > t else None) if type(v) is AtLeast else abs(v - t) <= tolerance


# Lower-casing a text once serves every condition that reads it: names and trackers hardly change
# between polls, so a bounded memo turns one `lower()` per condition per item into one per text.
# (A pure function memoised; lru_cache is safe across the threads polls may run on.)
@functools.lru_cache(maxsize=1 << 15)
def lowered(text: str) -> str:
    """`text` lower-cased, as every text operator but `matches` compares it."""
    return text.lower()


TextTest = Callable[[str, str], bool]


def _string_op(operator: str, needle: str) -> TextTest:
    """A text test of (the text, the text lower-cased): case-insensitive like TBM's."""
    low = needle.lower()
    if operator == "contains":
        return lambda _v, v: low in v
    if operator == "not_contains":
        return lambda _v, v: low not in v
    if operator == "equals":
        return lambda _v, v: v == low
    if operator == "not_equals":
        return lambda _v, v: v != low
    if operator == "starts_with":
        return lambda _v, v: v.startswith(low)
    if operator == "ends_with":
        return lambda _v, v: v.endswith(low)
    pattern = re2.compile(needle, regex_options())

    # Names and trackers hardly change between polls: remember each text's answer (bounded).
    @functools.lru_cache(maxsize=16384)
    def search(text: str, _low: str) -> bool:
        return pattern.search(text) is not None

    return search


def _unknown(_v: Any) -> Tri:
    return None


def _tags_op(operator: str, ids: frozenset[int]) -> Callable[[Any], Tri]:
    """A test of an item's tag ids (TBM's semantics; an id list left empty matches nothing)."""
    if operator == "is_set":
        return lambda v: bool(v)
    if operator == "is_not_set":
        return lambda v: not v
    if not ids:
        return _unknown
    if operator == "is_all_of":
        return lambda v: ids <= v
    if operator == "is_none_of":
        return lambda v: not (ids & v)
    return lambda v: bool(ids & v)


def _predicate(cond: Condition) -> Callable[[Any], Tri]:
    kind = FIELDS[cond.type].kind
    if kind == "number":
        return _number_op(cond.operator, float(cond.value))
    if kind == "tags":
        return _tags_op(cond.operator, frozenset(cond.value))
    if kind in ("string", "status") and not cond.value:
        return _unknown  # TBM's editor default ("" or []): matches nothing
    if kind == "string":
        text_test = _string_op(cond.operator, str(cond.value))
        return lambda v: text_test(v, lowered(v))
    if kind == "status":
        wanted = frozenset(cond.value)
        if cond.operator == "is_none_of":
            return lambda v: v not in wanted
        return lambda v: v in wanted
    if cond.operator == "is_false":
        return lambda v: v is False
    return lambda v: v is True


def raw_test(cond: Condition) -> RawTest:
    """The condition's value and its raw result (before holding and negation)."""
    get = FIELDS[cond.type].get
    hours = cond.hours
    predicate = _predicate(cond)
    if FIELDS[cond.type].kind == "tags":

        def tags_test(_state: TorrentState, _now: float, tags: Tags) -> tuple[Any, Tri]:
            return (None, None) if tags is None else (tags, predicate(tags))

        return tags_test

    def test(state: TorrentState, now: float, _tags: Tags) -> tuple[Any, Tri]:
        value = get(state, now, hours)
        if value is None:
            return None, None
        return value, predicate(value)

    return test


def _held(
    result: Tri,
    path: str,
    minutes: float,
    now: float,
    holds: Mapping[str, float],
    out: dict[str, float],
) -> Tri:
    """True once `result` (negation applied) has been True for `minutes`; anything else ends it."""
    if result is not True:
        return result
    since = holds.get(path, now)
    out[path] = since
    return now - since >= minutes * 60.0 - 1e-6


def _compile_condition(cond: Condition, negate: bool) -> Test:
    """One condition's test; `negate` is its own negation combined with its groups'."""
    path, minutes = cond.path, cond.for_minutes
    get, hours, predicate = FIELDS[cond.type].get, cond.hours, _predicate(cond)
    reads_tags = FIELDS[cond.type].kind == "tags"
    if not minutes and not negate and not reads_tags:
        # Most conditions neither hold nor negate: one call per torrent instead of two.
        def plain(
            state: TorrentState,
            now: float,
            _holds: Mapping[str, float],
            _out: dict[str, float],
            _tags: Tags,
        ) -> Tri:
            value = get(state, now, hours)
            return None if value is None else predicate(value)

        return plain

    def run(
        state: TorrentState,
        now: float,
        holds: Mapping[str, float],
        out: dict[str, float],
        tags: Tags,
    ) -> Tri:
        value = tags if reads_tags else get(state, now, hours)
        result = None if value is None else predicate(value)
        if negate and result is not None:
            result = not result
        if minutes:
            # The hold applies to the test as negated: "not X, for an hour".
            result = _held(result, path, minutes, now, holds, out)
        return result

    return run


def _compile_texts(conds: list[Condition], flip: bool, is_and: bool) -> Test:
    """Text conditions (one field, no hold, a non-empty value) combined by AND or by OR.

    The field's text is read and lower-cased once per item, however many conditions test it;
    `contains` and `not_contains` (the bulk of large rule sets) become plain substring loops.
    """
    get = FIELDS[conds[0].type].get
    decides = not is_and  # the result one part settles the group with
    # Needles whose presence settles the group, needles whose absence does, and the rest.
    present: list[str] = []
    absent: list[str] = []
    tests: list[tuple[TextTest, bool]] = []
    for cond in conds:
        negated = cond.negate != flip
        if cond.operator in ("contains", "not_contains"):
            # After negation the condition is `needle in text` == positive.
            positive = (cond.operator == "contains") != negated
            (present if positive == decides else absent).append(str(cond.value).lower())
        else:
            tests.append((_string_op(cond.operator, str(cond.value)), negated))
    hits, misses, others = tuple(present), tuple(absent), tuple(tests)

    def run(
        state: TorrentState,
        now: float,
        _holds: Mapping[str, float],
        _out: dict[str, float],
        _tags: Tags,
    ) -> Tri:
        value = get(state, now, None)
        if not isinstance(value, str):
            return None  # unknown (None) for every one of them
        low = lowered(value)
        for needle in hits:
            if needle in low:
                return decides
        for needle in misses:
            if needle not in low:
                return decides
        for test, negated in others:
            if test(value, low) is not negated:  # True once negation is applied
                if decides:
                    return True
            elif is_and:
                return False
        return is_and

    return run


def _keeps_holds(group: Group) -> bool:
    """Whether any condition in the group (nested ones included) is held for a while."""
    return any(c.for_minutes for c in iter_conditions(group))


def _nothing(
    _state: TorrentState,
    _now: float,
    _holds: Mapping[str, float],
    _out: dict[str, float],
    _tags: Tags,
) -> Tri:
    return None  # an empty group matches nothing, negated or not


def _compile_group(group: Group, negate: bool) -> Test:
    """A group's test, with an enclosing negation pushed down to its parts (De Morgan)."""
    flip = negate != group.negate
    # NOT (a AND b) is (NOT a) OR (NOT b), and the other way round.
    is_and = (group.logic == "and") != flip
    texts: dict[str, list[Condition]] = {}
    others: list[Condition] = []
    for cond in group.conditions:
        fusable = FIELDS[cond.type].kind == "string" and cond.value and not cond.for_minutes
        (texts.setdefault(cond.type, []) if fusable else others).append(cond)
    # AND and OR are associative and commutative in this logic too, so a group's plain text
    # conditions on one field can be decided together: one read and one lower-casing per item.
    parts = [_compile_texts(conds, flip, is_and) for conds in texts.values()]
    parts += [_compile_condition(c, c.negate != flip) for c in others]
    parts += [_compile_group(g, flip) for g in group.groups]
    if not parts:
        return _nothing
    if len(parts) == 1:
        # Alone, a part decides its group under AND and OR alike (unknown stays unknown).
        return parts[0]
    keeps = [False] * len(texts)  # fused text conditions are never held
    keeps += [bool(c.for_minutes) for c in others]
    keeps += [_keeps_holds(g) for g in group.groups]
    # Once a part decides the group, the later ones cannot change its result: only those that
    # keep holds still run, so that every hold stays up to date.
    steps = tuple(
        (part, tuple(p for p, k in zip(parts[i + 1 :], keeps[i + 1 :], strict=True) if k))
        for i, part in enumerate(parts)
    )

    def run(
        state: TorrentState,
        now: float,
        holds: Mapping[str, float],
        out: dict[str, float],
        tags: Tags,
    ) -> Tri:
        unknown = False
        for part, held_after in steps:
            value = part(state, now, holds, out, tags)
            if value is None:
                unknown = True
            elif value is not is_and:  # False under AND, True under OR decides the group
                for later in held_after:
                    later(state, now, holds, out, tags)
                return value
        return None if unknown else is_and

    return run


def effective_conditions(group: Group, negate: bool = False) -> Iterator[tuple[Condition, bool]]:
    """Every condition in document order, with the negation it finally gets.

    A condition's own negation combines with every enclosing group's.
    """
    flip = negate != group.negate
    for cond in group.conditions:
        yield cond, cond.negate != flip
    for child in group.groups:
        yield from effective_conditions(child, flip)


@dataclass(frozen=True, slots=True)
class Growing:
    """A condition whose value grows toward its threshold while a torrent stays as it is."""

    test: RawTest
    threshold: float
    seconds_per_unit: float


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to test torrents; `tracks_holds` when it has for_minutes conditions."""

    rule: Rule
    test: Test
    tracks_holds: bool
    # For the planner's hint: when the next poll could see this rule match.
    growing: tuple[Growing, ...] = ()
    # How many conditions it tests per item: the measure of its cost (see docs/rules.md).
    conditions: int = 0
    # The rule's only condition when that is a growing one (most presets): its raw test gives
    # the rule's result and, in one reading, the value the hint needs.
    sole: Growing | None = None
    # (path, minutes) of every held condition, in document order (for the hint).
    held: tuple[tuple[str, float], ...] = ()
    # Every condition's raw test, in document order (for explain).
    raw: tuple[RawTest, ...] = ()


def compile_rule(rule: Rule) -> CompiledRule:
    """Build the rule's test once.

    A rule with held conditions keeps evaluating, after a part decided a group, the parts that
    hold conditions, so every hold stays up to date.
    """
    tracks = bool(rule.for_minutes_paths)
    growing = []
    raw = []
    for cond, negated in effective_conditions(rule.root):
        raw.append(raw_test(cond))
        rate = FIELDS[cond.type].grows_per_second
        if rate > 0 and cond.operator in ("gt", "gte") and not negated:
            growing.append(Growing(raw[-1], float(cond.value), 1.0 / rate))
    test = _compile_group(rule.root, negate=False)
    conditions = iter_conditions(rule.root)
    only = _sole_condition(rule.root)
    sole = None
    if only is not None and len(growing) == 1 and not only.for_minutes:
        sole = growing[0]  # not negated (it grows), not held: the rule's test is its raw test
    held = tuple((c.path, float(c.for_minutes)) for c in conditions if c.for_minutes)
    return CompiledRule(rule, test, tracks, tuple(growing), len(conditions), sole, held, tuple(raw))


def _sole_condition(group: Group) -> Condition | None:
    """The condition a group comes down to when every level has exactly one part, else None."""
    if len(group.conditions) + len(group.groups) != 1:
        return None
    return group.conditions[0] if group.conditions else _sole_condition(group.groups[0])


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """What one condition saw on one torrent: for the audit and the preview."""

    path: str
    type: str
    operator: str
    threshold: Any
    value: Any
    result: str  # "match", "no_match" or "unknown"
    held_since: float | None = None


def explain(
    rule: Rule,
    state: TorrentState,
    now: float,
    holds: Mapping[str, float],
    tags: Tags,
    raw: Sequence[RawTest] = (),
) -> list[ConditionTrace]:
    """Every condition's value, threshold and result on one torrent.

    `raw`: the rule's raw tests in document order (:attr:`CompiledRule.raw`), so that none is
    built again (a regex compiled) per explanation; built here when not given.
    """
    traces = []
    for index, (cond, negated) in enumerate(effective_conditions(rule.root)):
        value, result = (raw[index] if raw else raw_test(cond))(state, now, tags)
        if negated and result is not None:
            result = not result
        since = None
        if cond.for_minutes and result is True:
            since = holds.get(cond.path, now)
            result = _held(result, cond.path, cond.for_minutes, now, holds, {})
        threshold: Any = list(cond.value) if isinstance(cond.value, tuple) else cond.value
        if cond.hours is not None:
            threshold = {"value": threshold, "hours": cond.hours}
        if cond.for_minutes:
            threshold = {"value": threshold, "for_minutes": cond.for_minutes}
        traces.append(
            ConditionTrace(
                path=cond.path,
                type=cond.type,
                operator=cond.operator,
                threshold=threshold,
                value=_shown(value),
                result="unknown" if result is None else ("match" if result else "no_match"),
                held_since=since,
            )
        )
    return traces


def _shown(value: Any) -> Any:
    """A value as the audit shows it: a lower bound says so, tag ids in order."""
    if isinstance(value, frozenset):
        return sorted(value)
    if type(value) is AtLeast:
        return {"at_least": round(float(value), 6)}
    return round(value, 6) if isinstance(value, float) else value


def trace_dict(trace: ConditionTrace) -> dict[str, Any]:
    """One condition's trace as the API shows it (a hold's start is for the audit only)."""
    return {
        "path": trace.path,
        "type": trace.type,
        "operator": trace.operator,
        "threshold": trace.threshold,
        "value": trace.value,
        "result": trace.result,
    }


# json.dumps with any option builds a new encoder per call; this one is built once (the same
# options as json.dumps(..., separators=(",", ":")), so the same text).
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def traces_json(traces: list[ConditionTrace]) -> str:
    """The traces as compact JSON for the action log, with when each held condition began."""
    rows = []
    for t in traces:
        row = trace_dict(t)
        if t.held_since is not None:
            row["held_since"] = t.held_since
        rows.append(row)
    return _COMPACT.encode(rows)
