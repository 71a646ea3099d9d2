"""parse's fast paths give exactly the oracle's message for any item, nulls and wrong types too."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import torrent_rows
from scheduler_svc.torbox import parse
from tests.scheduler import parse_reference as ref

DATES = ["2026-12-05T20:10:11Z", "2026-12-05T20:10:11.123456+00:00", "2026-12-05T20:10:11", "x"]
# Whatever TorBox might send in any field: nulls, wrong types, numbers as text, odd floats.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "0", "1", "-3", "1.5", " yes ", "TRUE", "nan", "inf", "abc", *DATES]),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0, 1, 1.0, 2**40, -(2**40)]),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
# The type a well-formed answer has, so that items are often (nearly) well-formed.
WELL_FORMED: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(ref.INTS, st.integers(0, 10_000)),
    **dict.fromkeys(ref.INTS_TOO, st.integers(0, 2**50)),
    **dict.fromkeys(ref.BOOLS, st.booleans()),
    **dict.fromkeys(ref.FLOATS, st.floats(0, 100)),
    **dict.fromkeys(ref.TEXTS, st.text(max_size=8)),
    **dict.fromkeys(ref.DATES, st.sampled_from(DATES)),
    "size": st.integers(-1, 2**40),
    "progress": st.floats(-0.5, 1.5),
    "files": st.lists(st.just({"id": 0, "name": "a"}), max_size=3),
    "file_count": st.integers(-1, 5),
    "hash": st.text("ABCDEFabcdef0123", max_size=8),
    "name": st.text(max_size=8),
    "download_state": st.sampled_from(["downloading", "stalled (no seeds)", ""]),
}
ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(-1, 2**41), st.sampled_from(["12", "0", "x", True]), ANY_VALUE),
        **{name: st.one_of(value, value, ANY_VALUE) for name, value in WELL_FORMED.items()},
    },
)


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    7.9,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    2**40,
    2**63,
    "",
    "7",
    "1.5",
    "nan",
    "-inf",
    "Infinity",
    "1e999",
    "\u00b2",  # superscript two
    "\uff11\uff12",  # fullwidth 12
    "\u0661\u0662",  # Arabic-Indic 12
    " yes ",
    "no",
    "abc",
    *DATES,
    [],
    [{}],
    {},
]
WELL_FORMED_ITEM = {
    "id": 5,
    "hash": "ABc",
    "name": "n",
    "download_state": "downloading",
    **dict.fromkeys((*ref.INTS, *ref.INTS_TOO), 3),
    **dict.fromkeys(ref.BOOLS, True),
    **dict.fromkeys(ref.FLOATS, 0.5),
    **dict.fromkeys(ref.TEXTS, "t"),
    **dict.fromkeys(ref.DATES, DATES[0]),
    "size": 10,
    "progress": 0.25,
    "files": [{}],
    "file_count": 1,
}


def test_every_field_with_every_odd_value_is_the_oracles() -> None:
    """A well-formed item with one field replaced by each odd value (or left out), exhaustively."""
    for convert, oracle in ((parse.torrent, ref.torrent), (parse.queued, ref.queued)):
        _same(WELL_FORMED_ITEM, convert, oracle)
        for field in WELL_FORMED_ITEM:
            _same({k: v for k, v in WELL_FORMED_ITEM.items() if k != field}, convert, oracle)
            for value in ODD_VALUES:
                _same({**WELL_FORMED_ITEM, field: value}, convert, oracle)
                _same({"id": 5, field: value}, convert, oracle)


def _outcome(convert: Any, item: Any) -> Any:
    """The message's fields in order (presence included), None, or the exception's type."""
    try:
        message = convert(item)
    except (ValueError, TypeError, OverflowError) as error:
        return type(error)
    return None if message is None else message.ListFields()


def _same(item: Any, fast: Any, oracle: Any) -> None:
    assert _outcome(fast, item) == _outcome(oracle, item), item


@settings(max_examples=3000, deadline=None)
@given(ITEMS)
def test_a_torrent_is_the_oracles(item: dict[str, Any]) -> None:
    """Any item: the same fields set to the same values, or the same refusal."""
    _same(item, parse.torrent, ref.torrent)


@settings(max_examples=1000, deadline=None)
@given(ITEMS)
def test_a_queued_item_is_the_oracles(item: dict[str, Any]) -> None:
    """Any getqueued item, likewise."""
    _same(item, parse.queued, ref.queued)


@settings(max_examples=500, deadline=None)
@given(ITEMS, st.sampled_from(["usenet", "webdl"]))
def test_a_download_is_a_torrent_of_its_type(item: dict[str, Any], kind: str) -> None:
    """Usenet and web downloads: the torrent's fields plus their type, queued ones too."""
    expected = {"usenet": tpb.ASSET_TYPE_USENET, "webdl": tpb.ASSET_TYPE_WEBDL}[kind]
    for to_row, oracle in (
        (parse.download_row, ref.torrent),
        (parse.queued_download_row, ref.queued),
    ):
        try:
            message = oracle(item)
        except (ValueError, TypeError, OverflowError):
            continue
        found = to_row(item, kind)
        if message is None:
            assert found is None
            continue
        assert found is not None
        message.asset_type = expected
        assert torrent_rows.message(found).ListFields() == message.ListFields()


@settings(max_examples=500, deadline=None)
@given(st.lists(ITEMS, max_size=4))
def test_rows_in_a_snapshot_carry_the_very_same_messages(items: list[Any]) -> None:
    """The poller's rows, sent as messages (to an older shard) or as TorrentRows, are the items:
    the two transports carry the very same values (no NaN or infinity reaches either)."""
    rows, messages = [], []
    for item in items:
        try:
            message = parse.torrent(item)
        except (ValueError, TypeError, OverflowError):
            continue
        row = parse.torrent_row(item)
        if message is not None and row is not None:
            rows.append(row)
            messages.append(message)
    as_messages = [torrent_rows.message_fields(r) for r in rows]
    request = pb.IngestRequest(snapshot={"poll_id": "p", "torrents": as_messages})  # type: ignore[arg-type]
    assert [t.ListFields() for t in request.snapshot.torrents] == [m.ListFields() for m in messages]
    request = pb.IngestRequest(snapshot={"poll_id": "p", "torrent_rows": torrent_rows.encode(rows)})  # type: ignore[arg-type]
    sent = request.snapshot.torrent_rows
    read = [torrent_rows.message(r) for r in torrent_rows.decode(sent.fields, sent.rows)]
    assert [t.ListFields() for t in read] == [m.ListFields() for m in messages]


@pytest.mark.parametrize(
    ("field", "sent", "expected"),
    [
        ("seeds", None, None),
        ("seeds", "7", 7),
        ("seeds", 7.9, 7),
        ("seeds", True, 1),
        ("seeds", math.nan, None),
        ("ratio", 2, 2.0),
        ("ratio", True, None),
        ("ratio", math.nan, None),
        ("ratio", math.inf, None),
        ("ratio", "Infinity", None),
        ("availability", "1e999", None),
        ("progress", "inf", None),
        ("progress", -math.inf, None),
        ("ratio", "1.5", 1.5),
        ("active", "true", True),
        ("active", 0, False),
        ("active", None, None),
        ("progress", 1.5, 1.0),
        ("progress", -1, 0.0),
        ("size", 0, None),
        ("size", 2**63, None),
        ("seeds", 2**31, None),
        ("seeds", 3e9, None),
        ("file_count", "1e19", None),
        ("eta", -(2**63) - 1, None),
        ("eta", -(2**63), -(2**63)),
        ("peers", 2**31 - 1, 2**31 - 1),
        ("size", "12", 12),
        ("tracker", "", None),
        ("tracker", 5, None),
        ("updated_at", "garbage", None),
        ("updated_at", 5, None),
    ],
)
def test_wrong_types_and_nulls_take_the_slow_path_to_the_same_answer(
    field: str, sent: Any, expected: Any
) -> None:
    """A few spelled out: null stays unknown (never 0), numbers as text are read, NaN and the
    infinities are null (a ratio of infinity would pass every threshold; a progress of it
    would read as complete), and so is a number past its field's range (it would fail every
    snapshot of the user, not just the one item)."""
    item = {"id": 5, "hash": "AB", "name": "n", "download_state": None, field: sent}
    message = parse.torrent(item)
    assert message is not None
    assert (message.hash, message.download_state) == ("ab", "")
    present = message.HasField(field)  # type: ignore[arg-type]
    assert (getattr(message, field) if present else None) == expected


@pytest.mark.parametrize("sent", ["\u00b2", "\uff11\uff12", "\u0661\u0662", "12 ", "+12", "1_2"])
def test_an_id_is_ascii_digits_or_nothing(sent: str) -> None:
    """Other digits neither crash the poll (a superscript two is a digit to isdigit(), not to
    int()) nor pass for another item's id (fullwidth 12 would shadow torrent 12): dropped."""
    assert parse.torrent({"id": sent, "hash": "ab", "name": "n"}) is None
    assert parse.queued({"id": sent}) is None
    found = parse.torrent({"id": "12", "hash": "ab", "name": "n"})
    assert found is not None
    assert found.id == 12
