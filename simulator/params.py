"""FastAPI-style (pydantic lax mode) parsing of request values; failures become 422 problems."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from simulator.responses import FieldProblem

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def to_int(value: object, loc: tuple[str, str]) -> int:
    """An integer, also from a numeric string or a whole float, as pydantic accepts."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise FieldProblem(
            loc,
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
            value,
        )
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise FieldProblem(
                loc,
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                value,
            ) from None
    raise FieldProblem(loc, "int_type", "Input should be a valid integer", value)


def to_bool(value: object, loc: tuple[str, str]) -> bool:
    """A boolean from true/false, 1/0, yes/no, on/off and friends, in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise FieldProblem(
            loc, "bool_parsing", "Input should be a valid boolean, unable to interpret input", value
        )
    raise FieldProblem(loc, "bool_type", "Input should be a valid boolean", value)


def query_int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    """An optional integer query parameter."""
    raw = query.get(name)
    return default if raw is None else to_int(raw, ("query", name))


def query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    """An optional boolean query parameter."""
    raw = query.get(name)
    return default if raw is None else to_bool(raw, ("query", name))


async def json_object(request: web.Request) -> dict[str, Any]:
    """The JSON body as an object; anything else is FastAPI's 422."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise FieldProblem(("body", 0), "json_invalid", "JSON decode error", {}) from None
    if not isinstance(body, dict):
        raise FieldProblem(
            ("body", ""),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
            body,
        )
    return body


def body_str(body: Mapping[str, Any], name: str) -> str:
    """A required string field of a JSON body."""
    if name not in body:
        raise FieldProblem(("body", name), "missing", "Field required", dict(body))
    value = body[name]
    if not isinstance(value, str):
        raise FieldProblem(("body", name), "string_type", "Input should be a valid string", value)
    return value


def body_int(body: Mapping[str, Any], name: str) -> int | None:
    """An optional integer field of a JSON body (null counts as absent)."""
    value = body.get(name)
    return None if value is None else to_int(value, ("body", name))


def body_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    """An optional boolean field of a JSON body."""
    value = body.get(name)
    return default if value is None else to_bool(value, ("body", name))
