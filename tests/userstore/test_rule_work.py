"""Rule work per poll: text conditions decided together, the save-time bound, heavy polls."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import InvalidArgument
from tests.userstore.conftest import Store
from tests.userstore.factory import snap
from tests.userstore.test_rule_conditions import state_of
from userstore_svc.core.models import TorrentState
from userstore_svc.core.rules.evaluate import compile_rule
from userstore_svc.core.rules.fields import STRING_OPERATORS
from userstore_svc.core.rules.model import Condition, Group
from userstore_svc.core.rules.schema import MAX_CONDITIONS, MAX_USER_CONDITIONS, parse_rule
from userstore_svc.ingest import OFFLOAD_WORK, SnapshotIn

AUTH = "c" * 64
BASE, NOW = state_of("seeding")
TEXT_FIELDS = {"NAME": "name", "TRACKER": "tracker", "ORIGINAL_URL": "original_url"}
# Few letters in both cases, so needles often hit and case matters.
texts = st.text(alphabet="aAbB.", max_size=6)


def _reference_condition(cond: Condition, state: TorrentState) -> bool | None:
    """The plain reading of one text condition: lower-case both sides, test, negate."""
    value = getattr(state.snap, TEXT_FIELDS[cond.type])
    if value is None or not cond.value:
        return None
    text, needle = value.lower(), str(cond.value).lower()
    result = {
        "contains": needle in text,
        "not_contains": needle not in text,
        "equals": text == needle,
        "not_equals": text != needle,
        "starts_with": text.startswith(needle),
        "ends_with": text.endswith(needle),
        "matches": re.search(str(cond.value), value, re.IGNORECASE) is not None,
    }[cond.operator]
    return not result if cond.negate else result


def _reference(group: Group, state: TorrentState) -> bool | None:
    """Kleene AND/OR over the parts, then the group's negation (unknown stays unknown)."""
    parts = [_reference_condition(c, state) for c in group.conditions]
    parts += [_reference(g, state) for g in group.groups]
    if not parts:
        return None
    decides = group.logic == "or"
    if decides in parts:
        result: bool | None = decides
    elif None in parts:
        result = None
    else:
        result = not decides
    return result if result is None or not group.negate else not result


conditions = st.fixed_dictionaries(
    {
        "type": st.sampled_from(sorted(TEXT_FIELDS)),
        "operator": st.sampled_from(STRING_OPERATORS),
        "value": texts,
        "negate": st.booleans(),
    }
)
groups = st.recursive(
    st.fixed_dictionaries(
        {
            "logicOperator": st.sampled_from(["and", "or"]),
            "negate": st.booleans(),
            "conditions": st.lists(conditions, max_size=6),
        }
    ),
    lambda inner: st.fixed_dictionaries(
        {
            "logicOperator": st.sampled_from(["and", "or"]),
            "negate": st.booleans(),
            "conditions": st.lists(conditions, max_size=4),
            "groups": st.lists(inner, max_size=2),
        }
    ),
    max_leaves=4,
)


@settings(max_examples=400, deadline=None)
@given(
    root=st.lists(groups, min_size=1, max_size=2),
    logic=st.sampled_from(["and", "or"]),
    name=texts,
    tracker=st.none() | texts,
    url=st.none() | texts,
)
def test_text_conditions_match_the_plain_reading(
    root: list[dict[str, Any]], logic: str, name: str, tracker: str | None, url: str | None
) -> None:
    doc = {
        "name": "r",
        "logicOperator": logic,
        "groups": root,
        "action": {"type": "stop_seeding"},
    }
    rule = parse_rule(doc)
    state = BASE._replace(snap=BASE.snap._replace(name=name, tracker=tracker, original_url=url))
    expected = _reference(rule.root, state)
    assert compile_rule(rule).test(state, NOW, {}, {}, None) is expected


def _heavy(rules: int, conditions: int = MAX_CONDITIONS) -> list[dict[str, Any]]:
    return [
        {
            "name": f"heavy {r}",
            "trigger": {"type": "interval", "value": 0},
            "dry_run": True,
            "action": {"type": "delete"},
            "groups": [
                {
                    "logicOperator": "or",
                    "conditions": [
                        {"type": "NAME", "operator": "contains", "value": f"x{r}-{c}"}
                        for c in range(conditions)
                    ],
                }
            ],
        }
        for r in range(rules)
    ]


async def test_a_rule_set_over_the_user_bound_is_refused_naming_the_field(store: Store) -> None:
    await store.users.register(AUTH, b"x")
    full = MAX_USER_CONDITIONS // MAX_CONDITIONS
    with pytest.raises(InvalidArgument) as refused:
        await store.rules.save_all(AUTH, _heavy(full + 1))
    assert refused.value.field == "rules"
    assert str(MAX_USER_CONDITIONS) in refused.value.message
    # Exactly at the bound (a sixth rule without conditions): accepted.
    saved = await store.rules.save_all(AUTH, _heavy(full) + _heavy(1, 0))
    one = {"groups": [{"conditions": [{"type": "NAME", "operator": "contains", "value": "a"}]}]}
    # Growing a rule past the bound is refused too, naming its conditions; shrinking is not.
    with pytest.raises(InvalidArgument) as refused:
        await store.rules.update(AUTH, saved[-1]["id"], one)
    assert refused.value.field == "groups"
    await store.rules.update(AUTH, saved[0]["id"], one)
    await store.rules.update(AUTH, saved[-1]["id"], one)
    await store.rules.update(AUTH, saved[1]["id"], {"enabled": False})


async def test_a_heavy_poll_runs_off_the_loop_with_the_same_plan(store: Store) -> None:
    await store.users.register(AUTH, b"x")
    await store.rules.save_all(AUTH, _heavy(1))
    matching = [snap("seeding", id=i, name=f"show x0-{i % 100} 1080p") for i in range(1, 600)]
    assert 100 * len(matching) > OFFLOAD_WORK

    def poll(at: float) -> SnapshotIn:
        return SnapshotIn(f"p{at}", AUTH, at, True, matching, 60.0)

    await store.ingestor.ingest(poll(NOW))
    plan = await store.ingestor.ingest(poll(NOW + 60))
    assert store.ingestor.offloaded == 2
    # 600 items x 100 conditions is several slices of work: the thread gave the loop its turns.
    assert store.ingestor.turns > 0
    assert plan.applied
    # A dry run: every torrent matched and was logged, nothing was sent.
    assert plan.actions == []
    logs = await store.rules.logs(AUTH, 1, 10)
    assert logs
    assert logs[0].items_processed == len(matching)
