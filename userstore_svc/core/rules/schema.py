"""TBM's rule JSON in and out: validation that names the rule and the field, and normalisation.

Everything a rule can get wrong is caught here, at save time: unknown condition types, operators
that do not fit the type, values of the wrong kind, invalid regular expressions. Evaluation then
never meets a bad rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import re2

from common.errors import InvalidArgument
from userstore_svc.core import speeds
from userstore_svc.core.rules.fields import FIELDS, FIELDS_BY_TYPE, OPERATORS, TAGS_ALIASES
from userstore_svc.core.rules.model import (
    ACTIONS,
    EVENT_TYPES,
    TAG_ACTIONS,
    Condition,
    Group,
    Rule,
    Trigger,
    iter_conditions,
)
from userstore_svc.core.status import STATUSES

MAX_NAME = 200
MAX_PATTERN = 1000
MAX_DEPTH = 5
MAX_CONDITIONS = 100
# All of one user's rules together (see "Limits" in docs/rules.md): each condition is tested on
# every item each poll, so this bounds a poll's rule work at this many tests per torrent.
MAX_USER_CONDITIONS = 500
MAX_RULES = 200
MAX_TAG_IDS = 100
# TBM's editor keeps a little state of its own in `metadata`; we store it as it comes but bound
# it (compact UTF-8 JSON), per rule here and per user in the rules service: an unbounded field
# would let one user grow the store and their own rule list past what a read can carry.
MAX_METADATA_BYTES = 16 * 1024
ASSET_TYPES = ("torrent", "usenet", "webdl")
# What TBM allows on usenet and web downloads: stop_seeding and archive are torrent-only, and so
# are our own pause, resume and reannounce.
ALL_ASSET_ACTIONS = frozenset(
    {"delete", "force_start", "add_tag", "remove_tag", "add_airlock", "remove_airlock"}
)


def regex_options() -> re2.Options:
    """RE2 options for user patterns: case-insensitive, bounded memory, quiet on errors."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 8 << 20
    return options


def json_bytes(value: Any) -> int:
    """The size of a JSON value as stored (compact, UTF-8); 0 for None."""
    if value is None:
        return 0
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError):
        # Not JSON at all: no size we could store, so over any limit.
        return MAX_METADATA_BYTES + 1


def _quote(value: object, limit: int = 60) -> str:
    """A value quoted for an error message, cut short: messages must not echo huge inputs."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Ctx:
    """Builds error messages that name the rule (by position and name) and the field."""

    def __init__(self, index: int | None, name: str, prefix: str) -> None:
        self.index = index
        self.name = name
        self.prefix = prefix

    def fail(self, path: str, reason: str) -> InvalidArgument:
        label = f"Rule {self.index + 1}" if self.index is not None else "Rule"
        if self.name:
            label += f" ({_quote(self.name, 60)[1:-1]})"
        field = f"{self.prefix}{path}" if path else self.prefix.rstrip(".")
        return InvalidArgument(f"{label}: {path or 'rule'}: {reason}", field=field or None)


def parse_rule(doc: Any, *, index: int | None = None, prefix: str = "") -> Rule:
    """Validate one rule document and return its frozen form (raises InvalidArgument)."""
    if not isinstance(doc, Mapping):
        raise InvalidArgument(
            f"Rule {index + 1 if index is not None else ''}: must be a JSON object".replace(
                "Rule :", "Rule:"
            ),
            field=prefix.rstrip(".") or "rule",
        )
    raw_name = doc.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    ctx = _Ctx(index, name, prefix)
    if not name:
        raise ctx.fail("name", "is required (a non-empty string)")
    if len(name) > MAX_NAME:
        raise ctx.fail("name", f"is longer than {MAX_NAME} characters")

    rule_id = doc.get("id")
    if rule_id is not None and (
        isinstance(rule_id, bool) or not isinstance(rule_id, int) or rule_id <= 0
    ):
        if isinstance(rule_id, str) and rule_id.isdigit() and int(rule_id) > 0:
            rule_id = int(rule_id)
        else:
            raise ctx.fail("id", "must be a positive integer")

    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ctx.fail("enabled", "must be true or false")

    asset_types = _asset_types(doc.get("assetTypes", ["torrent"]), ctx)
    trigger = _trigger(doc.get("trigger"), ctx)
    action, tag_ids = _action(doc.get("action"), ctx)
    root = _root(doc, ctx)
    if asset_types != ("torrent",):
        _fits_every_asset_type(root, action, asset_types, ctx)

    cooldown = _optional_number(doc.get("cooldown_minutes"), ctx, "cooldown_minutes", minimum=0)
    max_actions = doc.get("max_actions_per_run")
    if max_actions is not None and (
        isinstance(max_actions, bool) or not isinstance(max_actions, int) or max_actions < 1
    ):
        raise ctx.fail("max_actions_per_run", "must be a whole number of at least 1")
    dry_run = doc.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ctx.fail("dry_run", "must be true or false")
    metadata = doc.get("metadata")
    if json_bytes(metadata) > MAX_METADATA_BYTES:
        raise ctx.fail("metadata", f"is larger than {MAX_METADATA_BYTES // 1024} KiB as JSON")

    return Rule(
        id=rule_id,
        name=name,
        enabled=enabled,
        trigger=trigger,
        root=root,
        action=action,
        cooldown_minutes=cooldown,
        dry_run=dry_run,
        max_actions_per_run=max_actions,
        asset_types=asset_types,
        metadata=metadata,
        tag_ids=tag_ids,
    )


def parse_rules(docs: Any) -> list[Rule]:
    """Validate a replace-all list of rules (raises InvalidArgument naming the first bad one)."""
    if not isinstance(docs, list):
        raise InvalidArgument("rules must be a JSON array", field="rules")
    if len(docs) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} rules", field="rules")
    rules = [parse_rule(doc, index=i, prefix=f"rules[{i}].") for i, doc in enumerate(docs)]
    ids = [rule.id for rule in rules if rule.id is not None]
    if len(ids) != len(set(ids)):
        raise InvalidArgument("two rules carry the same id", field="rules")
    check_user_conditions(rules, field="rules")
    return rules


def check_user_conditions(rules: list[Rule], *, field: str) -> None:
    """Refuse a rule set testing more than MAX_USER_CONDITIONS conditions in all."""
    total = sum(len(iter_conditions(rule.root)) for rule in rules)
    if total > MAX_USER_CONDITIONS:
        raise InvalidArgument(
            f"a user's rules may have at most {MAX_USER_CONDITIONS} conditions in all "
            f"(these have {total})",
            field=field,
        )


def _asset_types(value: Any, ctx: _Ctx) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ctx.fail("assetTypes", "must be a non-empty list")
    types = sorted({str(item) for item in value})
    unknown = [t for t in types if t not in ASSET_TYPES]
    if unknown:
        raise ctx.fail("assetTypes", f"unknown asset type {_quote(unknown[0])}")
    return tuple(types)


def _fits_every_asset_type(
    root: Group, action: str, asset_types: tuple[str, ...], ctx: _Ctx
) -> None:
    """A rule over usenet or web downloads may use only what every one of its types has.

    The error names the condition and the types it does not fit.
    """
    others = ", ".join(t for t in asset_types if t != "torrent")
    for cond in iter_conditions(root):
        misfits = [t for t in asset_types if cond.type not in FIELDS_BY_TYPE[t]]
        if misfits:
            raise ctx.fail(
                f"{cond.path}.type",
                f"{cond.type} applies to torrents only; this rule's assetTypes include "
                f"{', '.join(misfits)}",
            )
    if action not in ALL_ASSET_ACTIONS:
        raise ctx.fail(
            "action.type",
            f"{action} applies to torrents only; this rule's assetTypes include {others}",
        )


def _trigger(value: Any, ctx: _Ctx) -> Trigger:
    if value is None:
        return Trigger("interval", 30.0)
    if not isinstance(value, Mapping):
        raise ctx.fail("trigger", "must be an object")
    kind = value.get("type", "interval")
    if kind == "interval":
        minutes = _number(value.get("value", 30), ctx, "trigger.value")
        if minutes < 0:
            raise ctx.fail("trigger.value", "must be 0 (every poll) or more minutes")
        return Trigger("interval", minutes)
    if kind == "event":
        events = value.get("events")
        if not isinstance(events, list) or not events:
            raise ctx.fail("trigger.events", "must list at least one event")
        for i, event in enumerate(events):
            if event not in EVENT_TYPES:
                raise ctx.fail(
                    f"trigger.events[{i}]",
                    f"unknown event {_quote(event)} ({', '.join(EVENT_TYPES)})",
                )
        return Trigger("event", events=tuple(dict.fromkeys(events)))
    raise ctx.fail("trigger.type", f"unknown trigger type {_quote(kind)} (interval or event)")


def _action(value: Any, ctx: _Ctx) -> tuple[str, tuple[int, ...]]:
    """The action's type, and the tag ids of a tag action (TBM: `tagIds`, at least one)."""
    if not isinstance(value, Mapping) or "type" not in value:
        raise ctx.fail("action", "must be an object with a type")
    kind = value.get("type")
    if kind not in ACTIONS:
        raise ctx.fail("action.type", f"unknown action {_quote(kind)} ({', '.join(ACTIONS)})")
    if kind not in TAG_ACTIONS:
        return str(kind), ()
    raw = value.get("tagIds")
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("action.tagIds", "must be a non-empty list of tag ids (positive integers)")
    return str(kind), _tag_ids(raw, ctx, "action.tagIds")


def _tag_ids(raw: list[Any], ctx: _Ctx, path: str) -> tuple[int, ...]:
    """Positive integers (numbers or numeric strings, as TBM accepts), de-duplicated in order."""
    if len(raw) > MAX_TAG_IDS:
        raise ctx.fail(path, f"at most {MAX_TAG_IDS} tag ids")
    ids: list[int] = []
    for i, item in enumerate(raw):
        number: int | None = None
        if isinstance(item, int) and not isinstance(item, bool):
            number = item
        elif isinstance(item, float) and item.is_integer():
            number = int(item)
        elif isinstance(item, str) and item.strip().isdigit() and len(item.strip()) <= 18:
            number = int(item.strip())
        if number is None or number <= 0 or number >= 2**63:
            raise ctx.fail(f"{path}[{i}]", f"{_quote(item)} is not a tag id (a positive integer)")
        ids.append(number)
    return tuple(dict.fromkeys(ids))


def _logic(value: Any, ctx: _Ctx, path: str) -> str:
    if value is None:
        return "and"
    if not isinstance(value, str) or value.lower() not in ("and", "or"):
        raise ctx.fail(path, "must be 'and' or 'or'")
    return value.lower()


def _root(doc: Mapping[str, Any], ctx: _Ctx) -> Group:
    groups = doc.get("groups")
    counter = [0]
    if groups is None and "conditions" in doc:
        # TBM's legacy flat form: one group of conditions.
        legacy = {"logicOperator": doc.get("logicOperator"), "conditions": doc.get("conditions")}
        group = _group(legacy, ctx, "conditions", 1, counter, legacy_path=True)
        return Group("", "and", (), (group,))
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise ctx.fail("groups", "must be a list")
    return Group(
        "",
        _logic(doc.get("logicOperator"), ctx, "logicOperator"),
        (),
        tuple(_group(g, ctx, f"groups[{i}]", 1, counter) for i, g in enumerate(groups)),
    )


def _group(
    value: Any, ctx: _Ctx, path: str, depth: int, counter: list[int], legacy_path: bool = False
) -> Group:
    if depth > MAX_DEPTH:
        raise ctx.fail(path, f"groups nest deeper than {MAX_DEPTH} levels")
    if not isinstance(value, Mapping):
        raise ctx.fail(path, "must be an object")
    conditions = value.get("conditions", [])
    if not isinstance(conditions, list):
        raise ctx.fail(f"{path}.conditions" if not legacy_path else path, "must be a list")
    nested = value.get("groups", [])
    if not isinstance(nested, list):
        raise ctx.fail(f"{path}.groups", "must be a list")
    negate = value.get("negate", False)
    if not isinstance(negate, bool):
        raise ctx.fail(f"{path}.negate", "must be true or false")
    parsed: list[Condition] = []
    for i, cond in enumerate(conditions):
        cpath = f"{path}[{i}]" if legacy_path else f"{path}.conditions[{i}]"
        counter[0] += 1
        if counter[0] > MAX_CONDITIONS:
            raise ctx.fail(cpath, f"a rule may have at most {MAX_CONDITIONS} conditions")
        parsed.append(_condition(cond, ctx, cpath))
    return Group(
        path,
        _logic(value.get("logicOperator"), ctx, f"{path}.logicOperator"),
        tuple(parsed),
        tuple(
            _group(g, ctx, f"{path}.groups[{i}]", depth + 1, counter) for i, g in enumerate(nested)
        ),
        negate,
    )


def _condition(value: Any, ctx: _Ctx, path: str) -> Condition:
    if not isinstance(value, Mapping):
        raise ctx.fail(path, "must be an object")
    kind = value.get("type")
    field = FIELDS.get(kind) if isinstance(kind, str) else None
    if field is None or not isinstance(kind, str):
        raise ctx.fail(f"{path}.type", f"unknown condition type {_quote(kind)}")
    operators = OPERATORS[field.kind]
    operator = value.get("operator")
    if field.kind == "status" and operator is None:
        operator = "is_any_of"
    if field.kind == "tags" and isinstance(operator, str):
        operator = TAGS_ALIASES.get(operator, operator)
    if operator not in operators:
        raise ctx.fail(
            f"{path}.operator",
            f"{_quote(operator)} is not an operator for {kind} ({', '.join(operators)})",
        )
    raw = value.get("value")
    parsed: Any
    if field.kind == "number":
        parsed = _number(raw, ctx, f"{path}.value")
    elif field.kind == "string":
        # "" is TBM's editor default: accepted, and it matches nothing (evaluate.py).
        if not isinstance(raw, str):
            raise ctx.fail(f"{path}.value", "must be a string")
        if operator == "matches" and raw:
            if len(raw) > MAX_PATTERN:
                raise ctx.fail(f"{path}.value", f"pattern longer than {MAX_PATTERN} characters")
            try:
                re2.compile(raw, regex_options())
            except Exception as exc:
                reason = (
                    exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
                )
                raise ctx.fail(f"{path}.value", f"invalid regular expression: {reason}") from None
        parsed = raw
    elif field.kind == "status":
        items = raw if isinstance(raw, list) else [raw]
        words = [item.lower() for item in items if isinstance(item, str)]
        # An empty list is TBM's editor default: accepted, and it matches nothing.
        if len(words) != len(items):
            raise ctx.fail(f"{path}.value", "must be a status or a list of statuses")
        unknown = [word for word in words if word not in STATUSES]
        if unknown:
            raise ctx.fail(
                f"{path}.value", f"unknown status {_quote(unknown[0])} ({', '.join(STATUSES)})"
            )
        parsed = tuple(sorted(set(words)))
    elif field.kind == "tags":
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise ctx.fail(f"{path}.value", "must be a list of tag ids")
        parsed = _tag_ids(raw, ctx, f"{path}.value")
    else:
        parsed = None

    hours = None
    if field.needs_hours or value.get("hours") is not None:
        hours = _number(value.get("hours", 1), ctx, f"{path}.hours")
        # A longer window would outrun the speed ring's history, which is sized by the same limit.
        if hours <= 0 or hours > speeds.MAX_WINDOW_HOURS:
            raise ctx.fail(
                f"{path}.hours", f"must be more than 0 and at most {speeds.MAX_WINDOW_HOURS}"
            )
    for_minutes = _optional_number(value.get("for_minutes"), ctx, f"{path}.for_minutes", minimum=0)
    negate = value.get("negate", False)
    if not isinstance(negate, bool):
        raise ctx.fail(f"{path}.negate", "must be true or false")
    return Condition(
        path=path,
        type=kind,
        operator=operator,
        value=parsed,
        hours=hours,
        for_minutes=for_minutes or None,
        negate=negate,
    )


def _number(value: Any, ctx: _Ctx, path: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ctx.fail(path, "must be a number")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ctx.fail(path, "must be a number") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ctx.fail(path, "must be a finite number")
    return float(value)


def _optional_number(value: Any, ctx: _Ctx, path: str, *, minimum: float) -> float | None:
    if value is None:
        return None
    number = _number(value, ctx, path)
    if number < minimum:
        raise ctx.fail(path, f"must be at least {minimum:g}")
    return number


# Serialisation --------------------------------------------------------------------------------


def _num_out(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def condition_doc(cond: Condition) -> dict[str, Any]:
    """A condition back in TBM's JSON shape."""
    doc: dict[str, Any] = {"type": cond.type, "operator": cond.operator}
    if isinstance(cond.value, float):
        doc["value"] = _num_out(cond.value)
    elif isinstance(cond.value, tuple):
        doc["value"] = list(cond.value)
    elif cond.value is not None:
        doc["value"] = cond.value
    if cond.hours is not None:
        doc["hours"] = _num_out(cond.hours)
    if cond.for_minutes is not None:
        doc["for_minutes"] = _num_out(cond.for_minutes)
    if cond.negate:
        doc["negate"] = True
    return doc


def group_doc(group: Group) -> dict[str, Any]:
    """A group back in TBM's JSON shape (nested groups only when present)."""
    doc: dict[str, Any] = {
        "logicOperator": group.logic,
        "conditions": [condition_doc(c) for c in group.conditions],
    }
    if group.groups:
        doc["groups"] = [group_doc(g) for g in group.groups]
    if group.negate:
        doc["negate"] = True
    return doc


def rule_doc(rule: Rule) -> dict[str, Any]:
    """The normalised rule document (without the stored bookkeeping fields)."""
    trigger: dict[str, Any]
    if rule.trigger.kind == "event":
        trigger = {"type": "event", "events": list(rule.trigger.events)}
    else:
        trigger = {"type": "interval", "value": _num_out(rule.trigger.interval_minutes)}
    doc: dict[str, Any] = {
        "name": rule.name,
        "enabled": rule.enabled,
        "assetTypes": list(rule.asset_types),
        "trigger": trigger,
        "logicOperator": rule.root.logic,
        "groups": [group_doc(g) for g in rule.root.groups],
        "action": {"type": rule.action, "tagIds": list(rule.tag_ids)}
        if rule.tag_ids
        else {"type": rule.action},
        "cooldown_minutes": None
        if rule.cooldown_minutes is None
        else _num_out(rule.cooldown_minutes),
        "dry_run": rule.dry_run,
        "max_actions_per_run": rule.max_actions_per_run,
        "metadata": rule.metadata,
    }
    return doc
