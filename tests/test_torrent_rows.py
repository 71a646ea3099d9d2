"""TorrentRows: rows read back as the snapshots their messages give; every bad row refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import torrent_rows
from common.errors import InvalidArgument
from userstore_svc import convert
from userstore_svc.core.models import SNAPSHOT_FIELDS

INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
DOUBLE = st.floats(allow_nan=False, allow_infinity=False)
_VALUES: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_ENUM: st.sampled_from([0, 1, 2, 3, 7]),
    FieldDescriptor.TYPE_DOUBLE: DOUBLE,
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_STRING: st.text(max_size=12),
}
# Any Torrent: each optional field set or not, each value anywhere in its field's range.
TORRENTS = st.fixed_dictionaries(
    {},
    optional={f.name: _VALUES[f.type] for f in tpb.Torrent.DESCRIPTOR.fields},
)


def rows_of(messages: list[tpb.Torrent]) -> list[list[Any]]:
    """What the scheduler writes for these items: each field's value, None where unset."""
    return [[_value(m, c) for c in torrent_rows.COLUMNS] for m in messages]


def _value(message: tpb.Torrent, column: torrent_rows.Column) -> Any:
    name: Any = column.name
    return getattr(message, name) if not column.optional or message.HasField(name) else None


def _read(fields: Any, rows: bytes) -> list[Any]:
    return convert.torrents_from_rows(pb.TorrentRows(fields=fields, rows=rows))


@settings(max_examples=400, deadline=None)
@given(st.lists(TORRENTS, max_size=5))
def test_rows_read_back_as_the_snapshots_their_messages_give(items: list[dict[str, Any]]) -> None:
    """Same values of the same types (an integer never stands in for a double), unset as None."""
    messages = [tpb.Torrent(**item) for item in items]
    encoded = torrent_rows.encode(rows_of(messages))
    from_rows = _read(encoded["fields"], encoded["rows"])
    from_messages = [convert.torrent_snapshot(m) for m in messages]
    assert from_rows == from_messages
    assert [list(map(type, s)) for s in from_rows] == [list(map(type, s)) for s in from_messages]
    assert [torrent_rows.message(r).ListFields() for r in rows_of(messages)] == [
        m.ListFields() for m in messages
    ]


def test_the_columns_are_torrents_fields_in_number_order_and_the_snapshots_fields() -> None:
    """A checked row is made a snapshot as it is: the orders must agree (asset_type is the kind)."""
    numbers = [tpb.Torrent.DESCRIPTOR.fields_by_name[n].number for n in torrent_rows.FIELDS]
    assert numbers == sorted(numbers)
    assert len(torrent_rows.FIELDS) == len(tpb.Torrent.DESCRIPTOR.fields)
    assert (*torrent_rows.FIELDS[:-1], "kind") == SNAPSHOT_FIELDS


def test_non_finite_doubles_are_written_as_null_unknown() -> None:
    """JSON has no NaN or infinity: were one to reach the writer (the scheduler's parse already
    reads them as unknown), it arrives unset, never as 0 or as a number."""
    row = rows_of([tpb.Torrent(id=3, ratio=1.5)])[0]
    at = torrent_rows.FIELDS.index("ratio")
    for value in (float("nan"), float("inf"), float("-inf")):
        row[at] = value
        encoded = torrent_rows.encode([row])
        assert _read(encoded["fields"], encoded["rows"])[0].ratio is None


def test_a_writer_with_other_columns_is_read_like_a_message_with_those_fields() -> None:
    """Columns in another order, a name this reader does not know (ignored) and fields not
    named (unset; id, hash and the like at their defaults), as protobuf reads a message."""
    fields = ["ratio", "future_field", "name", "id", "seeds"]
    rows = orjson.dumps([[2.5, {"any": "thing"}, "x", 9, None], [3, None, "y", 10, 4]])
    first, second = _read(fields, rows)
    assert first == convert.torrent_snapshot(tpb.Torrent(id=9, name="x", ratio=2.5))
    assert second == convert.torrent_snapshot(tpb.Torrent(id=10, name="y", ratio=3.0, seeds=4))
    assert type(second.ratio) is float
    assert (first.hash, first.download_state, first.queued, first.kind) == (
        "",
        "",
        False,
        "torrent",
    )
    assert _read(torrent_rows.FIELDS, b"[]") == []


def test_a_double_written_as_an_integer_is_that_double() -> None:
    """JSON does not tell 5 from 5.0; the snapshot holds a float either way."""
    row = rows_of([tpb.Torrent(id=1, created_at=5.0, progress=1.0)])[0]
    text = orjson.dumps([row]).replace(b"5.0", b"5").replace(b"1.0", b"1")
    (snapshot,) = _read(torrent_rows.FIELDS, text)
    assert (snapshot.created_at, snapshot.progress) == (5.0, 1.0)
    assert (type(snapshot.created_at), type(snapshot.progress)) == (float, float)


def _with(name: str, value: Any) -> bytes:
    row = rows_of([tpb.Torrent(id=1, hash="ab", name="n", seeds=3, ratio=0.5)])[0]
    row[torrent_rows.FIELDS.index(name)] = value
    return orjson.dumps([row])


@pytest.mark.parametrize(
    ("fields", "rows", "field", "why"),
    [
        (torrent_rows.FIELDS, b"{not json", "torrent_rows.rows", "not JSON"),
        (torrent_rows.FIELDS, b'{"id": 1}', "torrent_rows.rows", "not an array of rows"),
        (torrent_rows.FIELDS, b"[[1, 2], 3]", "torrent_rows.rows", "one per field"),
        (torrent_rows.FIELDS, b"[[1, 2]]", "torrent_rows.rows", "an array of 34 values"),
        (["id", "id"], b"[[1, 1]]", "torrent_rows.fields", "named twice"),
        (["id", "seeds", "id"], b"[]", "torrent_rows.fields", "named twice"),
        (torrent_rows.FIELDS, _with("seeds", "3"), "torrent_rows.seeds", "holds a string"),
        (torrent_rows.FIELDS, _with("seeds", True), "torrent_rows.seeds", "holds a boolean"),
        (torrent_rows.FIELDS, _with("seeds", 2.0), "torrent_rows.seeds", "holds a number"),
        (torrent_rows.FIELDS, _with("seeds", 2**31), "torrent_rows.seeds", "out of range"),
        (torrent_rows.FIELDS, _with("size", 2**63), "torrent_rows.size", "out of range"),
        (
            torrent_rows.FIELDS,
            _with("size", 987654321987).replace(b"987654321987", b"%d" % -(2**63 + 1)),
            "torrent_rows.size",
            "holds a number",
        ),
        (torrent_rows.FIELDS, _with("asset_type", 2**31), "torrent_rows.asset_type", "range"),
        (torrent_rows.FIELDS, _with("ratio", "0.5"), "torrent_rows.ratio", "holds a string"),
        (torrent_rows.FIELDS, _with("ratio", False), "torrent_rows.ratio", "holds a boolean"),
        (torrent_rows.FIELDS, _with("active", 1), "torrent_rows.active", "holds an integer"),
        (torrent_rows.FIELDS, _with("magnet", 5), "torrent_rows.magnet", "holds an integer"),
        (torrent_rows.FIELDS, _with("name", [1]), "torrent_rows.name", "holds an array"),
        (torrent_rows.FIELDS, _with("tracker", {}), "torrent_rows.tracker", "holds an object"),
        (torrent_rows.FIELDS, _with("id", None), "torrent_rows.id", "holds null"),
        (torrent_rows.FIELDS, _with("hash", None), "torrent_rows.hash", "holds null"),
        (torrent_rows.FIELDS, _with("queued", None), "torrent_rows.queued", "holds null"),
    ],
)
def test_a_bad_row_is_refused_naming_its_column(
    fields: Any, rows: bytes, field: str, why: str
) -> None:
    """INVALID_ARGUMENT that says where and why; nothing is guessed or read as 0."""
    with pytest.raises(InvalidArgument) as raised:
        _read(fields, rows)
    assert raised.value.field == field
    assert raised.value.message.startswith(f"{field}: ")
    assert why in raised.value.message


def test_a_snapshot_carries_messages_or_rows_never_both() -> None:
    """Both at once would be two lists of one poll: refused rather than merged or picked."""
    snapshot = pb.Snapshot(
        torrents=[tpb.Torrent(id=1)],
        torrent_rows=pb.TorrentRows(**torrent_rows.encode(rows_of([tpb.Torrent(id=2)]))),
    )
    with pytest.raises(InvalidArgument) as raised:
        convert.snapshot_torrents(snapshot)
    assert raised.value.field == "torrent_rows"
    rows_only = pb.Snapshot(torrent_rows=snapshot.torrent_rows)
    assert [t.id for t in convert.snapshot_torrents(rows_only)] == [2]
    # An empty TorrentRows is a snapshot of no items (set, so not the messages' empty list).
    empty = pb.Snapshot(torrent_rows=pb.TorrentRows(**torrent_rows.encode([])))
    assert empty.HasField("torrent_rows")
    assert convert.snapshot_torrents(empty) == []


@pytest.mark.parametrize("bad_id", [0, -5, 2**40, 2**40 + 5])
def test_an_id_that_would_take_another_items_key_is_refused_in_both_forms(bad_id: int) -> None:
    """-5 would be queued torrent 5's key and 2**40 + 5 usenet item 5's: INVALID_ARGUMENT."""
    good = tpb.Torrent(id=5, hash="ab", name="n")
    bad = tpb.Torrent(id=bad_id, hash="cd", name="m")
    as_messages = pb.Snapshot(torrents=[good, bad])
    as_rows = pb.Snapshot(torrent_rows=pb.TorrentRows(**torrent_rows.encode(rows_of([good, bad]))))
    for snapshot, field in ((as_messages, "torrents.id"), (as_rows, "torrent_rows.id")):
        with pytest.raises(InvalidArgument) as raised:
            convert.snapshot_torrents(snapshot)
        assert raised.value.field == field
    # Rows that do not name the id column are items of id 0: refused, not stored as one item.
    unnamed = pb.Snapshot(torrent_rows=pb.TorrentRows(fields=["name"], rows=b'[["a"], ["b"]]'))
    with pytest.raises(InvalidArgument):
        convert.snapshot_torrents(unnamed)
    edge = tpb.Torrent(id=2**40 - 1, hash="ef", name="o")
    assert [t.id for t in convert.snapshot_torrents(pb.Snapshot(torrents=[good, edge]))] == [
        5,
        2**40 - 1,
    ]
