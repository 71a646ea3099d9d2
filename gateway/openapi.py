"""The OpenAPI 3.1 document of the REST API (a test keeps it and the routes in step)."""

from __future__ import annotations

from typing import Any

from gateway import bodies
from gateway.handlers import VERSION

_ERROR = {"$ref": "#/components/schemas/Error"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_TORRENT_ID = {
    "name": "torrent_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _body(model: type[bodies.Body]) -> dict[str, Any]:
    """A request body declared in gateway/bodies.py (its schema is a component)."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _object(**properties: str) -> dict[str, Any]:
    """A small answer's schema: its properties and their JSON types."""
    return {"type": "object", "properties": {k: {"type": t} for k, t in properties.items()}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    *,
    ok: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (400, 401, 403, 404, 429, 503),
    auth: bool = True,
    tag: str = "automation",
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "success", **_json(ok or {"$ref": "#/components/schemas/Ok"})}
    }
    statuses = set(errors) | ({413} if body is not None else set())
    for status in sorted(statuses):
        responses[str(status)] = {"description": _REASONS[status], **_json(_ERROR)}
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if auth:
        operation["security"] = [{"apiKey": []}, {"bearer": []}]
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    return operation


_REASONS = {
    400: "invalid input (the body names the field and the reason)",
    401: "no API key",
    403: "the declared auth id does not match the key",
    404: "user not registered, or no such item",
    409: "already exists, or the account's state forbids it now (e.g. an inactive key)",
    413: "request body larger than 1 MiB",
    429: "rate limited (see Retry-After)",
    503: "a backend service is unavailable",
    504: "a backend service did not answer in time",
}

_RULE = {"$ref": "#/components/schemas/Rule"}


def document() -> dict[str, Any]:
    """The whole API as an OpenAPI document."""
    paths: dict[str, dict[str, Any]] = {
        "/health": {
            "get": _op(
                "Liveness",
                ok={"$ref": "#/components/schemas/Health"},
                auth=False,
                errors=(),
                tag="system",
            )
        },
        "/openapi.json": {"get": _op("This document", auth=False, errors=(), tag="system")},
        "/api/backend/status": {
            "get": _op(
                "Availability and service figures (TBM reads `available`)",
                ok={"$ref": "#/components/schemas/Status"},
                auth=False,
                errors=(),
                tag="system",
            )
        },
        "/api/backend/api-key/ensure-db": {
            "post": _op(
                "Validate the key with TorBox, register the user, create their database",
                ok={"$ref": "#/components/schemas/EnsureDb"},
                errors=(400, 401, 403, 429, 503, 504),
                tag="keys",
            )
        },
        "/api/backend/api-key": {
            "post": _op(
                "Register (or re-register) a key: validated with TorBox, a known user reactivated",
                body=_body(bodies.RegisterKey),
                ok=_object(message="string", authId="string"),
                errors=(400, 429, 503, 504),
                auth=False,
                tag="keys",
            ),
            "delete": _op(
                "Remove the key: registry row and database deleted, polling stops", tag="keys"
            ),
        },
        "/api/backend/api-key/status": {
            "get": _op(
                "How many users are active",
                ok=_object(activeUsers="integer"),
                errors=(503,),
                auth=False,
                tag="keys",
            )
        },
        "/api/health/detailed": {
            "get": _op(
                "Health of every shard and scheduler (degraded when some do not answer)",
                ok=_object(status="string", version="string", uptime="number"),
                errors=(),
                auth=False,
                tag="system",
            )
        },
        "/api/activity": {"post": _op("Mark the user as recently seen", tag="keys")},
        "/api/automation/rules": {
            "get": _op(
                "Every rule",
                ok={"type": "object", "properties": {"rules": {"type": "array", "items": _RULE}}},
            ),
            "post": _op(
                "Replace-all save: known ids updated, new rules inserted, missing ones deleted",
                body=_body(bodies.SaveRules),
                ok={"type": "object", "properties": {"rules": {"type": "array", "items": _RULE}}},
            ),
        },
        "/api/automation/rules/preview": {
            "post": _op(
                "Evaluate an unsaved rule (the rule, or {rule}) against the current state, "
                "explaining every condition",
                body=_body(bodies.PreviewRule),
                ok={"$ref": "#/components/schemas/Preview"},
            )
        },
        "/api/automation/rules/{id}": {
            "get": _op(
                "One rule", params=[_ID], ok={"type": "object", "properties": {"rule": _RULE}}
            ),
            "put": _op(
                "Change fields of one rule (usually enabled)",
                params=[_ID],
                body=_body(bodies.UpdateRule),
                ok={"type": "object", "properties": {"rule": _RULE}},
            ),
            "delete": _op("Delete a rule and its logs", params=[_ID]),
        },
        "/api/automation/rules/{id}/logs": {
            "get": _op(
                "The rule's execution log, newest first, with per-torrent action records",
                params=[
                    _ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                ok={
                    "type": "object",
                    "properties": {
                        "logs": {"type": "array", "items": {"$ref": "#/components/schemas/RuleLog"}}
                    },
                },
            ),
            "delete": _op("Clear the rule's execution log", params=[_ID]),
        },
        "/api/automation/rules/{id}/run": {
            "post": _op(
                "Poll now, evaluate this rule, execute (or preview in dry run)",
                params=[_ID],
                ok={
                    "type": "object",
                    "properties": {"result": {"$ref": "#/components/schemas/RunResult"}},
                },
                errors=(400, 401, 403, 404, 409, 429, 503, 504),
            )
        },
        "/api/automation/presets": {
            "get": _op(
                "The built-in example rules",
                ok={"type": "object", "properties": {"presets": {"type": "array", "items": _RULE}}},
            )
        },
        "/api/automation/events": {
            "get": {
                **_op("Server-Sent Events: heartbeats, `changed` after a poll, synthetic events"),
                "responses": {
                    "200": {
                        "description": "an event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **{
                        str(s): {"description": _REASONS[s], **_json(_ERROR)}
                        for s in (401, 403, 404, 503)
                    },
                },
            }
        },
        "/api/automation/torrents": {
            "get": _op(
                "Per-torrent automation status: derived telemetry, last action and why, protection",
                params=[{"name": "include_removed", "in": "query", "schema": {"type": "boolean"}}],
                ok={
                    "type": "object",
                    "properties": {
                        "torrents": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TorrentStatus"},
                        }
                    },
                },
                tag="torrents",
            )
        },
        "/api/automation/torrents/{torrent_id}/events": {
            "get": _op(
                "One torrent's synthetic event history, newest first",
                params=[
                    _TORRENT_ID,
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                ],
                ok={
                    "type": "object",
                    "properties": {
                        "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                    },
                },
                tag="torrents",
            )
        },
        "/api/automation/torrents/{torrent_id}/limits": {
            "get": _op("The torrent's own seeding limits", params=[_TORRENT_ID], tag="torrents"),
            "put": _op(
                "Set seeding limits that override rules until reached",
                params=[_TORRENT_ID],
                body=_body(bodies.SetLimits),
                tag="torrents",
            ),
            "delete": _op(
                "Remove the torrent's seeding limits", params=[_TORRENT_ID], tag="torrents"
            ),
        },
        "/api/archived-downloads": {
            "get": _op(
                "Archived downloads, newest first",
                params=[
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("page", "integer"), ("limit", "integer"), ("search", "string"))
                ],
                ok={"$ref": "#/components/schemas/ArchivedPage"},
                tag="archive",
            ),
            "post": _op(
                "Archive a download by hand (protection first: 403, then duplicates: 409)",
                body=_body(bodies.ArchiveDownload),
                errors=(400, 401, 403, 404, 409, 429, 503),
                tag="archive",
            ),
        },
        "/api/archived-downloads/bulk": {
            "post": _op(
                "Archive up to 500 downloads; protected ones are left out (403 when all are)",
                body=_body(bodies.ArchiveBulk),
                ok={"$ref": "#/components/schemas/ArchivedBulk"},
                tag="archive",
            ),
            "delete": _op(
                "Remove up to 500 archive rows by their row ids",
                body=_body(bodies.DeleteArchivedBulk),
                tag="archive",
            ),
        },
        "/api/archived-downloads/{id}": {
            "delete": _op("Remove an archive row (not the torrent)", params=[_ID], tag="archive")
        },
        "/api/archived-downloads/{id}/restore": {
            "post": _op(
                "Re-add the torrent to TorBox from its magnet, then remove the row",
                params=[_ID],
                errors=(400, 401, 403, 404, 409, 429, 503, 504),
                tag="archive",
            )
        },
        "/api/downloads/protect": {
            "get": _op("Protected download ids", tag="archive"),
            "put": _op(
                "Protect or unprotect downloads (never stopped, archived or deleted)",
                body=_body(bodies.SetProtection),
                tag="archive",
            ),
        },
        "/api/downloads/protect/assert": {
            "post": _op(
                "May a destructive operation touch these downloads? 403 when none may",
                body=_body(bodies.AssertProtection),
                ok={"$ref": "#/components/schemas/ProtectionCheck"},
                tag="archive",
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TorBox automation backend",
            "version": VERSION,
            "description": "TorBox Manager's REST contract plus per-torrent automation status.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {**_SCHEMAS, **bodies.schemas(*bodies.MODELS)},
        },
    }


_SCHEMAS: dict[str, Any] = {
    "Ok": {"type": "object", "required": ["success"], "properties": {"success": {"const": True}}},
    "Error": {
        "type": "object",
        "required": ["success", "error", "code"],
        "properties": {
            "success": {"const": False},
            "error": {"type": "string"},
            "code": {"type": "string"},
            "field": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "healthy"}, "timestamp": {"type": "string"}},
    },
    "Status": {
        "type": "object",
        "required": ["available", "mode", "version", "uptime"],
        "properties": {
            "available": {"type": "boolean"},
            "mode": {"const": "selfhosted"},
            "version": {"type": "string"},
            "uptime": {"type": "number", "description": "seconds"},
            "scheduler": {"type": ["object", "null"]},
            "userstores": {"type": "array", "items": {"type": ["object", "null"]}},
            "gateway": {
                "type": "object",
                "properties": {"sse_streams": {"type": "integer"}},
            },
        },
    },
    "EnsureDb": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "authId": {"type": "string"},
            "dbExists": {"type": "boolean"},
            "wasCreated": {"type": "boolean"},
            "message": {"type": "string"},
            "reactivated": {"type": "boolean"},
        },
    },
    "Rule": {
        "type": "object",
        "required": ["name", "action"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "enabled": {"type": "boolean"},
            "assetTypes": {"type": "array", "items": {"type": "string"}},
            "trigger": {"type": "object"},
            "logicOperator": {"enum": ["and", "or"]},
            "groups": {"type": "array", "items": {"type": "object"}},
            "action": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "tagIds": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                },
            },
            "unsupported_asset_types": {
                "type": "array",
                "items": {"type": "string"},
                "readOnly": True,
            },
            "cooldown_minutes": {"type": ["number", "null"]},
            "dry_run": {"type": "boolean"},
            "max_actions_per_run": {"type": ["integer", "null"]},
        },
    },
    "RuleLog": {"type": "object"},
    "RunResult": {"type": "object"},
    "Preview": {"type": "object"},
    "TorrentStatus": {"type": "object"},
    "Event": {"type": "object"},
    "ArchivedPage": {"type": "object"},
    "ArchivedBulk": {
        "type": "object",
        "properties": {
            "success": {"const": True},
            "data": {
                "type": "object",
                "properties": {
                    "torrentIds": {"type": "array", "items": {"type": "string"}},
                    "blocked_ids": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "ProtectionCheck": {
        "type": "object",
        "properties": {
            "success": {"const": True},
            "allowed": {"type": "array", "items": {"type": "string"}},
            "blocked": {"type": "array", "items": {"type": "string"}},
        },
    },
}
