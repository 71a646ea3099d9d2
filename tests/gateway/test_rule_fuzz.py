"""Thousands of generated rule bodies through the real gateway and userstore: never a 5xx.

Three generators: rules built from the contract's vocabulary (mostly valid), the same with every
part liable to be wrong (types, unknown condition types and operators, deep nesting, huge strings,
invalid regular expressions), and bodies that are not rule lists at all (other JSON, raw bytes).
Every answer must be 2xx or 4xx in the contract's shape, and every 400 must name a field.
Run with ``--hypothesis-show-statistics`` to see how many examples each test ran.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.support import Reply, User, assert_error

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

NUMBER_TYPES = [
    "RATIO", "SEEDING_TIME", "AGE", "DOWNLOAD_STALLED_TIME", "UPLOAD_STALLED_TIME",
    "LAST_DOWNLOAD_ACTIVITY_AT", "LAST_UPLOAD_ACTIVITY_AT", "PROGRESS", "DOWNLOAD_SPEED",
    "UPLOAD_SPEED", "AVG_DOWNLOAD_SPEED", "AVG_UPLOAD_SPEED", "ETA", "SEEDS", "PEERS",
    "AVAILABILITY", "FILE_COUNT", "TOTAL_UPLOADED", "TOTAL_DOWNLOADED", "FILE_SIZE", "EXPIRES_AT",
    "DOWNLOADING_TIME", "ACTIVE_TIME", "STALL_COUNT", "PROGRESS_CHANGE", "MAX_DOWNLOAD_SPEED",
]  # fmt: skip
TEXT_TYPES = ["NAME", "TRACKER", "ORIGINAL_URL"]
BOOL_TYPES = [
    "PRIVATE", "CACHED", "IS_ACTIVE", "SEEDING_ENABLED", "LONG_TERM_SEEDING", "IS_AIRLOCKED",
    "ALLOW_ZIP",
]  # fmt: skip
TAG_OPS = ["is_any_of", "is_all_of", "is_none_of", "is_set", "is_not_set", "has_any", "has_all"]
NUMBER_OPS = ["gt", "lt", "gte", "lte", "eq"]
TEXT_OPS = ["contains", "not_contains", "equals", "not_equals", "starts_with", "ends_with"]
STATUSES = ["queued", "downloading", "seeding", "uploading", "stalled", "completed", "inactive"]
ACTIONS = [
    "stop_seeding", "pause", "resume", "delete", "archive", "force_start", "reannounce",
    "add_airlock", "remove_airlock",
]  # fmt: skip
tag_ids = st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True)
EVENTS = ["TORRENT_ADDED", "TORRENT_STALLED", "TORRENT_COMPLETED", "TORRENT_RATIO_REACHED"]
BAD_PATTERNS = ["(", "[a-", "a{2,1}", "(?P<n", "\\", "*", "a**", "(?<=a)b", "(a)\\1", "\\p{Nope}"]
GOOD_PATTERNS = [r"^ubuntu", r"\.iso$", r"(720|1080)p", r"s\d{2}e\d{2}", "x265|hevc"]
EXAMPLES = {"valid": 1000, "mutated": 1500, "other": 500}
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one user per test, on purpose: saves replace all
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
huge_text = st.integers(5_000, 200_000).map(lambda n: "x" * n)
number = (
    st.integers(-5, 10_000) | st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.25, 1.5])
)


@st.composite
def condition(draw: st.DrawFn) -> dict[str, Any]:
    """A condition that fits its type (a valid one)."""
    kind = draw(st.sampled_from(["number", "text", "status", "bool", "tags"]))
    doc: dict[str, Any]
    if kind == "number":
        field = draw(st.sampled_from(NUMBER_TYPES))
        doc = {"type": field, "operator": draw(st.sampled_from(NUMBER_OPS)), "value": draw(number)}
        if field in ("AVG_DOWNLOAD_SPEED", "AVG_UPLOAD_SPEED", "PROGRESS_CHANGE"):
            doc["hours"] = draw(st.sampled_from([0.5, 1, 6, 24]))
    elif kind == "text":
        operator = draw(st.sampled_from([*TEXT_OPS, "matches"]))
        value = (
            draw(st.sampled_from(GOOD_PATTERNS))
            if operator == "matches"
            else draw(st.text(max_size=30))  # "" is the editor's default: it matches nothing
        )
        doc = {"type": draw(st.sampled_from(TEXT_TYPES)), "operator": operator, "value": value}
    elif kind == "status":
        doc = {
            "type": "STATUS",
            "operator": draw(st.sampled_from(["is_any_of", "is_none_of"])),
            "value": draw(st.lists(st.sampled_from(STATUSES), max_size=3)),
        }
    elif kind == "tags":
        ids = draw(st.lists(st.integers(1, 50) | st.integers(1, 50).map(str), max_size=3))
        doc = {"type": "TAGS", "operator": draw(st.sampled_from(TAG_OPS)), "value": ids}
    else:
        doc = {
            "type": draw(st.sampled_from(BOOL_TYPES)),
            "operator": draw(st.sampled_from(["is_true", "is_false"])),
        }
    if draw(st.booleans()):
        doc["for_minutes"] = draw(st.sampled_from([0, 0.25, 5, 60]))
    if draw(st.booleans()):
        doc["negate"] = draw(st.booleans())
    return doc


def group(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """A group of valid conditions, nested at most `depth` more levels."""
    nested = st.lists(group(depth - 1), max_size=2) if depth > 0 else st.just([])
    return st.fixed_dictionaries(
        {
            "logicOperator": st.sampled_from(["and", "or"]),
            "conditions": st.lists(condition(), max_size=4),
        },
        optional={"groups": nested, "negate": st.booleans()},
    )


@st.composite
def valid_rule(draw: st.DrawFn) -> dict[str, Any]:
    """A rule as the contract describes it (TBM's editor plus our extensions)."""
    trigger = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"type": st.just("interval"), "value": st.sampled_from([0, 0.5, 30, 60, 1440])}
            ),
            st.fixed_dictionaries(
                {
                    "type": st.just("event"),
                    "events": st.lists(st.sampled_from(EVENTS), min_size=1, max_size=3),
                }
            ),
        )
    )
    doc: dict[str, Any] = {
        "name": draw(st.text(min_size=1, max_size=60).filter(str.strip)),
        "enabled": draw(st.booleans()),
        "assetTypes": ["torrent"],
        "trigger": trigger,
        "logicOperator": draw(st.sampled_from(["and", "or"])),
        "groups": draw(st.lists(group(2), max_size=3)),
        "action": draw(
            st.fixed_dictionaries({"type": st.sampled_from(ACTIONS)})
            | st.fixed_dictionaries(
                {"type": st.sampled_from(["add_tag", "remove_tag"]), "tagIds": tag_ids}
            )
        ),
    }
    optional = {
        "cooldown_minutes": st.none() | st.sampled_from([0, 1.5, 60]),
        "dry_run": st.booleans(),
        "max_actions_per_run": st.none() | st.integers(1, 50),
        "metadata": json_value,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            doc[name] = draw(strategy)
    return doc


def deep_group(levels: int) -> dict[str, Any]:
    """Groups nested `levels` deep (the userstore allows five)."""
    doc: dict[str, Any] = {"conditions": [{"type": "RATIO", "operator": "gt", "value": 1}]}
    for _ in range(levels):
        doc = {"logicOperator": "and", "conditions": [], "groups": [doc]}
    return doc


junk = st.one_of(
    json_value,
    huge_text,
    st.sampled_from([None, True, 0, -1, 1e300, "", [], {}, "NaN", "and", "AND"]),
)


@st.composite
def mutated_rule(draw: st.DrawFn) -> Any:
    """A valid rule with one to three parts replaced by something wrong, or wrong outright."""
    doc = draw(valid_rule())
    if draw(st.integers(0, 20)) == 0:
        return draw(junk)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(
            st.sampled_from(
                [
                    "name", "enabled", "assetTypes", "trigger", "trigger.value", "trigger.type",
                    "trigger.events", "logicOperator", "groups", "action", "action.type", "id",
                    "action.tagIds",
                    "cooldown_minutes", "dry_run", "max_actions_per_run", "condition.type",
                    "condition.operator", "condition.value", "condition.hours", "regex", "deep",
                    "huge_name", "huge_value", "conditions", "metadata", "legacy", "drop",
                ]
            )
        )  # fmt: skip
        groups = doc.get("groups")
        conditions = [
            c
            for g in (groups if isinstance(groups, list) else [])
            if isinstance(g, dict) and isinstance(g.get("conditions"), list)
            for c in g["conditions"]
            if isinstance(c, dict)
        ]
        if where == "deep":
            doc["groups"] = [deep_group(draw(st.integers(3, 40)))]
        elif where == "huge_name":
            doc["name"] = draw(huge_text)
        elif where == "huge_value":
            doc["groups"] = [
                {"conditions": [{"type": "NAME", "operator": "contains", "value": draw(huge_text)}]}
            ]
        elif where == "regex":
            pattern = draw(st.sampled_from(BAD_PATTERNS) | st.text(max_size=12) | huge_text)
            doc["groups"] = [
                {
                    "conditions": [
                        {
                            "type": draw(st.sampled_from(TEXT_TYPES)),
                            "operator": "matches",
                            "value": pattern,
                        }
                    ]
                }
            ]
        elif where == "legacy":
            doc.pop("groups", None)
            doc["conditions"] = draw(st.lists(condition() | junk, max_size=3) | junk)
        elif where == "drop":
            doc.pop(draw(st.sampled_from(sorted(doc))), None)
        elif where.startswith("condition.") and conditions:
            target = draw(st.sampled_from(conditions))
            key = where.split(".", 1)[1]
            target[key] = draw(
                st.sampled_from(["WIBBLE", "ratio", "gte ", "between", "matches", "is_true"]) | junk
            )
        elif "." in where and isinstance(doc.get(where.split(".")[0]), dict):
            head, key = where.split(".")
            doc[head][key] = draw(
                junk | st.sampled_from(["interval", "event", "explode", "TORRENT_NOPE"])
            )
        else:
            doc[where] = draw(junk | st.integers(-(2**70), 2**70))
    return doc


def check(reply: Reply, sent: int | None) -> None:
    """2xx with the saved rules, or 4xx in the contract's error shape (a 400 naming a field)."""
    status, body, _headers = reply
    assert status < 500, (status, body)
    assert status != 429, body  # limits are generous here: a 429 would be a misread status
    if status < 300:
        assert body["success"] is True, body
        if sent is not None:
            assert len(body["rules"]) == sent
            for saved in body["rules"]:
                assert isinstance(saved["id"], int)
        return
    assert_error(reply, status)


@settings(FUZZ, max_examples=EXAMPLES["valid"])
@given(rules=st.lists(valid_rule(), min_size=0, max_size=4))
async def test_valid_rules_are_saved(user: User, rules: list[dict[str, Any]]) -> None:
    """Rules built from the contract's vocabulary save (200) and read back as saved."""
    reply = await user.call("POST", "/api/automation/rules", json={"rules": rules})
    check(reply, len(rules))
    assert reply[0] == 200, reply[1]
    listed = (await user.ok("GET", "/api/automation/rules"))["rules"]
    assert [r["name"] for r in listed] == [r["name"].strip() for r in rules]
    for sent, saved in zip(rules, listed, strict=True):
        assert saved["action"] == sent["action"]
        assert saved["trigger"]["type"] == sent["trigger"]["type"]
        if "metadata" in sent:
            assert saved["metadata"] == sent["metadata"]


@settings(FUZZ, max_examples=EXAMPLES["mutated"])
@given(rules=st.lists(mutated_rule() | valid_rule(), min_size=1, max_size=3))
async def test_mutated_rules_never_5xx(user: User, rules: list[Any]) -> None:
    """Wrong types, unknown vocabulary, deep nesting, huge strings: 2xx or a 4xx naming a field."""
    reply = await user.call("POST", "/api/automation/rules", json={"rules": rules})
    check(reply, len(rules))
    if reply[0] == 400:
        assert reply[1]["field"].startswith(("rules", "body")), reply[1]
    # The same documents through preview and PUT, which validate single rules.
    preview = await user.call("POST", "/api/automation/rules/preview", json=rules[0])
    check(preview, None)


@settings(FUZZ, max_examples=EXAMPLES["other"])
@given(
    payload=st.one_of(
        json_value.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"rules": junk}).map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.integers(1, 30_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 30_000).map(lambda n: b'{"rules":' * n),
    )
)
async def test_other_bodies_never_5xx(user: User, payload: bytes) -> None:
    """Bodies that are not a rule list (other JSON, raw bytes, deep arrays) are named 4xx."""
    for method, path in (("POST", "/api/automation/rules"), ("PUT", "/api/automation/rules/1")):
        reply = await user.call(
            method, path, data=payload, headers={"Content-Type": "application/json"}
        )
        check(reply, None)
