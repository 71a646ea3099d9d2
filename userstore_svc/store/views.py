"""One user's custom views: the SQL behind TBM's saved filter sets of the downloads page.

Filters and visible columns are the frontend's JSON, kept as text and never interpreted here.
Ids are never reused (TBM's table is AUTOINCREMENT and the frontend remembers a view by its id):
the highest id ever given is kept in ``meta``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common import limits
from userstore_svc.store.pool import immediate

FIELDS = limits.VIEW_FIELDS  # the body's fields = the columns a client writes = update paths
_SELECT = f"SELECT id, {', '.join(FIELDS)}, sort_order, created_at, updated_at FROM custom_views"
LAST_ID = "custom_views_last_id"


@dataclass(frozen=True, slots=True)
class ViewFields:
    """What a client writes: JSON as text, None for null."""

    name: str
    filters: str
    sort_field: str | None = None
    sort_direction: str | None = None
    visible_columns: str | None = None
    asset_type: str | None = None
    search_query: str | None = None


@dataclass(frozen=True, slots=True)
class View:
    """A stored view."""

    id: int
    fields: ViewFields
    sort_order: int
    created_at: float
    updated_at: float


def _view(row: Sequence[Any]) -> View:
    view_id, *fields, sort_order, created, updated = row
    return View(view_id, ViewFields(*fields), sort_order, created, updated)


def list_views(conn: sqlite3.Connection) -> list[View]:
    """Every view, as TBM orders them: sort_order, then id."""
    return [_view(r) for r in conn.execute(_SELECT + " ORDER BY sort_order, id")]


def get_view(conn: sqlite3.Connection, view_id: int) -> View | None:
    """One view, or None."""
    row = conn.execute(_SELECT + " WHERE id = ?", (view_id,)).fetchone()
    return None if row is None else _view(row)


def view_ids(conn: sqlite3.Connection) -> list[int]:
    """Every view id, ascending."""
    return [r[0] for r in conn.execute("SELECT id FROM custom_views ORDER BY id")]


def next_id(conn: sqlite3.Connection, meta_key: str, table: str) -> int:
    """The first id never given in `table` (its highest id, or the highest ever given, plus one).

    `table` is one of this store's own table names, never input.
    """
    (highest,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (meta_key,)).fetchone()
    given = int(row[0]) if row is not None else 0
    return max(int(highest), given) + 1


def remember_id(conn: sqlite3.Connection, meta_key: str, last: int) -> None:
    """Record the highest id given (inside the caller's transaction)."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (meta_key, str(last)))


def create_view(conn: sqlite3.Connection, fields: ViewFields, now: float) -> View:
    """Insert a view after every other one (sort_order = highest + 1, 0 for the first)."""
    with immediate(conn):
        view_id = next_id(conn, LAST_ID, "custom_views")
        (highest,) = conn.execute("SELECT MAX(sort_order) FROM custom_views").fetchone()
        sort_order = 0 if highest is None else int(highest) + 1
        conn.execute(
            f"INSERT INTO custom_views(id, {', '.join(FIELDS)}, sort_order, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (view_id, *_values(fields), sort_order, now, now),
        )
        remember_id(conn, LAST_ID, view_id)
    return View(view_id, fields, sort_order, now, now)


def _values(fields: ViewFields) -> tuple[Any, ...]:
    return tuple(getattr(fields, name) for name in FIELDS)


def update_view(
    conn: sqlite3.Connection, view_id: int, changes: Mapping[str, Any], now: float
) -> View | None:
    """Write the given columns (and updated_at); None when the view does not exist."""
    names = [name for name in FIELDS if name in changes]  # only known columns reach the SQL
    assignments = "".join(f"{name} = ?, " for name in names)
    with immediate(conn):
        cursor = conn.execute(
            f"UPDATE custom_views SET {assignments}updated_at = ? WHERE id = ?",
            (*(changes[name] for name in names), now, view_id),
        )
        if cursor.rowcount == 0:
            return None
    return get_view(conn, view_id)


def delete_view(conn: sqlite3.Connection, view_id: int) -> bool:
    """Delete a view; False when it did not exist."""
    with immediate(conn):
        return conn.execute("DELETE FROM custom_views WHERE id = ?", (view_id,)).rowcount > 0


def reorder_views(conn: sqlite3.Connection, ordered: Sequence[int], now: float) -> None:
    """Give each view its index in `ordered` as sort_order (every id must be a view's)."""
    with immediate(conn):
        conn.executemany(
            "UPDATE custom_views SET sort_order = ?, updated_at = ? WHERE id = ?",
            [(index, now, view_id) for index, view_id in enumerate(ordered)],
        )
