"""Protobuf messages as the REST API's JSON: every field present, times as ISO-8601 with Z.

Conventions: a double field named ``*_at`` or ``*_since`` is a time; an unset optional field is
null; a string field named ``*_json`` holds JSON and is decoded under the name without the
suffix; names stay snake_case unless `camel` is asked for. An asset type is "torrent", "usenet"
or "webdl"; left unspecified (a torrent, in every answer shaped before usenet and web downloads
were polled) it is omitted, so those answers keep their shape.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as ISO-8601 UTC with milliseconds and a Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sql_time(ts: float) -> str:
    """Seconds since the epoch as TBM's SQLite CURRENT_TIMESTAMP writes them: UTC, no zone.

    TBM's frontend parses "YYYY-MM-DD HH:MM:SS" as UTC; whole seconds, as SQLite keeps them.
    """
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _is_time(name: str) -> bool:
    return name.endswith(("_at", "_since"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _scalar(field: Any, value: Any, camel: bool) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return to_json(value, camel=camel)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if field.type == FieldDescriptor.TYPE_DOUBLE and _is_time(field.name):
        return iso(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return None  # never expose raw bytes (ciphertexts) over REST
    return value


def to_json(message: Message, *, camel: bool = False) -> dict[str, Any]:
    """A message as a JSON-ready dict following the conventions above."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        name = field.name
        repeated = field.is_repeated
        value = getattr(message, name)
        enum = field.enum_type if field.type == FieldDescriptor.TYPE_ENUM else None
        if enum is not None and enum.name == "AssetType":
            if not repeated and value:
                out[_camel(name) if camel else name] = _asset_type(field, value)
            continue
        if repeated:
            converted: Any = [_scalar(field, item, camel) for item in value]
        elif field.has_presence and not message.HasField(name):
            converted = None
        else:
            converted = _scalar(field, value, camel)
        if name.endswith("_json") and field.type == FieldDescriptor.TYPE_STRING:
            name = name[: -len("_json")]
            converted = [json.loads(v) for v in converted] if repeated else _decode(converted)
        out[_camel(name) if camel else name] = converted
    return out


def _asset_type(field: Any, value: int) -> str:
    """ASSET_TYPE_USENET as "usenet" (the names TBM's rules use)."""
    name: str = field.enum_type.values_by_number[value].name
    return name.removeprefix("ASSET_TYPE_").lower()


def _decode(text: str | None) -> Any:
    if not text:
        return None
    return json.loads(text)
