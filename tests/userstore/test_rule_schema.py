"""Rule validation at save time: every bad rule is refused with its rule and field named."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidArgument
from userstore_svc.core.rules.schema import parse_rule, parse_rules, rule_doc


def doc(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Stop at 1",
        "enabled": True,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 30},
        "logicOperator": "and",
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "RATIO", "operator": "gte", "value": 1}],
            }
        ],
        "action": {"type": "stop_seeding"},
    }
    base.update(overrides)
    return base


def cond(**fields: Any) -> dict[str, Any]:
    return doc(groups=[{"logicOperator": "and", "conditions": [fields]}])


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [
        (doc(name=""), "rules[0].name", "required"),
        (doc(name=5), "rules[0].name", "required"),
        (doc(enabled="yes"), "rules[0].enabled", "true or false"),
        (
            doc(assetTypes=["usenet"]),
            "rules[0].groups[0].conditions[0].type",
            "RATIO applies to torrents only; this rule's assetTypes include usenet",
        ),
        (doc(assetTypes=[]), "rules[0].assetTypes", "non-empty"),
        (doc(assetTypes=["torrent", "ftp"]), "rules[0].assetTypes", "unknown asset type"),
        (doc(trigger={"type": "cron"}), "rules[0].trigger.type", "unknown trigger"),
        (
            doc(trigger={"type": "interval", "value": -1}),
            "rules[0].trigger.value",
            "0 (every poll)",
        ),
        (doc(trigger={"type": "interval", "value": "soon"}), "rules[0].trigger.value", "number"),
        (doc(trigger={"type": "event", "events": []}), "rules[0].trigger.events", "at least one"),
        (
            doc(trigger={"type": "event", "events": ["TORRENT_EXPLODED"]}),
            "rules[0].trigger.events[0]",
            "unknown event",
        ),
        (doc(action={"type": "tag_it"}), "rules[0].action.type", "unknown action"),
        (doc(action="delete"), "rules[0].action", "object"),
        (doc(logicOperator="xor"), "rules[0].logicOperator", "'and' or 'or'"),
        (
            cond(type="TAG", operator="is_any_of", value=[1]),
            "rules[0].groups[0].conditions[0].type",
            "unknown condition",
        ),
        (
            cond(type="RATIO", operator="contains", value=1),
            "rules[0].groups[0].conditions[0].operator",
            "not an operator for RATIO",
        ),
        (
            cond(type="RATIO", operator="gt", value="lots"),
            "rules[0].groups[0].conditions[0].value",
            "number",
        ),
        (
            cond(type="RATIO", operator="gt", value=True),
            "rules[0].groups[0].conditions[0].value",
            "number",
        ),
        (
            cond(type="NAME", operator="matches", value="(unclosed"),
            "rules[0].groups[0].conditions[0].value",
            "invalid regular expression",
        ),
        (
            cond(type="NAME", operator="contains", value=None),
            "rules[0].groups[0].conditions[0].value",
            "must be a string",
        ),
        (
            cond(type="STATUS", operator="is_any_of", value=["sleeping"]),
            "rules[0].groups[0].conditions[0].value",
            "unknown status",
        ),
        (
            cond(type="AVG_DOWNLOAD_SPEED", operator="lt", value=1, hours=169),
            "rules[0].groups[0].conditions[0].hours",
            "more than 0 and at most 168",
        ),
        (
            cond(type="PROGRESS_CHANGE", operator="lt", value=1, hours=0),
            "rules[0].groups[0].conditions[0].hours",
            "more than 0 and at most 168",
        ),
        (
            cond(type="RATIO", operator="gt", value=1, for_minutes=-5),
            "rules[0].groups[0].conditions[0].for_minutes",
            "at least 0",
        ),
        (doc(cooldown_minutes=-1), "rules[0].cooldown_minutes", "at least 0"),
        (doc(max_actions_per_run=0), "rules[0].max_actions_per_run", "at least 1"),
        (doc(dry_run="no"), "rules[0].dry_run", "true or false"),
        (doc(groups="all"), "rules[0].groups", "list"),
    ],
)
def test_invalid_rules_are_refused_naming_rule_and_field(
    rule: dict[str, Any], field: str, reason: str
) -> None:
    """Save-time validation names the rule (position and name) and the field, and says why."""
    with pytest.raises(InvalidArgument) as raised:
        parse_rules([rule])
    assert raised.value.field == field
    assert reason in raised.value.message
    assert raised.value.message.startswith("Rule 1")


def test_deep_nesting_is_refused() -> None:
    """Groups nested deeper than five levels are refused."""
    group: dict[str, Any] = {"conditions": [{"type": "RATIO", "operator": "gt", "value": 1}]}
    for _ in range(6):
        group = {"conditions": [], "groups": [group]}
    with pytest.raises(InvalidArgument, match="deeper"):
        parse_rule(doc(groups=[group]))


def test_the_second_rule_is_named_when_it_is_the_bad_one() -> None:
    """The error names the failing rule by its position and name."""
    with pytest.raises(InvalidArgument) as raised:
        parse_rules([doc(), doc(name="Broken", action={"type": "explode"})])
    assert raised.value.message.startswith("Rule 2 (Broken)")
    assert raised.value.field == "rules[1].action.type"


def test_not_a_list_and_duplicate_ids() -> None:
    """A replace-all body must be a list, and ids may not repeat."""
    with pytest.raises(InvalidArgument, match="array"):
        parse_rules({"name": "x"})
    with pytest.raises(InvalidArgument, match="same id"):
        parse_rules([doc(id=3), doc(id=3)])


def test_legacy_flat_conditions_are_accepted() -> None:
    """TBM's old flat `conditions` list becomes one AND group."""
    rule = parse_rule(
        {
            "name": "old",
            "conditions": [{"type": "SEEDS", "operator": "lt", "value": 1}],
            "action": {"type": "delete"},
        }
    )
    assert rule.root.groups[0].conditions[0].type == "SEEDS"


def test_normalised_document_round_trips() -> None:
    """A parsed rule written back and parsed again is the same rule."""
    original = doc(
        trigger={"type": "event", "events": ["TORRENT_STALLED"]},
        cooldown_minutes=15,
        max_actions_per_run=3,
        dry_run=True,
        metadata={"createdAt": 1},
        groups=[
            {
                "logicOperator": "or",
                "conditions": [
                    {"type": "NAME", "operator": "matches", "value": "x+", "negate": True},
                    {"type": "STATUS", "operator": "is_none_of", "value": ["seeding", "completed"]},
                    {
                        "type": "AVG_UPLOAD_SPEED",
                        "operator": "lt",
                        "value": 0.25,
                        "hours": 2,
                        "for_minutes": 30,
                    },
                ],
                "groups": [{"logicOperator": "and", "conditions": [], "negate": True}],
            }
        ],
    )
    first = parse_rule(original)
    again = parse_rule(rule_doc(first))
    assert again == first
    assert rule_doc(first)["metadata"] == {"createdAt": 1}


@pytest.mark.parametrize("hours", [0.25, 1, 24, 48, 167.5, 168])
@pytest.mark.parametrize("kind", ["AVG_DOWNLOAD_SPEED", "AVG_UPLOAD_SPEED", "PROGRESS_CHANGE"])
def test_windows_up_to_a_week_are_accepted(kind: str, hours: float) -> None:
    """Speed and progress windows may be anything above 0 up to 168 h (the ring keeps a week)."""
    condition = {"type": kind, "operator": "lt", "value": 1, "hours": hours}
    rule = parse_rule(doc(groups=[{"logicOperator": "and", "conditions": [condition]}]))
    assert rule.root.groups[0].conditions[0].hours == hours


def tag_rule(action: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A rule as TBM's editor writes a tag rule."""
    return doc(action=action, **overrides)


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [
        (tag_rule({"type": "add_tag"}), "rules[0].action.tagIds", "non-empty list"),
        (tag_rule({"type": "add_tag", "tagIds": []}), "rules[0].action.tagIds", "non-empty"),
        (tag_rule({"type": "remove_tag", "tagIds": 3}), "rules[0].action.tagIds", "list"),
        (tag_rule({"type": "add_tag", "tagIds": [1, 0]}), "rules[0].action.tagIds[1]", "tag id"),
        (tag_rule({"type": "add_tag", "tagIds": [-4]}), "rules[0].action.tagIds[0]", "tag id"),
        (tag_rule({"type": "add_tag", "tagIds": [True]}), "rules[0].action.tagIds[0]", "tag id"),
        (tag_rule({"type": "add_tag", "tagIds": ["x"]}), "rules[0].action.tagIds[0]", "tag id"),
        (tag_rule({"type": "add_tag", "tagIds": [1.5]}), "rules[0].action.tagIds[0]", "tag id"),
        (
            tag_rule({"type": "add_tag", "tagIds": list(range(1, 102))}),
            "rules[0].action.tagIds",
            "at most 100",
        ),
        (
            cond(type="TAGS", operator="is_any_of", value="3"),
            "rules[0].groups[0].conditions[0].value",
            "list of tag ids",
        ),
        (
            cond(type="TAGS", operator="is_all_of", value=[2, "abc"]),
            "rules[0].groups[0].conditions[0].value[1]",
            "tag id",
        ),
        (
            cond(type="TAGS", operator="contains", value=[2]),
            "rules[0].groups[0].conditions[0].operator",
            "not an operator for TAGS",
        ),
        (
            cond(type="IS_AIRLOCKED", operator="gt", value=1),
            "rules[0].groups[0].conditions[0].operator",
            "not an operator for IS_AIRLOCKED",
        ),
        (
            cond(type="ORIGINAL_URL", operator="contains", value=5),
            "rules[0].groups[0].conditions[0].value",
            "must be a string",
        ),
        (
            cond(type="STATUS", operator="is_any_of", value=[1]),
            "rules[0].groups[0].conditions[0].value",
            "status",
        ),
        (
            doc(assetTypes=["torrent", "webdl"], action={"type": "stop_seeding"}),
            "rules[0].groups[0].conditions[0].type",
            "torrents only",
        ),
        (
            doc(
                assetTypes=["torrent", "usenet"],
                groups=[{"conditions": [{"type": "AGE", "operator": "gt", "value": 1}]}],
                action={"type": "archive"},
            ),
            "rules[0].action.type",
            "archive applies to torrents only; this rule's assetTypes include usenet",
        ),
    ],
)
def test_invalid_tag_airlock_and_asset_rules_name_the_field(
    rule: dict[str, Any], field: str, reason: str
) -> None:
    """Tag and airlock actions, TAGS values and multi-asset rules are checked at save time."""
    with pytest.raises(InvalidArgument) as raised:
        parse_rules([rule])
    assert raised.value.field == field
    assert reason in raised.value.message


@pytest.mark.parametrize("operator", ["is_any_of", "is_all_of", "is_none_of"])
def test_tag_operator_aliases_are_stored_under_the_editor_names(operator: str) -> None:
    """has_any / has_all / has_none are accepted and written back as TBM's editor names them."""
    alias = {"is_any_of": "has_any", "is_all_of": "has_all", "is_none_of": "has_none"}[operator]
    rule = parse_rule(cond(type="TAGS", operator=alias, value=[3, "5", 3]))
    written = rule_doc(rule)["groups"][0]["conditions"][0]
    assert written == {"type": "TAGS", "operator": operator, "value": [3, 5]}


def test_what_tbms_editor_writes_is_accepted_and_round_trips() -> None:
    """Editor defaults (empty STATUS, empty text, empty tags), tag and airlock actions, usenet
    and webdl asset types, and a 168-hour average all save and read back unchanged."""
    conditions = [
        {"type": "STATUS", "operator": "is_any_of", "value": []},
        {"type": "NAME", "operator": "contains", "value": ""},
        {"type": "ORIGINAL_URL", "operator": "starts_with", "value": ""},
        {"type": "TAGS", "operator": "is_any_of", "value": []},
        {"type": "TAGS", "operator": "is_set", "value": []},
        {"type": "IS_AIRLOCKED", "operator": "is_true", "value": True},
        {"type": "ALLOW_ZIP", "operator": "is_false", "value": True},
    ]
    for action in (
        {"type": "add_tag", "tagIds": [3, 7]},
        {"type": "remove_tag", "tagIds": [1]},
        {"type": "add_airlock"},
        {"type": "remove_airlock"},
    ):
        original = doc(
            assetTypes=["webdl", "torrent", "usenet", "usenet"],
            groups=[{"logicOperator": "or", "conditions": conditions}],
            action=action,
        )
        rule = parse_rule(original)
        assert rule.asset_types == ("torrent", "usenet", "webdl")
        written = rule_doc(rule)
        assert written["action"] == action
        assert parse_rule(written) == rule
    hours = cond(type="AVG_UPLOAD_SPEED", operator="lt", value=1, hours="168")
    assert parse_rule(hours).root.groups[0].conditions[0].hours == 168
