"""SQL of TBM's tags and download-tag mappings in one user's database (schema version 6).

Tag ids are never reused, as TBM's AUTOINCREMENT ids are not: a rule or a browser tab that still
names a deleted tag must not start meaning a new one. The table has a plain INTEGER PRIMARY KEY,
so the highest id ever given is kept in ``meta`` (``tags_last_id``). Mapping changes are one
set-based statement each (``json_each``) and run on the pool's threads: 1,000 downloads times
100 tags is 100,000 rows, too long to hold the event loop.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from userstore_svc.store.pool import Handle
from userstore_svc.store.user_db import UPSERT_META

LAST_ID_KEY = "tags_last_id"


class Operation(Enum):
    """What a mapping change does with the pairs (download_ids x tag_ids)."""

    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class TagRow:
    """A tag and how many downloads carry it."""

    id: int
    name: str
    created_at: float
    updated_at: float
    usage_count: int


@dataclass(frozen=True, slots=True)
class Mapping:
    """One download carrying one tag."""

    download_id: int
    tag_id: int
    tag_name: str


_TAG_SELECT = (
    "SELECT t.id, t.name, t.created_at, t.updated_at, "
    "(SELECT COUNT(*) FROM download_tags d WHERE d.tag_id = t.id) FROM tags t"
)
_PAIRS = "SELECT d.value, t.value, ?3 FROM json_each(?1) d, json_each(?2) t"
_ADD = f"INSERT OR IGNORE INTO download_tags(download_id, tag_id, created_at) {_PAIRS}"
_REMOVE = (
    "DELETE FROM download_tags WHERE download_id IN (SELECT value FROM json_each(?1)) "
    "AND tag_id IN (SELECT value FROM json_each(?2))"
)
_CLEAR = "DELETE FROM download_tags WHERE download_id IN (SELECT value FROM json_each(?1))"


async def list_tags(handle: Handle) -> list[TagRow]:
    """Every tag, ordered by name as TBM orders it (binary: "B" before "a")."""
    rows = await handle.fetchall(f"{_TAG_SELECT} ORDER BY t.name, t.id")
    return [TagRow(*row) for row in rows]


async def get_tag(handle: Handle, tag_id: int) -> TagRow | None:
    """One tag, or None."""
    rows = await handle.fetchall(f"{_TAG_SELECT} WHERE t.id = ?", (tag_id,))
    return TagRow(*rows[0]) if rows else None


async def name_owner(handle: Handle, name: str) -> int | None:
    """The id of the tag called `name` in any ASCII case (as TBM's LOWER() compares), or None."""
    rows = await handle.fetchall("SELECT id FROM tags WHERE name = ? COLLATE NOCASE", (name,))
    return int(rows[0][0]) if rows else None


async def insert_tag(handle: Handle, name: str, now: float) -> int:
    """Store a new tag under an id never given before; returns the id."""
    ((highest, last),) = await handle.fetchall(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM tags), (SELECT value FROM meta WHERE key = ?)",
        (LAST_ID_KEY,),
    )
    tag_id = max(int(highest), int(last or 0)) + 1
    await handle.transaction(
        [
            (
                "INSERT INTO tags(id, name, created_at, updated_at) VALUES (?,?,?,?)",
                (tag_id, name, now, now),
            ),
            (UPSERT_META, (LAST_ID_KEY, str(tag_id))),
        ]
    )
    return tag_id


async def rename_tag(handle: Handle, tag_id: int, name: str, now: float) -> bool:
    """Rename a tag; False when there is no such tag."""
    changed = await handle.execute(
        "UPDATE tags SET name = ?, updated_at = ? WHERE id = ?", (name, now, tag_id)
    )
    return changed > 0


async def delete_tag(handle: Handle, tag_id: int) -> bool:
    """Delete a tag and (by the foreign key's cascade) its mappings; False when unknown.

    Its id stays given: ``tags_last_id`` was set when it was inserted.
    """
    return await handle.execute("DELETE FROM tags WHERE id = ?", (tag_id,)) > 0


async def mappings(handle: Handle) -> list[Mapping]:
    """Every mapping, by download id and then tag name (binary), as TBM lists them."""
    rows = await handle.run_in_thread(
        _fetch,
        "SELECT d.download_id, t.id, t.name FROM download_tags d JOIN tags t ON t.id = d.tag_id "
        "ORDER BY d.download_id, t.name, t.id",
    )
    return [Mapping(*row) for row in rows]


def _fetch(conn: sqlite3.Connection, sql: str) -> list[tuple[int, int, str]]:
    return conn.execute(sql).fetchall()


async def change_mappings(
    handle: Handle,
    operation: Operation,
    download_ids: Sequence[int],
    tag_ids: Sequence[int],
    now: float,
) -> list[int]:
    """Apply a change in one transaction; returns the unknown tag ids (then nothing changed)."""
    return await handle.run_in_thread(
        apply_change, operation, list(download_ids), list(tag_ids), now
    )


def apply_change(
    conn: sqlite3.Connection,
    operation: Operation,
    download_ids: list[int],
    tag_ids: list[int],
    now: float,
) -> list[int]:
    """The change as one IMMEDIATE transaction: checked, then written, or rolled back whole."""
    downloads, tags = json.dumps(download_ids), json.dumps(tag_ids)
    conn.execute("BEGIN IMMEDIATE")
    try:
        unknown = [
            int(row[0])
            for row in conn.execute(
                "SELECT value FROM json_each(?) WHERE value NOT IN (SELECT id FROM tags)", (tags,)
            )
        ]
        if unknown:
            conn.execute("ROLLBACK")
            return unknown
        if operation is Operation.REMOVE:
            conn.execute(_REMOVE, (downloads, tags))
        else:
            if operation is Operation.REPLACE:
                conn.execute(_CLEAR, (downloads,))
            conn.execute(_ADD, (downloads, tags, now))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return []
