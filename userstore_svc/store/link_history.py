"""One user's link history: the SQL behind TBM's list of generated download links.

An entry's identity is (item_id, file_id, asset_type) with file_id compared NULL-safely (``IS``):
writing an entry replaces the stored one with the same identity. Times are REAL seconds, so the
newest-first order ``generated_at DESC, id DESC`` is exact and a keyset position (generated_at,
id) never skips or repeats a row. Ids are never reused (TBM's table is AUTOINCREMENT).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from userstore_svc.store.pool import immediate
from userstore_svc.store.views import next_id, remember_id

_COLUMNS = (
    "id, item_id, file_id, url, asset_type, item_name, file_name, generated_at, created_at, status"
)
_NEWEST_FIRST = " ORDER BY generated_at DESC, id DESC"
_MATCHES = (
    "(item_id LIKE ?1 ESCAPE '\\' OR item_name LIKE ?1 ESCAPE '\\' "
    "OR file_name LIKE ?1 ESCAPE '\\' OR url LIKE ?1 ESCAPE '\\')"
)
_SAME_IDENTITY = "DELETE FROM link_history WHERE item_id = ? AND file_id IS ? AND asset_type = ?"
LAST_ID = "link_history_last_id"
# Statements of a bulk delete, each well under SQLite's limit on bound variables.
DELETE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class EntryIn:
    """An entry as written; generated_at None means now."""

    item_id: str
    file_id: str | None
    url: str
    asset_type: str
    item_name: str | None
    file_name: str | None
    status: str
    generated_at: float | None = None

    @property
    def identity(self) -> tuple[str, str | None, str]:
        """What an upsert replaces by."""
        return (self.item_id, self.file_id, self.asset_type)


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored entry, in the table's column order."""

    id: int
    item_id: str
    file_id: str | None
    url: str
    asset_type: str
    item_name: str | None
    file_name: str | None
    generated_at: float
    created_at: float
    status: str


def like_pattern(search: str) -> str:
    """A LIKE pattern matching `search` literally anywhere (ASCII case-insensitive, as LIKE is)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page(
    conn: sqlite3.Connection, page_number: int, limit: int, search: str
) -> tuple[list[Entry], int]:
    """Entries of one page, newest first, and how many match in all."""
    where, params = ("", []) if not search else (" WHERE " + _MATCHES, [like_pattern(search)])
    (total,) = conn.execute("SELECT COUNT(*) FROM link_history" + where, params).fetchone()
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM link_history{where}{_NEWEST_FIRST} LIMIT ? OFFSET ?",
        [*params, limit, (page_number - 1) * limit],
    ).fetchall()
    return [Entry(*r) for r in rows], int(total)


def scan(
    conn: sqlite3.Connection, limit: int, search: str, after: tuple[float, int] | None
) -> list[Entry]:
    """Up to `limit` entries after a position (exclusive), newest first."""
    conditions: list[str] = []
    params: list[Any] = []
    if search:
        conditions.append(_MATCHES)
        params.append(like_pattern(search))
    if after is not None:
        # A row value comparison walks the (generated_at DESC, id DESC) index from the position.
        conditions.append(f"(generated_at, id) < (?{len(params) + 1}, ?{len(params) + 2})")
        params.extend(after)
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM link_history{where}{_NEWEST_FIRST} LIMIT ?{len(params) + 1}",
        [*params, limit],
    ).fetchall()
    return [Entry(*r) for r in rows]


def upsert(
    conn: sqlite3.Connection, entries: Sequence[EntryIn], now: float, keep: int
) -> tuple[list[Entry], int]:
    """Replace-or-insert each entry in one transaction: (the new rows, rows replaced).

    Identities must be distinct (the caller de-duplicates), so deleting them all before inserting
    equals TBM's delete-then-insert per entry. Beyond `keep` entries the oldest are dropped.
    """
    with immediate(conn):
        first = next_id(conn, LAST_ID, "link_history")
        replaced = conn.executemany(_SAME_IDENTITY, [e.identity for e in entries]).rowcount
        made = [
            Entry(
                first + n,
                e.item_id,
                e.file_id,
                e.url,
                e.asset_type,
                e.item_name,
                e.file_name,
                now if e.generated_at is None else e.generated_at,
                now,
                e.status,
            )
            for n, e in enumerate(entries)
        ]
        conn.executemany(
            f"INSERT INTO link_history({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    m.id,
                    m.item_id,
                    m.file_id,
                    m.url,
                    m.asset_type,
                    m.item_name,
                    m.file_name,
                    m.generated_at,
                    m.created_at,
                    m.status,
                )
                for m in made
            ],
        )
        if made:
            remember_id(conn, LAST_ID, made[-1].id)
        conn.execute(
            "DELETE FROM link_history WHERE id IN "
            f"(SELECT id FROM link_history{_NEWEST_FIRST} LIMIT -1 OFFSET ?)",
            (keep,),
        )
    return made, max(replaced, 0)


def delete(conn: sqlite3.Connection, entry_id: int) -> bool:
    """Delete one entry; False when it did not exist."""
    with immediate(conn):
        return conn.execute("DELETE FROM link_history WHERE id = ?", (entry_id,)).rowcount > 0


def delete_many(conn: sqlite3.Connection, entry_ids: Sequence[int]) -> int:
    """Delete entries by id in one transaction; returns how many existed."""
    wanted = sorted(set(entry_ids))
    deleted = 0
    with immediate(conn):
        for start in range(0, len(wanted), DELETE_CHUNK):
            chunk = wanted[start : start + DELETE_CHUNK]
            deleted += conn.execute(
                f"DELETE FROM link_history WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ).rowcount
    return deleted
