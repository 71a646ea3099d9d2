"""TBM's tag and airlock rules in the pure core: TAGS, IS_AIRLOCKED, ALLOW_ZIP, ORIGINAL_URL,
editor defaults that match nothing, and the planner's pre-filters for tag and airlock actions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.userstore.factory import T0, Feed, snap
from tests.userstore.test_rule_plan import RATIO_1, acted, run, states
from userstore_svc.core.models import TorrentState
from userstore_svc.core.rules.evaluate import compile_rule, explain
from userstore_svc.core.rules.plan import RuleEntry, SafetyConfig, skip_reason
from userstore_svc.core.rules.schema import parse_rule

ALWAYS = {"type": "SEEDS", "operator": "gte", "value": 0}


def doc(*conditions: dict[str, Any], action: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "r",
        "trigger": {"type": "interval", "value": 0},
        "groups": [{"logicOperator": "and", "conditions": list(conditions)}],
        "action": action or {"type": "stop_seeding"},
    }


def state_of(profile: str = "downloading", **fields: Any) -> TorrentState:
    feed = Feed()
    feed.poll(0, snap(profile, **fields))
    feed.poll(60, snap(profile, **fields))
    return feed.state()


NOW = T0 + 60


def outcome(
    condition: dict[str, Any], state: TorrentState, tags: frozenset[int] | None
) -> bool | None:
    return compile_rule(parse_rule(doc(condition))).test(state, NOW, {}, {}, tags)


def tags_condition(operator: str, value: Any = None) -> dict[str, Any]:
    return {"type": "TAGS", "operator": operator, "value": [] if value is None else value}


@pytest.mark.parametrize(
    ("operator", "value", "item", "expected"),
    [
        ("is_any_of", [1, 2], {2, 9}, True),
        ("is_any_of", [1, 2], {9}, False),
        ("is_any_of", [1, 2], set(), False),
        ("has_any", ["1", 2], {1}, True),
        ("is_all_of", [1, 2], {1, 2, 3}, True),
        ("is_all_of", [1, 2], {1}, False),
        ("has_all", [1, 2], {2}, False),
        ("is_none_of", [1, 2], {3}, True),
        ("is_none_of", [1, 2], set(), True),
        ("is_none_of", [1, 2], {2}, False),
        ("has_none", ["2"], {2}, False),
        ("is_set", [], {5}, True),
        ("is_set", [], set(), False),
        ("is_set", [7], {5}, True),  # value ignored
        ("is_not_set", [], set(), True),
        ("is_not_set", [], {5}, False),
        # An operator that needs ids but has none matches nothing (TBM), whatever the item has.
        ("is_any_of", [], {1}, None),
        ("is_all_of", [], {1}, None),
        ("is_none_of", [], set(), None),
    ],
)
def test_tags_operators_and_aliases(
    operator: str, value: list[Any], item: set[int], expected: bool | None
) -> None:
    """Each TAGS operator (and alias) over the item's tag ids, as TBM's §4.3 defines them."""
    assert outcome(tags_condition(operator, value), state_of(), frozenset(item)) is expected


@pytest.mark.parametrize(
    "operator", ["is_any_of", "is_all_of", "is_none_of", "is_set", "is_not_set"]
)
@pytest.mark.parametrize("negate", [False, True])
def test_tags_not_loaded_are_unknown_and_never_match(operator: str, negate: bool) -> None:
    """Without the item's tags (None) every TAGS test is unknown, negated or not."""
    condition = {**tags_condition(operator, [1]), "negate": negate}
    assert outcome(condition, state_of(), None) is None


@given(
    wanted=st.frozensets(st.integers(1, 8), max_size=4),
    item=st.frozensets(st.integers(1, 8), max_size=5),
    operator=st.sampled_from(["is_any_of", "is_all_of", "is_none_of", "is_set", "is_not_set"]),
)
def test_tags_match_the_set_model(
    wanted: frozenset[int], item: frozenset[int], operator: str
) -> None:
    """Every operator agrees with plain set algebra; empty id lists leave id operators unknown."""
    model: dict[str, bool | None] = {
        "is_any_of": bool(wanted & item) if wanted else None,
        "is_all_of": wanted <= item if wanted else None,
        "is_none_of": not (wanted & item) if wanted else None,
        "is_set": bool(item),
        "is_not_set": not item,
    }
    state = state_of()
    assert outcome(tags_condition(operator, sorted(wanted)), state, item) is model[operator]


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ({"type": "IS_AIRLOCKED", "operator": "is_true"}, {"airlocked": True}, True),
        ({"type": "IS_AIRLOCKED", "operator": "is_true"}, {"airlocked": False}, False),
        ({"type": "IS_AIRLOCKED", "operator": "is_false"}, {"airlocked": False}, True),
        ({"type": "IS_AIRLOCKED", "operator": "is_false"}, {}, None),  # unknown is not false
        ({"type": "IS_AIRLOCKED", "operator": "is_true"}, {}, None),
        ({"type": "ALLOW_ZIP", "operator": "is_true"}, {"allow_zipped": True}, True),
        ({"type": "ALLOW_ZIP", "operator": "is_false"}, {"allow_zipped": True}, False),
        ({"type": "ALLOW_ZIP", "operator": "is_false"}, {}, None),
        (
            {"type": "ORIGINAL_URL", "operator": "contains", "value": "EXAMPLE"},
            {"original_url": "https://example.org/a.nzb"},
            True,
        ),
        (
            {"type": "ORIGINAL_URL", "operator": "not_contains", "value": "x"},
            {},  # a torrent has no original URL: unknown, not ""
            None,
        ),
        # Editor defaults: an empty text or STATUS list matches nothing, even where it "could".
        ({"type": "NAME", "operator": "contains", "value": ""}, {}, None),
        ({"type": "NAME", "operator": "not_equals", "value": ""}, {}, None),
        ({"type": "NAME", "operator": "matches", "value": ""}, {}, None),
        ({"type": "STATUS", "operator": "is_any_of", "value": []}, {}, None),
        ({"type": "STATUS", "operator": "is_none_of", "value": []}, {}, None),
    ],
)
@pytest.mark.parametrize("negate", [False, True])
def test_airlock_zip_url_and_editor_defaults(
    condition: dict[str, Any], fields: dict[str, Any], expected: bool | None, negate: bool
) -> None:
    """The new flags and text read TorBox's fields; unknown and empty never match, even negated."""
    result = outcome({**condition, "negate": negate}, state_of(**fields), frozenset())
    assert result is (expected if expected is None or not negate else not expected)


def test_an_empty_default_does_not_block_an_or_group() -> None:
    """An empty STATUS beside a real condition in an OR group: the real one decides (as in TBM)."""
    rule = doc()
    rule["groups"] = [
        {
            "logicOperator": "or",
            "conditions": [{"type": "STATUS", "operator": "is_any_of", "value": []}, RATIO_1],
        }
    ]
    compiled = compile_rule(parse_rule(rule))
    assert compiled.test(state_of(ratio=2.0), NOW, {}, {}, None) is True
    assert compiled.test(state_of(ratio=0.5), NOW, {}, {}, None) is None


def test_explain_shows_the_item_tags() -> None:
    """The audit trace of a TAGS condition shows the item's tag ids, sorted."""
    rule = parse_rule(doc(tags_condition("is_any_of", [4])))
    (trace,) = explain(rule, state_of(), NOW, {}, frozenset({9, 4}))
    assert (trace.type, trace.value, trace.threshold, trace.result) == (
        "TAGS",
        [4, 9],
        [4],
        "match",
    )


@pytest.mark.parametrize(
    ("action", "item", "reason"),
    [
        ("add_tag", {1, 2, 3}, "already tagged"),
        ("add_tag", {1}, None),
        ("add_tag", set(), None),
        ("remove_tag", {3}, "not tagged"),
        ("remove_tag", {2, 3}, None),
        ("add_tag", None, "tags unknown"),
        ("remove_tag", None, "tags unknown"),
    ],
)
def test_tag_prefilters(action: str, item: set[int] | None, reason: str | None) -> None:
    """add_tag skips items with every target tag, remove_tag those with none (TBM's RuleFilter)."""
    tags = None if item is None else frozenset(item)
    assert skip_reason(action, state_of(), tags, (1, 2)) == reason


@pytest.mark.parametrize(
    ("action", "airlocked", "reason"),
    [
        ("add_airlock", False, None),
        ("add_airlock", True, "already airlocked"),
        ("remove_airlock", True, None),
        ("remove_airlock", False, "not airlocked"),
        ("add_airlock", None, "airlock state unknown"),
        ("remove_airlock", None, "airlock state unknown"),
    ],
)
def test_airlock_prefilters(action: str, airlocked: bool | None, reason: str | None) -> None:
    """An airlock action skips items already in the target state, and items whose state TorBox
    did not send (nothing is sent blind)."""
    assert skip_reason(action, state_of(airlocked=airlocked)) == reason


def tag_entry(rule_id: int, action: str, tag_ids: list[int], *conditions: Any) -> RuleEntry:
    rule = doc(*conditions, action={"type": action, "tagIds": tag_ids})
    return RuleEntry(compile_rule(parse_rule(rule)), rule_id, None)


def test_tag_actions_are_local_protection_free_and_beside_torbox_actions() -> None:
    """A tag action reaches protected torrents, stands beside another rule's action on the same
    torrent, skips items already tagged, and is never held by the destructive caps."""
    torrents = states(*(snap("seeding", id=i, ratio=2) for i in range(1, 6)))
    delete_all = RuleEntry(
        compile_rule(parse_rule(doc(RATIO_1, action={"type": "delete"}))), 1, None
    )
    out = run(
        [delete_all, tag_entry(2, "add_tag", [7], RATIO_1)],
        torrents,
        protected=frozenset({1}),
        tags={2: frozenset({7})},
        safety=SafetyConfig(max_destructive_per_poll=2),
    )
    deletes = [a for a in acted(out) if a[1] == "delete"]
    tags = [(a[0], a[2]) for a in acted(out) if a[1] == "add_tag"]
    assert all(status == "held" for _, _, status in deletes)  # 4 deletes over the cap of 2
    assert tags == [(1, "pending"), (3, "pending"), (4, "pending"), (5, "pending")]
    assert all(i.tag_ids == (7,) for i in out.intents if i.action == "add_tag")
    report = next(r for r in out.reports if r.rule_id == 2)
    assert report.skipped == {"already tagged": 1}


def test_tag_rules_wait_when_tags_were_not_loaded() -> None:
    """Without the user's tags the planner neither matches TAGS nor sends a tag action."""
    torrents = states(snap("seeding", id=1, ratio=2))
    out = run([tag_entry(1, "remove_tag", [3], RATIO_1)], torrents)
    assert out.intents == []
    assert out.reports[0].skipped == {"tags unknown": 1}
    out = run(
        [tag_entry(1, "add_tag", [3], tags_condition("is_not_set"))],
        torrents,
        tags={},
    )
    assert acted(out) == [(1, "add_tag", "pending")]
