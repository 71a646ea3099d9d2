"""The OpenAPI 3.1 document of the REST API, generated from the route declarations.

Every operation, its parameters, body and answer come from a :class:`gateway.api.Route` and the
pydantic models it names; only the error envelope and the rule document (validated whole by the
userstore, so it has no model here) are written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from gateway.api import Route
from gateway.handlers import VERSION

_REASONS = {
    400: "invalid input (the body names the field and the reason)",
    401: "no API key",
    403: "the declared auth id does not match the key",
    404: "user not registered, or no such item",
    409: "already exists, or the account's state forbids it now (e.g. an inactive key)",
    413: "request body larger than the route's limit",
    429: "rate limited (see Retry-After)",
    502: "a backend service is down for now (the event stream's 503: TBM's frontend would stop)",
    503: "a backend service is unavailable, or the feature is not provided",
    504: "a backend service did not answer in time",
}

_ERROR = {
    "type": "object",
    "required": ["success", "error", "code"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": "string"},
    },
}

_RULE = {
    "type": "object",
    "description": "A rule as TBM's editor writes it (validated whole by the userstore).",
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
        "cooldown_minutes": {"type": ["number", "null"]},
        "dry_run": {"type": "boolean"},
        "max_actions_per_run": {"type": ["integer", "null"]},
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


class _Components:
    """The schemas operations refer to, collected model by model."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": _ERROR, "Rule": _RULE}

    def add(self, model: type[BaseModel]) -> dict[str, Any]:
        """The model's schema as a component; a reference to it."""
        document = model.model_json_schema(ref_template="#/components/schemas/{model}")
        required: tuple[str, ...] = getattr(model, "required", ())
        if required and isinstance(required, tuple):
            document["required"] = list(required)
            for name in required:
                document["properties"][name].pop("default", None)
        for name, fragment in getattr(model, "documented", {}).items():
            document["properties"][name] = fragment
        # A nested model's bare schema never replaces the one added as a model of its own (which
        # carries its `required` and `documented` overrides).
        for name, nested in document.pop("$defs", {}).items():
            self.schemas.setdefault(name, nested)
        self.schemas[model.__name__] = document
        return _ref(model.__name__)


def _parameters(route: Route, components: _Components) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        for name, fragment in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "schema": fragment})
    return params


def _operation(route: Route, components: _Components) -> dict[str, Any]:
    if route.stream:
        ok: dict[str, Any] = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
    elif route.binary:
        binary = {"schema": {"type": "string", "format": "binary"}}
        ok = {"content": {"application/octet-stream": binary}}
    elif route.answer is not None:
        ok = _json(components.add(route.answer))
    else:
        ok = {}
    responses: dict[str, Any] = {"200": {"description": "success", **ok}}
    statuses = set(route.errors) | ({413} if route.body is not None else set())
    for status in sorted(statuses):
        responses[str(status)] = {"description": _REASONS[status], **_json(_ref("Error"))}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if route.auth:
        operation["security"] = [{"apiKey": []}, {"bearer": []}]
    params = _parameters(route, components)
    if params:
        operation["parameters"] = params
    if route.body is not None:
        operation["requestBody"] = {"required": True, **_json(components.add(route.body))}
    return operation


def document(routes: Iterable[Route]) -> dict[str, Any]:
    """The whole API as an OpenAPI document."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
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
            "schemas": components.schemas,
        },
    }
