"""SQL of TBM's upload queue in one user's database (schema version 8): rows, files, attempts.

Every function takes the user's connection and runs on it synchronously (the service calls them
through the pool's handle). A write is one IMMEDIATE transaction, so a row is either queued with
its order or absent, and a claim or a report changes a row and its siblings together.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from userstore_svc.store.pool import immediate

TYPES = ("torrent", "usenet", "webdl")
WINDOW_SECONDS = 3600.0
UNCACHED_LIMIT = 60
# The markers TBM's UI hides on queued rows, by what they mean for the statistics.
RATE_MARKERS = (
    "Uncached rate limit reached. Will retry automatically.",
    "Rate limit reached. Will retry automatically.",
)
CONNECTION_MARKERS = (
    "TorBox API unavailable. Will retry automatically.",
    "TorBox create timed out or failed to connect. Will retry shortly.",
)
TRANSIENT_PREFIXES = (
    "TorBox is still processing a queued upload.",
    "TorBox queued this upload but did not return resource IDs.",
)
FILE_MISSING = "File not found. The upload file may have been deleted."
# The staged bytes one claim may carry (gRPC messages are capped at 64 MiB).
CLAIM_BYTES = 24 * 1024 * 1024

_COLUMNS = (
    "u.id, u.type, u.upload_type, u.file_path, u.url, u.name, u.status, u.error_message, "
    "u.retry_count, u.seed, u.allow_zip, u.as_queued, u.add_only_if_cached, "
    "u.password IS NOT NULL, u.queue_order, u.torbox_hash, u.torbox_torrent_id, "
    "u.torbox_auth_id, u.last_processed_at, u.completed_at, u.created_at, u.updated_at, "
    "u.next_attempt_at, (SELECT a.is_cached FROM upload_attempts a WHERE a.upload_id = u.id "
    "AND a.success = 1 ORDER BY a.attempted_at DESC, a.id DESC LIMIT 1)"
)
_SELECT = f"SELECT {_COLUMNS} FROM uploads u"


@dataclass(frozen=True, slots=True)
class UploadRow:
    """An upload row as the API shows it (the password only as whether there is one)."""

    id: int
    type: str
    upload_type: str
    file_path: str | None
    url: str | None
    name: str
    status: str
    error_message: str | None
    retry_count: int
    seed: int | None
    allow_zip: bool
    as_queued: bool
    add_only_if_cached: bool
    has_password: bool
    queue_order: int
    torbox_hash: str | None
    torbox_torrent_id: int | None
    torbox_auth_id: str | None
    last_processed_at: float | None
    completed_at: float | None
    created_at: float
    updated_at: float
    next_attempt_at: float | None
    create_was_cached: bool | None


@dataclass(frozen=True, slots=True)
class NewUpload:
    """A row to queue (checked by the caller)."""

    type: str
    upload_type: str
    file_path: str | None
    url: str | None
    name: str
    seed: int | None
    allow_zip: bool
    as_queued: bool
    add_only_if_cached: bool
    password: bytes | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed row with what the worker needs to send it."""

    row: UploadRow
    file_data: bytes | None
    password: bytes | None
    claim: str
    unconfirmed: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the worker decided about a claimed row (see the proto's UploadOutcome)."""

    status: str
    error_message: str | None
    next_attempt_at: float | None
    torbox_hash: str | None
    torbox_id: int | None
    torbox_auth_id: str | None
    log_attempt: bool
    cached: bool
    retry_increment: bool
    defer_type_until: float | None
    defer_type_message: str
    status_code: int
    error_code: str


@dataclass(frozen=True, slots=True)
class TypeStats:
    """One type's durable budget window and pauses, as the Uploads page shows them."""

    type: str
    window_used: int
    window_reset_at: float | None
    deferred_count: int
    deferred_until: float | None
    paused_count: int
    paused_until: float | None
    pause_reason: str


def _row(values: Sequence[Any]) -> UploadRow:
    v = list(values)
    for i in (10, 11, 12, 13):
        v[i] = bool(v[i])
    v[23] = None if v[23] is None else bool(v[23])
    return UploadRow(*v)


def get(conn: sqlite3.Connection, upload_id: int) -> UploadRow | None:
    """One row, or None."""
    found = conn.execute(f"{_SELECT} WHERE u.id = ?", (upload_id,)).fetchall()
    return _row(found[0]) if found else None


def _by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> list[UploadRow]:
    rows = conn.execute(
        f"{_SELECT} WHERE u.id IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)
    ).fetchall()
    by_id = {r[0]: _row(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


# Staged files --------------------------------------------------------------------------------


def stage_file(conn: sqlite3.Connection, path: str, kind: str, data: bytes, now: float) -> None:
    """Store a file's bytes under its path."""
    with immediate(conn):
        conn.execute(
            "INSERT INTO upload_files(path, type, size, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (path, kind, len(data), data, now),
        )


def delete_file(conn: sqlite3.Connection, path: str) -> None:
    """Forget a staged file (nothing happens when it is not there)."""
    with immediate(conn):
        conn.execute("DELETE FROM upload_files WHERE path = ?", (path,))


def file_of(conn: sqlite3.Connection, path: str) -> bytes | None:
    """A staged file's bytes, or None."""
    found = conn.execute("SELECT data FROM upload_files WHERE path = ?", (path,)).fetchall()
    return bytes(found[0][0]) if found else None


def enforce_quota(
    conn: sqlite3.Connection, max_bytes: int, max_files: int, keep: Sequence[str]
) -> int:
    """TBM's quota: over it, evict the oldest finished rows' files, then the oldest orphans.

    Queued and processing rows and the paths in `keep` are never touched; returns files removed.
    """
    removed = 0
    with immediate(conn):
        while True:
            count, total = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM upload_files"
            ).fetchone()
            if count <= max_files and total <= max_bytes:
                return removed
            victim = conn.execute(
                "SELECT u.id, u.file_path FROM uploads u "
                "JOIN upload_files f ON f.path = u.file_path "
                "WHERE u.status IN ('completed', 'failed') AND f.path NOT IN "
                "(SELECT value FROM json_each(?1)) ORDER BY u.created_at, u.id LIMIT 1",
                (json.dumps(list(keep)),),
            ).fetchone()
            if victim is not None:
                conn.execute("DELETE FROM uploads WHERE id = ?", (victim[0],))
                path = victim[1]
            else:
                orphan = conn.execute(
                    "SELECT path FROM upload_files WHERE path NOT IN (SELECT file_path FROM "
                    "uploads WHERE file_path IS NOT NULL) AND path NOT IN "
                    "(SELECT value FROM json_each(?1)) ORDER BY created_at LIMIT 1",
                    (json.dumps(list(keep)),),
                ).fetchone()
                if orphan is None:
                    return removed  # only queued work is left: never evicted
                path = orphan[0]
            conn.execute("DELETE FROM upload_files WHERE path = ?", (path,))
            removed += 1


# Queueing and the user's operations ----------------------------------------------------------


def insert(conn: sqlite3.Connection, items: Sequence[NewUpload], now: float) -> list[UploadRow]:
    """Queue rows in input order with consecutive queue_order values after the queued tail."""
    ids: list[int] = []
    with immediate(conn):
        (tail,) = conn.execute(
            "SELECT MAX(queue_order) FROM uploads WHERE status = 'queued'"
        ).fetchone()
        order = -1 if tail is None else int(tail)
        for item in items:
            order += 1
            size = None
            if item.file_path is not None:
                found = conn.execute(
                    "SELECT size FROM upload_files WHERE path = ?", (item.file_path,)
                ).fetchone()
                size = found[0] if found else None
            cursor = conn.execute(
                "INSERT INTO uploads(type, upload_type, file_path, url, name, seed, allow_zip, "
                "as_queued, add_only_if_cached, password, queue_order, file_size_bytes, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.type,
                    item.upload_type,
                    item.file_path,
                    item.url,
                    item.name,
                    item.seed,
                    int(item.allow_zip),
                    int(item.as_queued),
                    int(item.add_only_if_cached),
                    item.password,
                    order,
                    size,
                    now,
                    now,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
    return _by_ids(conn, ids)


def restore_archived(conn: sqlite3.Connection, archive_id: int, now: float) -> UploadRow | None:
    """Queue an archived torrent's magnet and drop the archive row, in one transaction.

    Seed 3 and zip allowed, as TBM's restore sends them; None when the archive row is unknown.
    """
    found = conn.execute(
        "SELECT hash, name, magnet FROM archived_downloads WHERE id = ?", (archive_id,)
    ).fetchone()
    if found is None:
        return None
    info_hash, name, magnet = found
    if not magnet:
        magnet = f"magnet:?xt=urn:btih:{info_hash}"
    item = NewUpload(
        "torrent", "magnet", None, magnet, name or info_hash, 3, True, False, False, None
    )
    with immediate(conn):
        (tail,) = conn.execute(
            "SELECT MAX(queue_order) FROM uploads WHERE status = 'queued'"
        ).fetchone()
        cursor = conn.execute(
            "INSERT INTO uploads(type, upload_type, url, name, seed, allow_zip, queue_order, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (
                item.type,
                item.upload_type,
                item.url,
                item.name,
                item.seed,
                0 if tail is None else int(tail) + 1,
                now,
                now,
            ),
        )
        conn.execute("DELETE FROM archived_downloads WHERE id = ?", (archive_id,))
    return get(conn, int(cursor.lastrowid or 0))


def listing(
    conn: sqlite3.Connection, status: str, kind: str, search: str, page: int, limit: int
) -> tuple[list[UploadRow], int]:
    """A page of rows in TBM's order for the filter, and how many match."""
    where, params = ["1 = 1"], []
    if status:
        where.append("u.status = ?")
        params.append(status)
    if kind:
        where.append("u.type = ?")
        params.append(kind)
    if search:
        where.append(
            "(instr(lower(u.name), ?) OR instr(lower(u.type), ?) OR instr(lower(u.status), ?) "
            "OR instr(lower(COALESCE(u.error_message, '')), ?))"
        )
        params.extend([search.lower()] * 4)
    if status == "queued":
        order = "u.queue_order ASC, u.id ASC"
    elif status:
        order = "COALESCE(u.last_processed_at, u.created_at) DESC, u.id DESC"
    else:
        order = (
            "(u.status = 'queued') DESC, u.queue_order ASC, "
            "COALESCE(u.last_processed_at, u.created_at) DESC, u.id DESC"
        )
    clause = " AND ".join(where)
    (total,) = conn.execute(f"SELECT COUNT(*) FROM uploads u WHERE {clause}", params).fetchone()
    rows = conn.execute(
        f"{_SELECT} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    ).fetchall()
    return [_row(r) for r in rows], int(total)


def status_counts(conn: sqlite3.Connection, kind: str) -> dict[str, int]:
    """Rows per status (only the type filter applies, as TBM counts)."""
    sql = "SELECT status, COUNT(*) FROM uploads"
    rows = conn.execute(
        sql + (" WHERE type = ? GROUP BY status" if kind else " GROUP BY status"),
        (kind,) if kind else (),
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def statistics(conn: sqlite3.Connection, now: float) -> list[TypeStats]:
    """Per type: successful uncached creates in the last hour, and current deferrals."""
    out = []
    for kind in TYPES:
        used, oldest = conn.execute(
            "SELECT COUNT(*), MIN(attempted_at) FROM upload_attempts WHERE type = ? "
            "AND success = 1 AND is_cached = 0 AND attempted_at > ?",
            (kind, now - WINDOW_SECONDS),
        ).fetchone()
        waiting = conn.execute(
            "SELECT error_message, next_attempt_at FROM uploads WHERE type = ? AND "
            "status = 'queued' AND next_attempt_at > ?",
            (kind, now),
        ).fetchall()
        rate = [at for msg, at in waiting if msg in RATE_MARKERS]
        connection = [at for msg, at in waiting if msg in CONNECTION_MARKERS]
        transient = [at for msg, at in waiting if msg and msg.startswith(TRANSIENT_PREFIXES)]
        paused, reason = (connection, "connection") if connection else (transient, "transient")
        if rate:
            paused, reason = [], ""
        out.append(
            TypeStats(
                kind,
                int(used),
                None if oldest is None else float(oldest) + WINDOW_SECONDS,
                len(rate),
                min(rate) if rate else None,
                len(paused),
                min(paused) if paused else None,
                reason if paused else "",
            )
        )
    return out


def retry(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> tuple[int, list[int]]:
    """Re-queue the failed rows among `ids` at the tail; returns (rows found, ids re-queued)."""
    with immediate(conn):
        found = conn.execute(
            "SELECT id, status FROM uploads WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        ).fetchall()
        failed = {i for i, s in found if s == "failed"}
        (tail,) = conn.execute(
            "SELECT MAX(queue_order) FROM uploads WHERE status = 'queued'"
        ).fetchone()
        order = -1 if tail is None else int(tail)
        requeued = []
        for upload_id in dict.fromkeys(ids):
            if upload_id not in failed:
                continue
            order += 1
            conn.execute(
                "UPDATE uploads SET status = 'queued', error_message = NULL, retry_count = 0, "
                "torbox_hash = NULL, torbox_torrent_id = NULL, torbox_auth_id = NULL, "
                "next_attempt_at = NULL, last_processed_at = NULL, claim = NULL, "
                "claimed_by = NULL, claim_until = NULL, queue_order = ?, updated_at = ? "
                "WHERE id = ? AND status = 'failed'",
                (order, now, upload_id),
            )
            requeued.append(upload_id)
    return len(found), requeued


def reorder(
    conn: sqlite3.Connection, upload_id: int, old: int, new: int, now: float
) -> tuple[str, UploadRow | None]:
    """Move one queued row (TBM's shifts); returns ("ok", row) or the reason it was refused."""
    with immediate(conn):
        found = conn.execute(
            "SELECT status, queue_order FROM uploads WHERE id = ?", (upload_id,)
        ).fetchone()
        if found is None:
            return "not_found", None
        if found[0] != "queued":
            return "not_queued", None
        if found[1] != old:
            return "stale", None
        if new > old:
            conn.execute(
                "UPDATE uploads SET queue_order = queue_order - 1, updated_at = ? WHERE "
                "status = 'queued' AND queue_order > ? AND queue_order <= ? AND id != ?",
                (now, old, new, upload_id),
            )
        else:
            conn.execute(
                "UPDATE uploads SET queue_order = queue_order + 1, updated_at = ? WHERE "
                "status = 'queued' AND queue_order >= ? AND queue_order < ? AND id != ?",
                (now, new, old, upload_id),
            )
        conn.execute(
            "UPDATE uploads SET queue_order = ?, updated_at = ? WHERE id = ?",
            (new, now, upload_id),
        )
    return "ok", get(conn, upload_id)


def delete(conn: sqlite3.Connection, ids: Sequence[int]) -> int:
    """Delete rows and the staged files no remaining row names; returns rows deleted."""
    with immediate(conn):
        listed = json.dumps(list(ids))
        paths = [
            p
            for (p,) in conn.execute(
                "SELECT file_path FROM uploads WHERE file_path IS NOT NULL AND id IN "
                "(SELECT value FROM json_each(?))",
                (listed,),
            ).fetchall()
        ]
        deleted = conn.execute(
            "DELETE FROM uploads WHERE id IN (SELECT value FROM json_each(?))", (listed,)
        ).rowcount
        for path in paths:
            conn.execute(
                "DELETE FROM upload_files WHERE path = ? AND NOT EXISTS "
                "(SELECT 1 FROM uploads WHERE file_path = ?)",
                (path, path),
            )
    return int(deleted)


# The worker's side ---------------------------------------------------------------------------


def next_due(conn: sqlite3.Connection) -> float | None:
    """When the earliest row needs the worker: a queued row's due time, a claim's lease end."""
    (due,) = conn.execute(
        "SELECT MIN(CASE WHEN status = 'queued' THEN COALESCE(next_attempt_at, 0) "
        "ELSE claim_until END) FROM uploads WHERE status IN ('queued', 'processing')"
    ).fetchone()
    return None if due is None else float(due)


def _stale(claimed_by: str | None, claim_until: float | None, worker: str, now: float) -> bool:
    """A claim nobody will confirm: its lease ended, or an earlier boot of this replica held it."""
    if claim_until is None or claim_until <= now:
        return True
    if claimed_by is None:
        return True
    replica, _, boot = claimed_by.partition(":")
    mine, _, my_boot = worker.partition(":")
    return replica == mine and boot != my_boot


def claim(
    conn: sqlite3.Connection, worker: str, limit: int, lease: float, now: float
) -> list[Claimed]:
    """Claim up to `limit` rows: stale claims first, then due rows.

    Due rows go round-robin by type, FIFO by queue_order within a type (TBM's drain order).
    """
    with immediate(conn):
        held = conn.execute(
            "SELECT id, type, queue_order, claimed_by, claim_until FROM uploads "
            "WHERE status = 'processing'"
        ).fetchall()
        stale = [(r[1], r[2], r[0]) for r in held if _stale(r[3], r[4], worker, now)]
        busy_types = {r[1] for r in held if not _stale(r[3], r[4], worker, now)}
        per_type: dict[str, list[int]] = {}
        for kind in TYPES:
            if kind in busy_types:
                continue  # a live claim of this type is in flight: keep FIFO, wait for it
            per_type[kind] = [
                i
                for (i,) in conn.execute(
                    "SELECT id FROM uploads WHERE status = 'queued' AND type = ? AND "
                    "(next_attempt_at IS NULL OR next_attempt_at <= ?) "
                    "ORDER BY queue_order, id LIMIT ?",
                    (kind, now, limit),
                ).fetchall()
            ]
        order = [i for _, _, i in sorted(stale)]
        unconfirmed = set(order)
        queues = [per_type.get(kind, []) for kind in TYPES]
        while len(order) < limit and any(queues):
            for queue in queues:
                if queue and len(order) < limit:
                    order.append(queue.pop(0))
        out: list[Claimed] = []
        carried = 0
        for upload_id in order[:limit]:
            (size,) = conn.execute(
                "SELECT COALESCE(file_size_bytes, 0) FROM uploads WHERE id = ?", (upload_id,)
            ).fetchone()
            if out and carried + size > CLAIM_BYTES:
                break  # one answer stays well under gRPC's message limit; the rest wait a turn
            carried += size
            token = secrets.token_hex(8)
            conn.execute(
                "UPDATE uploads SET status = 'processing', claim = ?, claimed_by = ?, "
                "claim_until = ?, last_processed_at = ?, updated_at = ? WHERE id = ?",
                (token, worker, now + lease, now, now, upload_id),
            )
            found = conn.execute(
                "SELECT file_path, password FROM uploads WHERE id = ?", (upload_id,)
            ).fetchone()
            data = file_of(conn, found[0]) if found[0] else None
            row = get(conn, upload_id)
            assert row is not None
            out.append(Claimed(row, data, found[1], token, upload_id in unconfirmed))
    return out


def report(
    conn: sqlite3.Connection, upload_id: int, token: str, outcome: Outcome, now: float
) -> bool:
    """Apply a claimed row's outcome (and its type-wide deferral); False if the claim is gone."""
    with immediate(conn):
        found = conn.execute(
            "SELECT type, retry_count FROM uploads WHERE id = ? AND status = 'processing' "
            "AND claim = ?",
            (upload_id, token),
        ).fetchone()
        if found is None:
            return False
        kind, retries = found
        if outcome.retry_increment:
            retries += 1
        done = outcome.status in ("completed", "failed")
        conn.execute(
            "UPDATE uploads SET status = ?, error_message = ?, next_attempt_at = ?, "
            "retry_count = ?, torbox_hash = COALESCE(?, torbox_hash), "
            "torbox_torrent_id = COALESCE(?, torbox_torrent_id), "
            "torbox_auth_id = COALESCE(?, torbox_auth_id), completed_at = ?, claim = NULL, "
            "claimed_by = NULL, claim_until = NULL, updated_at = ? WHERE id = ?",
            (
                outcome.status,
                outcome.error_message,
                None if done else outcome.next_attempt_at,
                retries,
                outcome.torbox_hash,
                outcome.torbox_id,
                outcome.torbox_auth_id,
                now if outcome.status == "completed" else None,
                now,
                upload_id,
            ),
        )
        if outcome.log_attempt:
            conn.execute(
                "INSERT INTO upload_attempts(upload_id, type, status_code, success, error_code, "
                "error_message, is_cached, attempted_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                (
                    upload_id,
                    kind,
                    outcome.status_code,
                    outcome.error_code or None,
                    outcome.error_message,
                    int(outcome.cached),
                    now,
                ),
            )
        if outcome.defer_type_until is not None:
            conn.execute(
                "UPDATE uploads SET next_attempt_at = ?, error_message = ?, updated_at = ? "
                "WHERE type = ? AND status = 'queued' AND id != ? AND "
                "(next_attempt_at IS NULL OR next_attempt_at < ?)",
                (
                    outcome.defer_type_until,
                    outcome.defer_type_message,
                    now,
                    kind,
                    upload_id,
                    outcome.defer_type_until,
                ),
            )
    return True


def fail_missing_file(conn: sqlite3.Connection, upload_id: int, token: str, now: float) -> bool:
    """A claimed row whose staged file is gone fails with TBM's words (it cannot be sent)."""
    return report(
        conn,
        upload_id,
        token,
        Outcome(
            "failed", FILE_MISSING, None, None, None, None, False, False, True, None, "", 0, ""
        ),
        now,
    )
