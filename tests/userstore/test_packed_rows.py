"""Torrent rows as one packed value: every field round-trips exactly, and migration 10 is exact."""

from __future__ import annotations

import functools
import math
import sqlite3
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.userstore.factory import Feed, snap
from userstore_svc.core.models import KINDS, TORRENT, TorrentSnapshot, TorrentState
from userstore_svc.store import packed, user_db
from userstore_svc.store.migrations import USER_MIGRATIONS, migrate
from userstore_svc.store.pool import connect

# SQLite stores a NaN as NULL and -0.0 as 0.0: the fields kept as REAL columns (and every REAL
# column of version 9) can hold any other float, as before.
REAL_COLUMNS = {"removed_at", "observed_since"}
INT64 = st.integers(-(2**63), 2**63 - 1)


def _strategy(hint: Any, name: str, *, wide: bool) -> st.SearchStrategy[Any]:
    """Any value of a field's type: None too where the type allows it."""
    if name == "kind":
        return st.sampled_from(KINDS)
    if name == "id":
        return st.integers(-(2**62), 2**62)  # the row key, derived from it, is a SQLite INTEGER
    if isinstance(hint, types.UnionType):
        (inner,) = (h for h in typing.get_args(hint) if h is not type(None))
        return st.none() | _strategy(inner, name, wide=wide)
    if hint is bool:
        return st.booleans()
    if hint is int:
        # Wider than 64 bits only where the packed value holds it (SQLite's INTEGER does not).
        return st.integers() if wide else INT64
    if hint is float:
        if wide and name not in REAL_COLUMNS:
            return st.floats()
        return st.floats(allow_nan=False).map(lambda x: x + 0.0)  # -0.0 + 0.0 is 0.0
    if hint is str:
        # Surrogates included: orjson refuses them, the standard library's json keeps them.
        return st.text(st.characters(exclude_categories=() if wide else ["Cs"]))
    if hint is bytes:
        return st.binary()
    raise AssertionError(f"no strategy for {name}: {hint}")


def states(*, wide: bool) -> st.SearchStrategy[TorrentState]:
    """Any state, field by field from the models' own types."""
    snap_hints = typing.get_type_hints(TorrentSnapshot)
    state_hints = typing.get_type_hints(TorrentState)
    snaps = st.tuples(*(_strategy(h, n, wide=wide) for n, h in snap_hints.items())).map(
        lambda values: TorrentSnapshot(*values)
    )
    rest = [_strategy(h, n, wide=wide) for n, h in state_hints.items() if n != "snap"]
    return st.tuples(snaps, *rest).map(lambda values: TorrentState(*values))


def same(got: Any, want: Any) -> bool:
    """Equal value for value and type for type (1 is not True; NaN is itself; -0.0 is not 0.0)."""
    if isinstance(want, tuple):
        return type(got) is type(want) and all(map(same, got, want)) and len(got) == len(want)
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return type(got) is type(want) and repr(got) == repr(want)


@functools.cache
def _database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, USER_MIGRATIONS)
    return conn


def _round_trip(state: TorrentState) -> TorrentState:
    conn = _database()
    conn.execute("DELETE FROM torrents")
    conn.execute(user_db.INSERT_TORRENT, user_db.state_row(state))
    (row,) = conn.execute(user_db.SELECT_TORRENTS).fetchall()
    return user_db.state_from_row(row)


@settings(max_examples=400, deadline=None)
@given(states(wide=True))
def test_any_state_round_trips_exactly(state: TorrentState) -> None:
    """Any value of every field, None in any nullable one, NaN, infinities, huge integers and
    lone surrogates: read back as written."""
    assert same(_round_trip(state), state)


def _nullable(cls: type) -> list[str]:
    return [n for n, h in typing.get_type_hints(cls).items() if isinstance(h, types.UnionType)]


def _extreme(*, zero: bool) -> TorrentState:
    """A state whose every nullable field is None (or, with `zero`, 0 / False / "")."""

    def value(name: str, hint: Any) -> Any:
        if name == "kind":
            return TORRENT
        if isinstance(hint, types.UnionType) and not zero:
            return None
        inner = next(h for h in typing.get_args(hint) or (hint,) if h is not type(None))
        return {bool: False, int: 0, float: 0.0, str: "", bytes: b""}[inner]

    snap_hints = typing.get_type_hints(TorrentSnapshot)
    snapshot = TorrentSnapshot(*(value(n, h) for n, h in snap_hints.items()))
    hints = typing.get_type_hints(TorrentState)
    return TorrentState(snapshot, *(value(n, h) for n, h in hints.items() if n != "snap"))


def test_unknown_stays_distinct_from_zero() -> None:
    """None in every nullable field and 0 (False, "") in every one both come back as written."""
    unknown, zero = _extreme(zero=False), _extreme(zero=True)
    nullable = len(_nullable(TorrentSnapshot)) + len(_nullable(TorrentState))
    assert sum(v is None for v in (*unknown.snap, *unknown)) == nullable > 30
    for state in (unknown, zero):
        assert same(_round_trip(state), state)
    assert not same(_round_trip(unknown), zero)


def test_the_layout_is_the_models() -> None:
    """Layout 1 names the models' fields: adding one needs a new layout (and a test of it)."""
    assert TorrentSnapshot._fields == packed.SNAPSHOT_FIELDS_1
    assert TorrentState._fields[1:] == packed.STATE_FIELDS_1
    assert set(packed.COLUMNS) <= set(packed.STATE_FIELDS_1)


def test_an_unknown_layout_is_refused() -> None:
    """A row of a layout this build does not know is an error, never a guess."""
    with pytest.raises(ValueError, match="layout"):
        packed.unpack(packed.pack((packed.LAYOUT + 1, 1, 2)))


def test_values_orjson_would_change_take_the_exact_path() -> None:
    """Infinity, NaN and a 65-bit integer are kept (orjson would write null or refuse)."""
    for value in (math.inf, -math.inf, 2**64, -(2**64)):
        blob = packed.pack((1, value, None, "null"))
        assert blob.startswith(b"S")
        assert packed.unpack(blob) == [1, value, None, "null"]
    assert math.isnan(packed.unpack(packed.pack((1, math.nan)))[1])
    assert not packed.pack((1, 2.5, None, True, "x")).startswith(b"S")


# The version 9 `torrents` columns in the models' order (the row key first), spelled out here:
# what user_db wrote before migration 10.
V9_COLUMNS = (
    "torrent_key, torrent_id, hash, name, magnet, size, active, added_at, updated_at, last_state, "
    "seeds, peers, ratio, last_progress, download_speed, upload_speed, eta, expires_at, "
    "download_present, download_finished, file_count, availability, tracker, last_total_uploaded, "
    "last_total_downloaded, cached, cached_at, seed_torrent, long_term_seeding, private, queued, "
    "airlocked, allow_zipped, original_url, kind, status, first_seen_at, last_seen_at, present, "
    "removed_at, missing_since, observed_since, last_download_activity_at, "
    "last_upload_activity_at, stalled_since, idle_excluded_seconds, stall_count, "
    "downloading_started_at, seeding_started_at, seeding_seconds, seeding_run_since, "
    "downloading_seconds, downloading_run_since, active_seconds, active_run_since, "
    "max_download_speed, samples, tracked_since, whole_life"
)


def _v9_row(state: TorrentState, key: int) -> tuple[Any, ...]:
    """A state as version 9 stored it: booleans as 0/1, None as NULL."""
    values = (key, *state.snap, *state[1:])
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


def _at_version_9(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    assert migrate(conn, USER_MIGRATIONS[:9]) == 9
    conn.executemany(f"INSERT INTO torrents({V9_COLUMNS}) VALUES ({','.join('?' * 59)})", rows)


def _stored(conn: sqlite3.Connection) -> dict[int, TorrentState]:
    """The rows by their key, as the store reads them."""
    assert conn.execute("PRAGMA user_version").fetchone() == (USER_MIGRATIONS[-1].version,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return {row[0]: user_db.state_from_row(row) for row in conn.execute(user_db.SELECT_TORRENTS)}


def test_migration_10_converts_real_rows_exactly(tmp_path: Path) -> None:
    """Rows a pipeline produced (downloading, seeding, queued, gone, unknown values), written at
    version 9, read back from version 10 value for value and type for type; pruning by
    `removed_at` and the history query still find their columns."""
    feed = Feed()
    torrents = [
        snap("downloading", id=1, total_downloaded=10),
        snap("seeding", id=2, ratio=1.5, total_uploaded=7),
        snap("queued", id=3),
        snap("completed", id=4, size=None, file_count=None, tracker=None, original_url=None),
        snap("seeding", id=5),
    ]
    feed.poll(0, *torrents)
    feed.poll(60, *(t._replace(total_downloaded=(t.total_downloaded or 0) + 5) for t in torrents))
    feed.poll(120, *torrents[:4])
    feed.poll(180, *torrents[:4])
    original = dict(feed.states)
    assert any(not s.present for s in original.values())
    path = tmp_path / "user.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    _at_version_9(conn, [_v9_row(s, k) for k, s in original.items()])
    conn.close()
    conn = connect(path)  # the pool's own open: it migrates
    try:
        migrated = _stored(conn)
        assert migrated.keys() == original.keys()
        for key, state in original.items():
            assert same(migrated[key], state), key
        gone = [k for k, s in original.items() if s.removed_at is not None]
        assert conn.execute(
            "SELECT torrent_key FROM torrents WHERE present = 0 AND removed_at < ?", (1e12,)
        ).fetchall() == [(k,) for k in gone]
        assert conn.execute(
            "SELECT samples, observed_since FROM torrents WHERE torrent_key=?", (2,)
        ).fetchone() == (original[2].samples, original[2].observed_since)
    finally:
        conn.close()


@settings(max_examples=150, deadline=None)
@given(st.lists(states(wide=False), min_size=1, max_size=5))
def test_migration_10_converts_any_row_exactly(drawn: list[TorrentState]) -> None:
    """Any version 9 row (None in any nullable column) is converted value for value."""
    rows = dict(enumerate(drawn, 1))
    conn = sqlite3.connect(":memory:", isolation_level=None)
    _at_version_9(conn, [_v9_row(s, k) for k, s in rows.items()])
    migrate(conn, USER_MIGRATIONS)
    migrated = _stored(conn)
    conn.close()
    for key, state in rows.items():
        assert same(migrated[key].snap, state.snap)
        assert same(migrated[key][1:], state[1:])


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.integers(-(2**62), 2**62),
        st.tuples(st.none() | st.floats(), st.none() | st.floats()),
    )
)
def test_dates_overlay_round_trips_exactly(
    dates: dict[int, tuple[float | None, float | None]],
) -> None:
    """The dates laid over the rows read back exactly: None stays None, NaN and infinities stay."""
    got = user_db.decode_dates(user_db.encode_dates(dates))
    assert got.keys() == dates.keys()
    assert all(same(got[key], pair) for key, pair in dates.items())


def test_dates_overlay_reads_what_the_standard_library_wrote() -> None:
    """Overlays written before orjson wrote them (the standard library's JSON) read the same."""
    written = '{"7":[1700000000.25,null],"-3":[NaN,Infinity]}'
    got = user_db.decode_dates(written)
    assert same(got[7], (1700000000.25, None))
    assert same(got[-3], (math.nan, math.inf))
