"""REST handlers for automation rules: CRUD, logs, manual runs, previews and presets."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, ClassVar

from aiohttp import web
from pydantic import ConfigDict
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common.errors import InvalidArgument
from gateway import bodies
from gateway.api import Answer, Message, Query, Route, answer, query, whole
from gateway.handlers import Handlers
from gateway.inputs import path_id
from gateway.jsonview import to_json

RULE = {"$ref": "#/components/schemas/Rule"}
RULES = {"type": "array", "items": RULE}


class Rules(Answer):
    """Every rule of the user, as TBM's editor wrote them (plus our derived fields)."""

    documented: ClassVar[dict[str, Any]] = {"rules": RULES}
    rules: list[dict[str, Any]]


class SavedRules(Rules):
    """The rules after a replace-all save."""

    message: str = "Rules saved successfully"
    # Empty: every asset type a rule names is acted on (kept for clients that read it).
    warnings: list[str]


class OneRule(Answer):
    """One rule."""

    documented: ClassVar[dict[str, Any]] = {"rule": RULE}
    rule: dict[str, Any]


class UpdatedRule(OneRule):
    """A rule after some of its fields changed."""

    message: str = "Rule updated successfully"


class RuleLogs(Answer):
    """The rule's execution log, newest first; `success` is 0 or 1 as TBM's frontend reads."""

    logs: list[dict[str, Any]]


class RunResult(Answer):
    """A manual run: what was matched and done (or would be, in dry run)."""

    result: dict[str, Any]


class Preview(Answer):
    """An unsaved rule evaluated now: per-torrent matches with every condition explained."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Presets(Answer):
    """The built-in example rules."""

    documented: ClassVar[dict[str, Any]] = {"presets": RULES}
    presets: list[dict[str, Any]]


class LogsQuery(Query):
    """How many log rows to return."""

    limit: Annotated[int, whole(1, 1000)] = 100


def _rule_id(request: web.Request) -> int:
    return path_id(request)


async def list_rules(h: Handlers, request: web.Request) -> web.Response:
    """Every rule."""
    caller = await h.caller(request)
    response = await h.b.userstore(caller.auth_id).ListRules(
        pb.ListRulesRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    return answer(Rules(rules=[json.loads(r) for r in response.rules_json]))


async def save_rules(h: Handlers, request: web.Request) -> web.Response:
    """Replace-all save."""
    caller = await h.caller(request)
    body = await bodies.read(request, bodies.SaveRules)
    response = await h.b.userstore(caller.auth_id).SaveRules(
        pb.SaveRulesRequest(auth_id=caller.auth_id, rules_json=json.dumps(body.rules)),
        **h.b.opts(),
    )
    rules = [json.loads(r) for r in response.rules_json]
    # Every asset type a rule may name is acted on: nothing to warn about (the field stays for
    # clients that read it).
    return answer(SavedRules(rules=rules, warnings=[]))


async def get_rule(h: Handlers, request: web.Request) -> web.Response:
    """One rule."""
    caller = await h.caller(request)
    response = await h.b.userstore(caller.auth_id).GetRule(
        pb.GetRuleRequest(auth_id=caller.auth_id, rule_id=_rule_id(request)), **h.b.opts()
    )
    return answer(OneRule(rule=json.loads(response.rule_json)))


async def update_rule(h: Handlers, request: web.Request) -> web.Response:
    """Change some fields of a rule (TBM's toggle sends only `enabled`)."""
    caller = await h.caller(request)
    rule_id = _rule_id(request)
    patch = (await bodies.read(request, bodies.UpdateRule)).patch()
    if not patch:
        raise InvalidArgument("nothing to change (send enabled: true or false)", field="enabled")
    response = await h.b.userstore(caller.auth_id).UpdateRule(
        pb.UpdateRuleRequest(auth_id=caller.auth_id, rule_id=rule_id, patch_json=json.dumps(patch)),
        **h.b.opts(),
    )
    return answer(UpdatedRule(rule=json.loads(response.rule_json)))


async def delete_rule(h: Handlers, request: web.Request) -> web.Response:
    """Delete a rule and its logs."""
    caller = await h.caller(request)
    await h.b.userstore(caller.auth_id).DeleteRule(
        pb.DeleteRuleRequest(auth_id=caller.auth_id, rule_id=_rule_id(request)), **h.b.opts()
    )
    return answer(Message(message="Rule deleted successfully"))


async def rule_logs(h: Handlers, request: web.Request) -> web.Response:
    """The rule's execution log."""
    caller = await h.caller(request)
    rule_id = _rule_id(request)
    limit = query(request, LogsQuery).limit
    response = await h.b.userstore(caller.auth_id).ListRuleLogs(
        pb.ListRuleLogsRequest(auth_id=caller.auth_id, rule_id=rule_id, limit=limit),
        **h.b.opts(),
    )
    logs = []
    for log in response.logs:
        row = to_json(log)
        row["success"] = 1 if log.success else 0  # TBM's frontend reads 0/1
        logs.append(row)
    return answer(RuleLogs(logs=logs))


async def clear_rule_logs(h: Handlers, request: web.Request) -> web.Response:
    """Clear the rule's execution log."""
    caller = await h.caller(request)
    await h.b.userstore(caller.auth_id).ClearRuleLogs(
        pb.ClearRuleLogsRequest(auth_id=caller.auth_id, rule_id=_rule_id(request)), **h.b.opts()
    )
    return answer(Message(message="Rule logs cleared successfully"))


async def run_rule(h: Handlers, request: web.Request) -> web.Response:
    """Poll now and run one rule (through the scheduler, under the user's poll lock)."""
    caller = await h.caller(request)
    rule_id = _rule_id(request)
    started = time.monotonic()
    result = await h.b.scheduler(caller.auth_id).RunRule(
        spb.RunRuleRequest(auth_id=caller.auth_id, rule_id=rule_id),
        **h.b.opts(h.settings.run_timeout_seconds),
    )
    payload = to_json(result, camel=True)
    payload["executionTime"] = f"{time.monotonic() - started:.2f}"
    if not payload.get("reason"):
        payload.pop("reason", None)
    return answer(RunResult(result=payload))


async def preview_rule(h: Handlers, request: web.Request) -> web.Response:
    """Evaluate an unsaved rule against the current state."""
    caller = await h.caller(request)
    rule = (await bodies.read(request, bodies.PreviewRule)).document()
    response = await h.b.userstore(caller.auth_id).PreviewRule(
        pb.PreviewRuleRequest(auth_id=caller.auth_id, rule_json=json.dumps(rule)),
        **h.b.opts(),
    )
    return answer(Preview(**to_json(response)))


async def presets(h: Handlers, request: web.Request) -> web.Response:
    """The built-in example rules."""
    caller = await h.caller(request)
    response = await h.b.userstore(caller.auth_id).ListPresets(
        pb.ListPresetsRequest(), **h.b.opts()
    )
    return answer(Presets(presets=[json.loads(p) for p in response.presets_json]))


_RULE_ID = "/api/automation/rules/{id}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/automation/rules", list_rules, "Every rule", answer=Rules),
    Route(
        "POST",
        "/api/automation/rules",
        save_rules,
        "Replace-all save: known ids updated, new rules inserted, missing ones deleted",
        body=bodies.SaveRules,
        answer=SavedRules,
    ),
    Route(
        "POST",
        "/api/automation/rules/preview",
        preview_rule,
        "Evaluate an unsaved rule (the rule, or {rule}) against the current state, "
        "explaining every condition",
        body=bodies.PreviewRule,
        answer=Preview,
    ),
    Route("GET", _RULE_ID, get_rule, "One rule", answer=OneRule),
    Route(
        "PUT",
        _RULE_ID,
        update_rule,
        "Change fields of one rule (usually enabled)",
        body=bodies.UpdateRule,
        answer=UpdatedRule,
    ),
    Route("DELETE", _RULE_ID, delete_rule, "Delete a rule and its logs", answer=Message),
    Route(
        "GET",
        _RULE_ID + "/logs",
        rule_logs,
        "The rule's execution log, newest first, with per-torrent action records",
        query=LogsQuery,
        answer=RuleLogs,
    ),
    Route(
        "DELETE",
        _RULE_ID + "/logs",
        clear_rule_logs,
        "Clear the rule's execution log",
        answer=Message,
    ),
    Route(
        "POST",
        _RULE_ID + "/run",
        run_rule,
        "Poll now, evaluate this rule, execute (or preview in dry run)",
        answer=RunResult,
        errors=(400, 401, 403, 404, 409, 429, 503, 504),
    ),
    Route("GET", "/api/automation/presets", presets, "The built-in example rules", answer=Presets),
)
