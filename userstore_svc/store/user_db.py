"""One user's database: the SQL for states, events, rules, logs, actions, archives and limits.

:class:`UserData` is everything a poll reads. It is loaded once when the connection opens and kept
beside it in the pool (the userstore is the only writer, so the copy stays exact); a poll for a
user whose database is still open reads nothing from disk.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from userstore_svc.core.models import SNAPSHOT_FIELDS, Event, TorrentSnapshot, TorrentState
from userstore_svc.core.rules.evaluate import CompiledRule, compile_rule
from userstore_svc.core.rules.model import Rule
from userstore_svc.core.rules.plan import DEFAULT_COOLDOWN_MINUTES, TorrentLimit
from userstore_svc.core.rules.schema import MAX_METADATA_BYTES, json_bytes, parse_rule
from userstore_svc.store import packed
from userstore_svc.store.pool import Handle

log = logging.getLogger(__name__)
# The `torrents` columns: the row key, the fields SQL reads (packed.COLUMNS, in that order) and
# every other field packed into one value. Reading 100 rows of 60 columns and building their
# states took 1.25 ms of CPU; six columns and one orjson array each, 0.5 ms (writing 52: 0.93
# against 0.42 ms).
TORRENT_COLUMN_LIST = "torrent_key, present, removed_at, observed_since, samples, packed"
# Every torrent row, columns in the order state_from_row reads them.
SELECT_TORRENTS = f"SELECT {TORRENT_COLUMN_LIST} FROM torrents"
INSERT_TORRENT = f"INSERT OR REPLACE INTO torrents({TORRENT_COLUMN_LIST}) VALUES (?,?,?,?,?,?)"
assert SNAPSHOT_FIELDS == packed.SNAPSHOT_FIELDS_1
assert TorrentState._fields[1:] == packed.STATE_FIELDS_1
_STATE_FIELDS = TorrentState._fields
# The state's packed fields, gathered from a state in the layout's order.
_PACKED_STATE = operator.itemgetter(
    *(_STATE_FIELDS.index(f) for f in packed.PACKED_1[len(SNAPSHOT_FIELDS) :])
)
_SNAP_END = 1 + len(SNAPSHOT_FIELDS)
# A decoded array gets the snapshot and the columns appended (in this order), then the state is
# gathered from it in one call.
_EXTRA = ("snap", *packed.COLUMNS)
_FROM_ARRAY = operator.itemgetter(
    *(
        len(packed.PACKED_1) + 1 + _EXTRA.index(f) if f in _EXTRA else 1 + packed.PACKED_1.index(f)
        for f in _STATE_FIELDS
    )
)
_MISSING = 1 + packed.PACKED_1.index("missing_since")
_LAST_SEEN = 1 + packed.PACKED_1.index("last_seen_at")
_UPDATED = 1 + packed.PACKED_1.index("updated_at")
_EXPIRES = 1 + packed.PACKED_1.index("expires_at")
_new = tuple.__new__
CACHE_KEY = "data"
# The meta row that holds UserData.dates. A torrent active at TorBox gets new `updated_at` and
# `expires_at` on every list, bytes or no bytes; rewriting its row (and the indexes) for that
# alone cost a quarter of a poll's row writes. The dates are kept here instead, one small value
# per poll, and laid over the rows when they are read, so what is read is what was last seen.
DATES_KEY = "torrent_dates"


@dataclass(slots=True)
class StoredRule:
    """A rule as stored: its validated form, compiled test, and bookkeeping."""

    id: int
    position: int
    rule: Rule
    compiled: CompiledRule
    created_at: float
    updated_at: float
    last_evaluated_at: float | None
    last_executed_at: float | None
    execution_count: int
    # No scheduled evaluation before this (set when the rule is saved or enabled).
    not_before: float | None = None


@dataclass(slots=True)
class PendingAction:
    """An intent whose outcome has not arrived (reconciled against the next snapshot)."""

    id: int
    key: int
    action: str
    rule_id: int
    log_id: int | None
    created_at: float


@dataclass(slots=True)
class UserData:
    """Everything one poll of this user reads."""

    states: dict[int, TorrentState]
    last_observed_at: float | None
    polls: int
    pending_missing: dict[int, tuple[int, bool]]
    # The poll interval the last applied snapshot was taken under (a gap is judged by it).
    poll_interval: float | None
    rules: list[StoredRule]
    holds: dict[int, dict[int, dict[str, float]]]
    protected: frozenset[int]
    limits: dict[int, TorrentLimit]
    last_actions: dict[tuple[int, int], float]
    pending: list[PendingAction]
    next_ids: dict[str, int] = field(default_factory=dict)
    # TorBox's dates of torrents whose row was not rewritten when only they moved: row key ->
    # (updated_at, expires_at), newer than the row's (see DATES_KEY).
    dates: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)
    # Events an event-triggered rule could not act on yet: rule id -> torrent key -> event time.
    deferred: dict[int, dict[int, float]] = field(default_factory=dict)


def state_row(state: TorrentState) -> tuple[Any, ...]:
    """A state as one `torrents` row (see :data:`TORRENT_COLUMN_LIST`)."""
    return (
        state.snap.key,
        1 if state.present else 0,
        state.removed_at,
        state.observed_since,
        state.samples,
        packed.pack((packed.LAYOUT, *state.snap, *_PACKED_STATE(state))),
    )


def state_from_row(
    row: Sequence[Any],
    seen_at: float | None = None,
    dates: tuple[float | None, float | None] | None = None,
) -> TorrentState:
    """A `torrents` row back as a state.

    `seen_at` is the last applied snapshot's time: a present torrent's row is not rewritten when
    only its sighting changed, so every present row was seen then (see :func:`read_user_data`).
    `dates` are the row's (updated_at, expires_at) newer than its own (see DATES_KEY).
    Built with ``tuple.__new__``: a named tuple's own constructor maps its arguments one by one.
    """
    _key, present, removed_at, observed_since, samples, blob = row
    values = packed.unpack(blob)
    if dates is not None:
        values[_UPDATED], values[_EXPIRES] = dates
    snap = _new(TorrentSnapshot, values[1:_SNAP_END])
    present = present == 1
    if present and seen_at is not None and values[_MISSING] is None:
        values[_LAST_SEEN] = seen_at
    values.extend((snap, present, removed_at, observed_since, samples))
    return _new(TorrentState, _FROM_ARRAY(values))


async def load(handle: Handle) -> UserData:
    """The user's data, from the cache beside the connection or read once from disk."""
    cached = handle.cache.get(CACHE_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    data = await handle.run(read_user_data)
    handle.cache[CACHE_KEY] = data
    return data


def read_user_data(conn: sqlite3.Connection) -> UserData:
    """Everything a poll reads, decoded."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    last_observed = float(meta["last_observed_at"]) if "last_observed_at" in meta else None
    dates = decode_dates(meta.get(DATES_KEY, "{}"))
    states: dict[int, TorrentState] = {}
    for row in conn.execute(SELECT_TORRENTS):
        # Rows are written only when something besides the sighting changed; every present
        # torrent was sighted by the last applied snapshot.
        key = row[0]
        states[key] = state_from_row(row, last_observed, dates.get(key))
    rules = [_stored_rule(row) for row in conn.execute(_RULE_SELECT + " ORDER BY position, id")]
    holds: dict[int, dict[int, dict[str, float]]] = {}
    for rule_id, key, path, since in conn.execute(
        "SELECT rule_id, torrent_key, path, since FROM condition_holds"
    ):
        holds.setdefault(rule_id, {}).setdefault(key, {})[path] = since
    protected = frozenset(r[0] for r in conn.execute("SELECT torrent_id FROM protected_downloads"))
    limits = {
        r[0]: TorrentLimit(r[1], r[2])
        for r in conn.execute("SELECT torrent_id, seed_ratio, seed_time_hours FROM torrent_limits")
    }
    # Only actions recent enough to hold a cooldown matter (not the whole log).
    longest = (
        max([DEFAULT_COOLDOWN_MINUTES, *(r.rule.cooldown_minutes or 0.0 for r in rules)]) * 60.0
    )
    since = (last_observed or 0.0) - longest
    last_actions: dict[tuple[int, int], float] = {}
    for rule_id, key, created_at in conn.execute(
        # The time index, not the (rule, torrent) one the planner prefers for grouping: only the
        # few recent rows matter, and the other index means reading the whole log. In time
        # order, the last of a (rule, torrent) pair is its latest: a GROUP BY's temporary tree
        # cost more than these few assignments (0.36 against 0.30 ms, cold).
        "SELECT rule_id, torrent_key, created_at FROM actions INDEXED BY actions_created "
        "WHERE created_at >= ? "
        "AND status IN ('pending','succeeded','failed','dry_run','unknown') "
        "ORDER BY created_at",
        (since,),
    ):
        last_actions[rule_id, key] = created_at
    pending = [
        PendingAction(*r)
        for r in conn.execute(
            "SELECT id, torrent_key, action, rule_id, log_id, created_at FROM actions "
            "WHERE status = 'pending'"
        )
    ]
    ids = conn.execute(
        "SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM actions), "
        "(SELECT COALESCE(MAX(id), 0) + 1 FROM rule_logs), "
        "(SELECT COALESCE(MAX(id), 0) + 1 FROM archived_downloads), "
        "(SELECT COALESCE(MAX(id), 0) + 1 FROM events)"
    ).fetchone()
    return UserData(
        states=states,
        last_observed_at=last_observed,
        polls=int(meta.get("polls", 0)),
        pending_missing=decode_missing(meta.get("pending_missing", "{}")),
        poll_interval=float(meta["poll_interval"]) if "poll_interval" in meta else None,
        rules=rules,
        holds=holds,
        protected=protected,
        limits=limits,
        last_actions=last_actions,
        pending=pending,
        next_ids=dict(
            zip(("actions", "rule_logs", "archived_downloads", "events"), ids, strict=True)
        ),
        deferred=decode_deferred(meta.get("deferred_events", "{}")),
        dates=dates,
    )


_RULE_SELECT = (
    "SELECT id, position, document, created_at, updated_at, last_evaluated_at, "
    "last_executed_at, execution_count, not_before FROM rules"
)


def _stored_rule(row: Sequence[Any]) -> StoredRule:
    rule_id, position, document, created, updated, evaluated, executed, count, not_before = row
    rule, compiled = _compiled(rule_id, document)
    return StoredRule(
        id=rule_id,
        position=position,
        rule=rule,
        compiled=compiled,
        created_at=created,
        updated_at=updated,
        last_evaluated_at=evaluated,
        last_executed_at=executed,
        execution_count=count,
        not_before=not_before,
    )


@functools.lru_cache(maxsize=4096)
def _compiled(rule_id: int, document: str) -> tuple[Rule, CompiledRule]:
    """Parse and compile a stored rule once.

    Many users hold the same documents (presets), and compiled rules are immutable: share them.
    """
    doc = json.loads(document)
    if json_bytes(doc.get("metadata")) > MAX_METADATA_BYTES:
        # Stored before metadata was bounded: drop it on read (the next save writes the rule
        # without it) so the rule still loads, answers and runs.
        log.warning("oversized rule metadata dropped on read", extra={"rule_id": rule_id})
        doc.pop("metadata")
    rule = parse_rule({**doc, "id": rule_id})
    return rule, compile_rule(rule)


def decode_missing(text: str) -> dict[int, tuple[int, bool]]:
    """Torrents awaiting removal: key -> (polls missing, mass episode).

    Older versions stored a plain list of keys missing from a suspicious snapshot: each one is a
    mass episode seen once.
    """
    raw = json.loads(text)
    if isinstance(raw, list):
        return {int(key): (1, True) for key in raw}
    return {int(key): (int(value[0]), bool(value[1])) for key, value in raw.items()}


def encode_missing(missing: dict[int, tuple[int, bool]]) -> str:
    """The inverse of :func:`decode_missing`."""
    return json.dumps({str(k): [c, m] for k, (c, m) in sorted(missing.items())})


def decode_deferred(text: str) -> dict[int, dict[int, float]]:
    """Deferred events from their meta row: rule id -> torrent key -> event time."""
    raw = json.loads(text)
    return {int(r): {int(k): float(t) for k, t in keys.items()} for r, keys in raw.items()}


def encode_deferred(deferred: dict[int, dict[int, float]]) -> str:
    """The inverse of :func:`decode_deferred`."""
    return json.dumps(
        {
            str(r): {str(k): t for k, t in sorted(keys.items())}
            for r, keys in sorted(deferred.items())
        }
    )


def decode_dates(text: str) -> dict[int, tuple[float | None, float | None]]:
    """The dates laid over the rows: row key -> (updated_at, expires_at)."""
    try:
        pairs = orjson.loads(text)
    except orjson.JSONDecodeError:
        pairs = json.loads(text)  # written by the standard library: a non-finite date
    return {int(key): (pair[0], pair[1]) for key, pair in pairs.items()}


def encode_dates(dates: dict[int, tuple[float | None, float | None]]) -> str:
    """The inverse of :func:`decode_dates`.

    Written on every poll that moves a date (TorBox moves an active item's updated_at on every
    list), so by orjson: about 20 us against 130 for the standard library at 100 torrents. orjson
    writes a non-finite float as null, which is not unknown: such a value takes the standard
    library's path, which keeps it (as packed rows do).
    """
    text = orjson.dumps(dates, option=orjson.OPT_NON_STR_KEYS)
    if text.count(b"null") == sum(pair.count(None) for pair in dates.values()):
        return text.decode()
    return json.dumps({str(k): list(v) for k, v in dates.items()}, separators=(",", ":"))


def take_ids(data: UserData, table: str, count: int) -> list[int]:
    """Reserve `count` row ids of a table (the user's lock makes this process the only writer)."""
    first = data.next_ids[table]
    data.next_ids[table] = first + count
    return list(range(first, first + count))


def event_rows(events: Sequence[Event], ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """Rows for the events table."""
    return [
        (event_id, e.torrent_key, e.type, e.observed_at, json.dumps(e.data, separators=(",", ":")))
        for event_id, e in zip(ids, events, strict=True)
    ]


INSERT_EVENT = "INSERT INTO events(id, torrent_key, type, observed_at, data) VALUES (?,?,?,?,?)"
UPSERT_META = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
