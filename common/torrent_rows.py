"""A snapshot's items as TorrentRows: JSON rows written by the scheduler, checked by the userstore.

A Torrent message costs a Python call per field to build and another to read back (34 fields,
most optional); a row is a JSON array written and parsed in one C call each. The columns are
Torrent's fields in field-number order; null is an unset optional (unknown). The reader checks
every value's type column by column (a few C calls per column, not a call per value), so a row
can never carry what a Torrent message could not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from google.protobuf.descriptor import FieldDescriptor
from torbox.automation.v1 import torrent_pb2 as tpb

from common.errors import InvalidArgument

_NONE = type(None)
# The ranges of Torrent's integer fields (int64; int32 and enums).
INT64 = (-(1 << 63), (1 << 63) - 1)
INT32 = (-(1 << 31), (1 << 31) - 1)


class Column(NamedTuple):
    """One Torrent field as a column: the types its values may have and what unset means."""

    name: str
    types: frozenset[type]
    # Bounds of an integer column (None for the others).
    bounds: tuple[int, int] | None
    # What a row holds when the writer did not name the column (a message's unset field).
    default: Any

    @property
    def optional(self) -> bool:
        """Whether the field has presence: null (unset, unknown) is one of its values."""
        return _NONE in self.types


def _column(field: FieldDescriptor) -> Column:
    kind = field.type
    bounds: tuple[int, int] | None = None
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_ENUM):
        types: frozenset[type] = frozenset({int})
        bounds = INT64 if kind == FieldDescriptor.TYPE_INT64 else INT32
        default: Any = 0
    elif kind == FieldDescriptor.TYPE_DOUBLE:
        types, default = frozenset({float}), 0.0
    elif kind == FieldDescriptor.TYPE_BOOL:
        types, default = frozenset({bool}), False
    elif kind == FieldDescriptor.TYPE_STRING:
        types, default = frozenset({str}), ""
    else:  # pragma: no cover - a new field type needs a column rule first
        raise TypeError(f"Torrent.{field.name}: no column rule for type {kind}")
    if field.has_presence:
        types, default = types | {_NONE}, None
    return Column(field.name, types, bounds, default)


COLUMNS: tuple[Column, ...] = tuple(
    _column(f) for f in sorted(tpb.Torrent.DESCRIPTOR.fields, key=lambda f: f.number)
)
# The writer's column names: every Torrent field, in field-number order.
FIELDS: tuple[str, ...] = tuple(c.name for c in COLUMNS)
_BY_NAME = {c.name: c for c in COLUMNS}


def message_fields(row: Sequence[Any]) -> dict[str, Any]:
    """One row as a Torrent's constructor arguments (None left out: unset)."""
    return {name: value for name, value in zip(FIELDS, row, strict=True) if value is not None}


def message(row: Sequence[Any]) -> tpb.Torrent:
    """One row as a Torrent message."""
    return tpb.Torrent(**message_fields(row))


def encode(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A TorrentRows message's fields for rows in FIELDS order (a dict protobuf takes as is).

    JSON has no NaN or infinity: orjson writes them as null (unknown). The scheduler's parse
    never gives one (it reads them as unknown already), so both forms carry the same values.
    """
    return {"fields": FIELDS, "rows": orjson.dumps(rows)}


def decode(fields: Sequence[str], data: bytes) -> list[list[Any]]:
    """Rows in FIELDS order from a TorrentRows message, every value checked against its column.

    Raises InvalidArgument naming the part that is wrong: not JSON, not rows of len(fields)
    values, a repeated name, or a value of the wrong type or out of its field's range.
    """
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise _invalid("rows", f"not JSON ({error})") from None
    if type(rows) is not list:
        raise _invalid("rows", "not an array of rows")
    names = tuple(fields)
    if len(set(names)) != len(names):
        raise _invalid("fields", "a field is named twice")
    if not rows:
        return []
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {len(names)}:
        raise _invalid("rows", f"each row must be an array of {len(names)} values, one per field")
    columns = dict(zip(names, zip(*rows, strict=True), strict=True)) if names else {}
    changed = names != FIELDS
    for name, values in list(columns.items()):
        column = _BY_NAME.get(name)
        if column is None:
            continue
        checked = _checked(column, values)
        if checked is not values:
            columns[name] = checked
            changed = True
    if not changed:
        # The writer's columns are ours and every value was already of its type.
        return rows
    count = len(rows)
    ordered = [columns[c.name] if c.name in columns else (c.default,) * count for c in COLUMNS]
    return [list(r) for r in zip(*ordered, strict=True)]


def _checked(column: Column, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The column's values (a double column's integers as floats), or InvalidArgument."""
    found = set(map(type, values))
    if not found <= column.types:
        if column.types & {float} and found <= column.types | {int}:
            # JSON does not tell 5 from 5.0: a double written as an integer is that double.
            return tuple(float(v) if type(v) is int else v for v in values)
        wrong = sorted(_TYPE_NAMES.get(t, t.__name__) for t in found - column.types)
        raise _invalid(column.name, f"holds {', '.join(wrong)}, not {_expected(column)}")
    if column.bounds is not None and int in found:
        # filter(None, ...) drops nulls (and zeros, which are in range) in C.
        low, high = column.bounds
        if (
            min(filter(None, values), default=0) < low
            or max(filter(None, values), default=0) > high
        ):
            raise _invalid(column.name, f"a value is out of range {low}..{high}")
    return values


# JSON's names for the Python types a JSON value can have.
_TYPE_NAMES = {
    _NONE: "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def _expected(column: Column) -> str:
    names = sorted(_TYPE_NAMES[t] for t in column.types - {_NONE})
    return " or ".join([*names, "null"] if column.optional else names)


def _invalid(part: str, why: str) -> InvalidArgument:
    """The error for one part of a TorrentRows message, named in its text too.

    A snapshot's error reaches the scheduler as text alone (IngestError has no field).
    """
    field = f"torrent_rows.{part}"
    return InvalidArgument(f"{field}: {why}", field=field)
