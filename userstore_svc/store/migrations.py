"""Versioned schema migrations for the registry and the per-user databases.

The version lives in ``PRAGMA user_version``. Each migration runs in its own transaction together
with the version bump, so a crash leaves the database at a whole version; applying them is
idempotent, and a database newer than this code is refused rather than touched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import FailedPrecondition
from userstore_svc.store import packed


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a schema: its version number, a name, and the SQL that takes it there.

    A step that converts values SQL cannot (exactly) runs `convert` after `sql`, then `then`.
    """

    version: int
    name: str
    sql: str
    convert: Callable[[sqlite3.Connection], None] | None = None
    then: str = ""


# The version 9 `torrents` columns of packed.PACKED_1's fields, in its order (frozen: this is
# what migration 10 reads, whatever the models become). Layout 1 is frozen too, so the columns are
# its field names, except the snapshot's few that version 9 named apart.
_V9_RENAMED = {
    "id": "torrent_id",
    "created_at": "added_at",
    "download_state": "last_state",
    "progress": "last_progress",
    "total_uploaded": "last_total_uploaded",
    "total_downloaded": "last_total_downloaded",
}
_V9_PACKED_COLUMNS = tuple(_V9_RENAMED.get(name, name) for name in packed.PACKED_1)
assert len(_V9_PACKED_COLUMNS) == len(packed.PACKED_1)
# Version 9 kept booleans as 0/1 (NULL: unknown); the array keeps them as booleans.
_V9_BOOLEANS = frozenset(
    {
        "active",
        "download_present",
        "download_finished",
        "cached",
        "seed_torrent",
        "long_term_seeding",
        "private",
        "queued",
        "airlocked",
        "allow_zipped",
        "whole_life",
    }
)
_V9_BOOLEAN_POSITIONS = tuple(
    i for i, column in enumerate(_V9_PACKED_COLUMNS) if column in _V9_BOOLEANS
)


def _pack_torrents_v10(conn: sqlite3.Connection) -> None:
    """Every version 9 torrent row into the version 10 table, value for value."""
    rows = conn.execute(
        "SELECT torrent_key, present, removed_at, observed_since, samples, "
        f"{', '.join(_V9_PACKED_COLUMNS)} FROM torrents"
    ).fetchall()
    conn.executemany(
        "INSERT INTO torrents_v10(torrent_key, present, removed_at, observed_since, samples, "
        "packed) VALUES (?,?,?,?,?,?)",
        [_row_v10(row) for row in rows],
    )


def _row_v10(row: tuple[Any, ...]) -> tuple[Any, ...]:
    values = [1, *row[5:]]  # layout 1, whatever the current one is
    for i in _V9_BOOLEAN_POSITIONS:
        value = values[1 + i]
        if value is not None:
            values[1 + i] = value == 1
    return (*row[:5], packed.pack(values))


USER_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE torrents (
            torrent_key INTEGER PRIMARY KEY,  -- TorBox id, negated for queued items
            torrent_id INTEGER NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            magnet TEXT,
            size INTEGER NOT NULL,
            active INTEGER NOT NULL,
            added_at REAL,
            updated_at REAL,
            last_state TEXT NOT NULL,
            seeds INTEGER NOT NULL,
            peers INTEGER NOT NULL,
            ratio REAL NOT NULL,
            last_progress REAL NOT NULL,
            download_speed INTEGER NOT NULL,
            upload_speed INTEGER NOT NULL,
            eta INTEGER NOT NULL,
            expires_at REAL,
            download_present INTEGER NOT NULL,
            download_finished INTEGER NOT NULL,
            file_count INTEGER NOT NULL,
            availability REAL NOT NULL,
            tracker TEXT,
            last_total_uploaded INTEGER NOT NULL,
            last_total_downloaded INTEGER NOT NULL,
            cached INTEGER NOT NULL,
            cached_at REAL,
            seed_torrent INTEGER NOT NULL,
            long_term_seeding INTEGER NOT NULL,
            private INTEGER NOT NULL,
            queued INTEGER NOT NULL,
            status TEXT NOT NULL,
            first_seen_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            present INTEGER NOT NULL,
            removed_at REAL,
            missing_since REAL,
            observed_since REAL NOT NULL,
            last_download_activity_at REAL,
            last_upload_activity_at REAL,
            stalled_since REAL,
            idle_excluded_seconds REAL NOT NULL,
            stall_count INTEGER NOT NULL,
            downloading_started_at REAL,
            seeding_started_at REAL,
            seeding_seconds REAL NOT NULL,
            seeding_run_since REAL,
            downloading_seconds REAL NOT NULL,
            downloading_run_since REAL,
            active_seconds REAL NOT NULL,
            active_run_since REAL,
            max_download_speed REAL,
            samples BLOB NOT NULL
        );
        CREATE INDEX torrents_removed ON torrents(removed_at) WHERE removed_at IS NOT NULL;
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            torrent_key INTEGER NOT NULL,
            type TEXT NOT NULL,
            observed_at REAL NOT NULL,
            data TEXT NOT NULL
        );
        CREATE INDEX events_torrent ON events(torrent_key, id);
        CREATE TABLE rules (
            id INTEGER PRIMARY KEY,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            document TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_evaluated_at REAL,
            last_executed_at REAL,
            execution_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE rule_logs (
            id INTEGER PRIMARY KEY,
            rule_id INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
            rule_name TEXT NOT NULL,
            execution_type TEXT NOT NULL,
            items_processed INTEGER NOT NULL,
            success INTEGER NOT NULL,
            error_message TEXT,
            executed_at REAL NOT NULL,
            dry_run INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX rule_logs_rule ON rule_logs(rule_id, id);
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            log_id INTEGER,
            rule_id INTEGER NOT NULL,
            rule_name TEXT NOT NULL,
            torrent_key INTEGER NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            magnet TEXT,
            action TEXT NOT NULL,
            dry_run INTEGER NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            error_code TEXT,
            error_message TEXT,
            archive_id INTEGER,
            created_at REAL NOT NULL,
            completed_at REAL
        );
        CREATE INDEX actions_torrent ON actions(torrent_key, id);
        CREATE INDEX actions_log ON actions(log_id);
        CREATE INDEX actions_pending ON actions(status) WHERE status = 'pending';
        CREATE TABLE condition_holds (
            rule_id INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
            torrent_key INTEGER NOT NULL,
            path TEXT NOT NULL,
            since REAL NOT NULL,
            PRIMARY KEY (rule_id, torrent_key, path)
        ) WITHOUT ROWID;
        CREATE TABLE archived_downloads (
            id INTEGER PRIMARY KEY,
            torrent_id INTEGER NOT NULL UNIQUE,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            tracker TEXT,
            magnet TEXT,
            archived_at REAL NOT NULL,
            action_id INTEGER
        );
        CREATE INDEX archived_at ON archived_downloads(archived_at DESC);
        CREATE TABLE protected_downloads (
            torrent_id INTEGER PRIMARY KEY,
            protected_at REAL NOT NULL
        );
        CREATE TABLE torrent_limits (
            torrent_id INTEGER PRIMARY KEY,
            seed_ratio REAL,
            seed_time_hours REAL,
            updated_at REAL NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "cooldown lookups by rule and torrent",
        """
        CREATE INDEX actions_rule_torrent ON actions(rule_id, torrent_key, created_at);
        """,
    ),
    Migration(
        3,
        "recent actions and old events by time",
        """
        CREATE INDEX actions_created ON actions(created_at);
        CREATE INDEX events_observed ON events(observed_at);
        """,
    ),
    Migration(
        4,
        "unknown values stay unknown: nullable snapshot columns, presence and whole-life tracking",
        """
        CREATE TABLE torrents_v4 (
            torrent_key INTEGER PRIMARY KEY,  -- TorBox id, negated for queued items
            torrent_id INTEGER NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            magnet TEXT,
            size INTEGER,
            active INTEGER,
            added_at REAL,
            updated_at REAL,
            last_state TEXT NOT NULL,
            seeds INTEGER,
            peers INTEGER,
            ratio REAL,
            last_progress REAL,
            download_speed INTEGER,
            upload_speed INTEGER,
            eta INTEGER,
            expires_at REAL,
            download_present INTEGER,
            download_finished INTEGER,
            file_count INTEGER,
            availability REAL,
            tracker TEXT,
            last_total_uploaded INTEGER,
            last_total_downloaded INTEGER,
            cached INTEGER,
            cached_at REAL,
            seed_torrent INTEGER,
            long_term_seeding INTEGER,
            private INTEGER,
            queued INTEGER NOT NULL,
            status TEXT NOT NULL,
            first_seen_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            present INTEGER NOT NULL,
            removed_at REAL,
            missing_since REAL,
            observed_since REAL NOT NULL,
            last_download_activity_at REAL,
            last_upload_activity_at REAL,
            stalled_since REAL,
            idle_excluded_seconds REAL NOT NULL,
            stall_count INTEGER NOT NULL,
            downloading_started_at REAL,
            seeding_started_at REAL,
            seeding_seconds REAL NOT NULL,
            seeding_run_since REAL,
            downloading_seconds REAL NOT NULL,
            downloading_run_since REAL,
            active_seconds REAL NOT NULL,
            active_run_since REAL,
            max_download_speed REAL,
            samples BLOB NOT NULL,
            tracked_since REAL NOT NULL,
            whole_life INTEGER NOT NULL
        );
        INSERT INTO torrents_v4 SELECT
            torrent_key,
            torrent_id,
            hash,
            name,
            magnet,
            CASE WHEN queued = 1 OR size <= 0 THEN NULL ELSE size END,
            CASE WHEN queued = 1 THEN NULL ELSE active END,
            added_at,
            updated_at,
            last_state,
            CASE WHEN queued = 1 THEN NULL ELSE seeds END,
            CASE WHEN queued = 1 THEN NULL ELSE peers END,
            CASE WHEN queued = 1 THEN NULL ELSE ratio END,
            CASE WHEN queued = 1 THEN NULL ELSE last_progress END,
            CASE WHEN queued = 1 THEN NULL ELSE download_speed END,
            CASE WHEN queued = 1 THEN NULL ELSE upload_speed END,
            CASE WHEN queued = 1 THEN NULL ELSE eta END,
            expires_at,
            CASE WHEN queued = 1 THEN NULL ELSE download_present END,
            CASE WHEN queued = 1 THEN NULL ELSE download_finished END,
            CASE WHEN queued = 1 OR file_count <= 0 THEN NULL ELSE file_count END,
            CASE WHEN queued = 1 THEN NULL ELSE availability END,
            tracker,
            CASE WHEN queued = 1 THEN NULL ELSE last_total_uploaded END,
            CASE WHEN queued = 1 THEN NULL ELSE last_total_downloaded END,
            CASE WHEN queued = 1 THEN NULL ELSE cached END,
            cached_at,
            CASE WHEN queued = 1 THEN NULL ELSE seed_torrent END,
            CASE WHEN queued = 1 THEN NULL ELSE long_term_seeding END,
            CASE WHEN queued = 1 THEN NULL ELSE private END,
            queued,
            status,
            first_seen_at,
            last_seen_at,
            present,
            removed_at,
            missing_since,
            observed_since,
            last_download_activity_at,
            last_upload_activity_at,
            stalled_since,
            idle_excluded_seconds,
            stall_count,
            downloading_started_at,
            seeding_started_at,
            seeding_seconds,
            seeding_run_since,
            downloading_seconds,
            downloading_run_since,
            active_seconds,
            active_run_since,
            max_download_speed,
            samples,
            observed_since,
            0
        FROM torrents;
        DROP TABLE torrents;
        ALTER TABLE torrents_v4 RENAME TO torrents;
        CREATE INDEX torrents_removed ON torrents(removed_at) WHERE removed_at IS NOT NULL;
        DELETE FROM condition_holds;
        """,
    ),
    Migration(
        5,
        "a rule saved or enabled is first evaluated one trigger interval later",
        """
        ALTER TABLE rules ADD COLUMN not_before REAL;
        """,
    ),
    Migration(
        6,
        "TBM's local data: tags and their download mappings, custom views, link history",
        """
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        -- TBM checks names case-insensitively in its routes: the index makes it a guarantee.
        CREATE UNIQUE INDEX tags_name ON tags(name COLLATE NOCASE);
        CREATE TABLE download_tags (
            download_id INTEGER NOT NULL,  -- a TorBox id of any asset type, as in TBM
            tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            PRIMARY KEY (download_id, tag_id)
        ) WITHOUT ROWID;
        CREATE INDEX download_tags_tag ON download_tags(tag_id);
        CREATE TABLE custom_views (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            filters TEXT NOT NULL,  -- opaque JSON, the frontend's
            sort_field TEXT,
            sort_direction TEXT,
            visible_columns TEXT,  -- JSON
            asset_type TEXT,
            search_query TEXT,
            sort_order INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE link_history (
            id INTEGER PRIMARY KEY,
            item_id TEXT NOT NULL,
            file_id TEXT,
            url TEXT NOT NULL,
            asset_type TEXT NOT NULL,
            item_name TEXT,
            file_name TEXT,
            generated_at REAL NOT NULL,
            created_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'success'
        );
        CREATE INDEX link_history_item ON link_history(item_id, file_id, asset_type);
        CREATE INDEX link_history_recent ON link_history(generated_at DESC, id DESC);
        """,
    ),
    Migration(
        7,
        "TorBox's airlocked, allow_zipped and original_url, for TBM's rule conditions",
        """
        -- Unknown (NULL) until the next poll reads them: never false or empty.
        ALTER TABLE torrents ADD COLUMN airlocked INTEGER;
        ALTER TABLE torrents ADD COLUMN allow_zipped INTEGER;
        ALTER TABLE torrents ADD COLUMN original_url TEXT;
        """,
    ),
    Migration(
        8,
        "TBM's upload queue: rows, staged files and the attempt log",
        """
        -- AUTOINCREMENT: a deleted row's id is never given again (a browser tab may still name it).
        CREATE TABLE uploads (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            upload_type TEXT NOT NULL,
            file_path TEXT,
            url TEXT,
            name TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued',
            error_message TEXT,
            retry_count INTEGER NOT NULL DEFAULT 0,
            seed INTEGER,
            allow_zip INTEGER NOT NULL DEFAULT 1,
            as_queued INTEGER NOT NULL DEFAULT 0,
            add_only_if_cached INTEGER NOT NULL DEFAULT 0,
            password BLOB,
            queue_order INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_processed_at REAL,
            completed_at REAL,
            file_size_bytes INTEGER,
            torbox_hash TEXT,
            torbox_torrent_id INTEGER,
            torbox_auth_id TEXT,
            claim TEXT,
            claimed_by TEXT,
            claim_until REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX uploads_due ON uploads(status, type, queue_order);
        CREATE INDEX uploads_recent ON uploads(created_at DESC);
        -- Staged .torrent and .nzb bytes live in the user's own database: committed with the row,
        -- moved with the file on a reshard, gone with the user.
        CREATE TABLE upload_files (
            path TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            size INTEGER NOT NULL,
            data BLOB NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE upload_attempts (
            id INTEGER PRIMARY KEY,
            upload_id INTEGER,
            type TEXT NOT NULL,
            status_code INTEGER,
            success INTEGER NOT NULL,
            error_code TEXT,
            error_message TEXT,
            is_cached INTEGER NOT NULL DEFAULT 0,
            attempted_at REAL NOT NULL
        );
        CREATE INDEX upload_attempts_window ON upload_attempts(type, attempted_at);
        CREATE INDEX upload_attempts_upload ON upload_attempts(upload_id);
        """,
    ),
    Migration(
        9,
        "usenet and web downloads beside torrents: the item's type (its own id space)",
        """
        -- torrent_key keeps a torrent's TorBox id, other types' keys carry an offset (models.py).
        ALTER TABLE torrents ADD COLUMN kind TEXT NOT NULL DEFAULT 'torrent';
        """,
    ),
    Migration(
        10,
        "one packed value per torrent row: the columns SQL reads, and the rest as one array",
        """
        CREATE TABLE torrents_v10 (
            torrent_key INTEGER PRIMARY KEY,  -- as before: TorBox id, negated for queued items
            present INTEGER NOT NULL,
            removed_at REAL,
            observed_since REAL NOT NULL,
            samples BLOB NOT NULL,
            packed BLOB NOT NULL  -- every other field: a JSON array (store/packed.py, layout 1)
        );
        """,
        convert=_pack_torrents_v10,
        then="""
        DROP TABLE torrents;
        ALTER TABLE torrents_v10 RENAME TO torrents;
        CREATE INDEX torrents_removed ON torrents(removed_at) WHERE removed_at IS NOT NULL;
        """,
    ),
)

REGISTRY_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        """
        CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE users (
            auth_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            key_ciphertext BLOB,
            has_enabled_rules INTEGER NOT NULL DEFAULT 0,
            seq INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_seen_at REAL,
            last_poll_at REAL,
            torrent_count INTEGER NOT NULL DEFAULT 0,
            polls INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX users_seq ON users(seq);
        """,
    ),
    Migration(
        2,
        "which users have queued uploads, and from when",
        """
        CREATE TABLE upload_due (auth_id TEXT PRIMARY KEY, due_at REAL NOT NULL) WITHOUT ROWID;
        """,
    ),
)


def migrate(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...], current: int | None = None
) -> int:
    """Bring a database to the newest version (idempotent); return the version it is at.

    `current`: the version the caller has just read from the database (read here otherwise).
    """
    if current is None:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
    newest = migrations[-1].version
    if current > newest:
        raise FailedPrecondition(
            f"database schema version {current} is newer than this build ({newest})",
            code="SCHEMA_TOO_NEW",
        )
    for step in migrations:
        if step.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(step.sql):
                conn.execute(statement)
            if step.convert is not None:
                step.convert(conn)
            for statement in _statements(step.then):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(step.version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a full disk rolls back by itself
                conn.execute("ROLLBACK")
            raise
        current = step.version
    return int(current)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations contain no semicolons inside literals)."""
    return [part.strip() for part in sql.split(";") if part.strip()]
