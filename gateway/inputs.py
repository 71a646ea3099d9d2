"""Request inputs: JSON hygiene, path ids and query values, every rejection naming the field.

JSON hygiene lives here so no backend ever sees a document that cannot round-trip: nesting is
bounded, numbers are finite and integers fit in 64 bits, strings are valid Unicode. What a value
*means* (a rule, a torrent id) is the userstore's business.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from common.errors import InvalidArgument

# Deeper than any rule document (five nested groups need about twenty levels).
MAX_JSON_DEPTH = 64
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_ID_DIGITS = 18
_ID = re.compile(rf"[0-9]{{1,{MAX_ID_DIGITS}}}")  # ASCII only: "²".isdigit() is True
INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


class _BadJson(ValueError):
    """A syntactically valid document we still refuse (the message says why)."""


def _constant(name: str) -> Any:
    raise _BadJson(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadJson("numbers must be finite")
    return value


def _int(text: str) -> int:
    if len(text) > 20:  # also keeps int() away from Python's 4300-digit limit
        raise _BadJson("integers must fit in 64 bits")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _BadJson("integers must fit in 64 bits")
    return value


def _check_tree(value: Any) -> None:
    """Bounded depth and encodable strings, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise _BadJson(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _BadJson("strings must be valid Unicode (no lone surrogates)") from None


def parse_json(raw: bytes) -> Any:
    """A JSON document we accept, or InvalidArgument naming the body and the reason."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
        _check_tree(value)
    except _BadJson as error:
        raise InvalidArgument(f"the body is not acceptable JSON: {error}", field="body") from None
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidArgument("the body is not valid JSON", field="body") from None
    return value


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (an empty body is an empty object)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise InvalidArgument("the body must be a JSON object", field="body")
    return value


def positive_id(raw: object, field: str) -> int:
    """A path, query or body id: a positive integer (ASCII digits in a string, or a JSON int)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 < raw <= INT64_MAX:
            return raw
    elif isinstance(raw, str) and _ID.fullmatch(raw) and int(raw) > 0:
        return int(raw)
    raise InvalidArgument(f"{field} must be a positive integer", field=field)


def path_id(request: web.Request, name: str = "id") -> int:
    """An id in the path, refused in TBM's words (its validateNumericId middleware)."""
    try:
        return positive_id(request.match_info.get(name), name)
    except InvalidArgument:
        raise InvalidArgument("Invalid id. Must be a positive integer.", field=name) from None
