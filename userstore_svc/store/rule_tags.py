"""The SQL rules need on TBM's local tags: reading download_tags and tags, and tag actions' writes.

Read fresh for each poll that needs them (only when a rule uses TAGS or a tag action): tags are
also changed by the tag routes, and nothing here must cache what another writer may change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from userstore_svc.store.pool import Handle

Statement = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class TagData:
    """Each download's tag ids (by TorBox id) and the ids of every tag that exists."""

    mappings: dict[int, frozenset[int]]
    existing: frozenset[int]


def _read_mappings(conn: sqlite3.Connection) -> dict[int, frozenset[int]]:
    found: dict[int, set[int]] = {}
    for download_id, tag_id in conn.execute("SELECT download_id, tag_id FROM download_tags"):
        found.setdefault(int(download_id), set()).add(int(tag_id))
    return {key: frozenset(ids) for key, ids in found.items()}


def _read_all(conn: sqlite3.Connection) -> TagData:
    existing = frozenset(int(r[0]) for r in conn.execute("SELECT id FROM tags"))
    return TagData(_read_mappings(conn), existing)


async def load_mappings(handle: Handle) -> dict[int, frozenset[int]]:
    """Every download's tag ids (a download without a row has none)."""
    return await handle.run(_read_mappings)


async def load(handle: Handle) -> TagData:
    """The mappings and the existing tag ids, read together."""
    return await handle.run(_read_all)


def add_statement(pairs: Iterable[tuple[int, int]], now: float) -> Statement:
    """Map (download id, tag id) pairs; a pair already mapped stays as it was (TBM: idempotent)."""
    return (
        "INSERT OR IGNORE INTO download_tags(download_id, tag_id, created_at) VALUES (?,?,?)",
        [(download_id, tag_id, now) for download_id, tag_id in pairs],
    )


def remove_statement(pairs: Iterable[tuple[int, int]]) -> Statement:
    """Unmap (download id, tag id) pairs; a pair not mapped is fine."""
    return (
        "DELETE FROM download_tags WHERE download_id=? AND tag_id=?",
        [(download_id, tag_id) for download_id, tag_id in pairs],
    )
