"""Conversions between protobuf messages and the userstore's domain values (and nothing else)."""

from __future__ import annotations

import json
from typing import Any

from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import torrent_rows
from common.errors import InvalidArgument
from userstore_svc.core.models import (
    KIND_SPAN,
    SNAPSHOT_FIELDS,
    TORRENT,
    USENET,
    WEBDL,
    Event,
    TorrentSnapshot,
    split_key,
)
from userstore_svc.core.speeds import Transfer
from userstore_svc.downloads_service import Archived, ArchiveEntry, Limits
from userstore_svc.ingest import ActionOut, OutcomeIn, PlanOut, SnapshotIn
from userstore_svc.rules_service import LogRow, Preview
from userstore_svc.store.registry import ACTIVE, AUTH_FAILED, MOVING, REMOVED, UserRow
from userstore_svc.torrents_service import EventRow, TorrentView

ACTION_TYPES = {
    "stop_seeding": tpb.ACTION_TYPE_STOP_SEEDING,
    "pause": tpb.ACTION_TYPE_PAUSE,
    "resume": tpb.ACTION_TYPE_RESUME,
    "delete": tpb.ACTION_TYPE_DELETE,
    "archive": tpb.ACTION_TYPE_ARCHIVE,
    "force_start": tpb.ACTION_TYPE_FORCE_START,
    "reannounce": tpb.ACTION_TYPE_REANNOUNCE,
    "add_airlock": tpb.ACTION_TYPE_ADD_AIRLOCK,
    "remove_airlock": tpb.ACTION_TYPE_REMOVE_AIRLOCK,
}
USER_STATUSES = {
    ACTIVE: pb.USER_STATUS_ACTIVE,
    AUTH_FAILED: pb.USER_STATUS_AUTH_FAILED,
    REMOVED: pb.USER_STATUS_REMOVED,
    MOVING: pb.USER_STATUS_MOVING,
}
STATUS_NAMES = {value: key for key, value in USER_STATUSES.items()}
# An unspecified type is a torrent (messages from before usenet and web downloads were polled).
KIND_NAMES = {
    tpb.ASSET_TYPE_UNSPECIFIED: TORRENT,
    tpb.ASSET_TYPE_TORRENT: TORRENT,
    tpb.ASSET_TYPE_USENET: USENET,
    tpb.ASSET_TYPE_WEBDL: WEBDL,
}
ASSET_TYPES = {
    TORRENT: tpb.ASSET_TYPE_TORRENT,
    USENET: tpb.ASSET_TYPE_USENET,
    WEBDL: tpb.ASSET_TYPE_WEBDL,
}


def kinds_in(types: Any) -> frozenset[str]:
    """Asset types of a repeated field as kind names (unknown values are left out)."""
    return frozenset(KIND_NAMES[t] for t in types if t in KIND_NAMES)


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def torrent_snapshot(t: tpb.Torrent) -> TorrentSnapshot:
    """A torrent message as the pipeline's frozen snapshot; an unset optional stays None."""
    has = t.HasField
    return TorrentSnapshot(
        t.id,
        t.hash,
        t.name,
        t.magnet if has("magnet") else None,
        t.size if has("size") else None,
        t.active if has("active") else None,
        t.created_at if has("created_at") else None,
        t.updated_at if has("updated_at") else None,
        t.download_state,
        t.seeds if has("seeds") else None,
        t.peers if has("peers") else None,
        t.ratio if has("ratio") else None,
        t.progress if has("progress") else None,
        t.download_speed if has("download_speed") else None,
        t.upload_speed if has("upload_speed") else None,
        t.eta if has("eta") else None,
        t.expires_at if has("expires_at") else None,
        t.download_present if has("download_present") else None,
        t.download_finished if has("download_finished") else None,
        t.file_count if has("file_count") else None,
        t.availability if has("availability") else None,
        t.tracker if has("tracker") else None,
        t.total_uploaded if has("total_uploaded") else None,
        t.total_downloaded if has("total_downloaded") else None,
        t.cached if has("cached") else None,
        t.cached_at if has("cached_at") else None,
        t.seed_torrent if has("seed_torrent") else None,
        t.long_term_seeding if has("long_term_seeding") else None,
        t.private if has("private") else None,
        t.queued,
        t.airlocked if has("airlocked") else None,
        t.allow_zipped if has("allow_zipped") else None,
        t.original_url if has("original_url") else None,
        KIND_NAMES.get(t.asset_type, TORRENT),
    )


# A row's values are a TorrentSnapshot's, in order (the last, asset_type, becomes its kind): a
# checked row is made a snapshot without a call per field.
if (*torrent_rows.FIELDS[:-1], "kind") != SNAPSHOT_FIELDS:  # pragma: no cover
    raise ImportError("TorrentSnapshot's fields no longer follow Torrent's field numbers")


def torrents_from_rows(message: pb.TorrentRows) -> list[TorrentSnapshot]:
    """A snapshot's rows as the pipeline's snapshots (InvalidArgument for a wrong value)."""
    rows = torrent_rows.decode(message.fields, message.rows)
    kinds = KIND_NAMES
    new = tuple.__new__
    snapshots = []
    for row in rows:
        row[-1] = kinds.get(row[-1], TORRENT)
        snapshots.append(new(TorrentSnapshot, row))
    return snapshots


def snapshot_torrents(s: pb.Snapshot) -> list[TorrentSnapshot]:
    """The snapshot's items, from its messages or its rows (never both), every id in range."""
    if not s.HasField("torrent_rows"):
        field = "torrents.id"
        torrents = [torrent_snapshot(t) for t in s.torrents]
    elif s.torrents:
        raise InvalidArgument(
            "a snapshot carries torrents or torrent_rows, not both", field="torrent_rows"
        )
    else:
        field = "torrent_rows.id"
        torrents = torrents_from_rows(s.torrent_rows)
    # An id outside 1 .. 2**40 - 1 would take another item's row key (a negative one a queued
    # item's, a larger one another type's): TorBox's ids are 8 digits, and the scheduler drops
    # any other; a row without an id (its column not named) is id 0.
    if torrents:
        ids = [t.id for t in torrents]
        if min(ids) <= 0 or max(ids) >= KIND_SPAN:
            raise InvalidArgument(f"{field}: every id must be 1 .. {KIND_SPAN - 1}", field=field)
    return torrents


def snapshot_in(s: pb.Snapshot) -> SnapshotIn:
    """A snapshot message as the ingestor's input."""
    return SnapshotIn(
        poll_id=s.poll_id,
        auth_id=s.auth_id,
        observed_at=s.observed_at,
        complete=s.complete,
        torrents=snapshot_torrents(s),
        poll_interval=s.poll_interval_seconds,
        run_rule_id=s.run_rule_id if s.HasField("run_rule_id") else None,
        listed_kinds=kinds_in(s.listed_types) or frozenset({TORRENT}),
    )


def outcomes_in(o: pb.ActionOutcomes) -> list[OutcomeIn]:
    """Outcome messages as the ingestor's input."""
    return [
        OutcomeIn(
            action_id=x.action_id,
            success=x.success,
            error_code=x.error_code,
            message=x.message,
            completed_at=x.completed_at,
            magnet=x.magnet if x.HasField("magnet") else None,
        )
        for x in o.outcomes
    ]


def _action_pb(a: ActionOut) -> tpb.PlannedAction:
    return tpb.PlannedAction(
        action_id=a.action_id,
        torrent_id=a.torrent_id,
        type=ACTION_TYPES[a.action],
        queued=a.queued,
        rule_id=a.rule_id,
        rule_name=a.rule_name,
        needs_magnet=a.needs_magnet,
        asset_type=ASSET_TYPES[a.kind],
    )


def plan_pb(p: PlanOut) -> pb.Plan:
    """The ingestor's plan as a message."""
    message = pb.Plan(
        poll_id=p.poll_id,
        auth_id=p.auth_id,
        applied=p.applied,
        actions=[_action_pb(a) for a in p.actions],
        has_enabled_rules=p.has_enabled_rules,
        asset_types=[ASSET_TYPES[k] for k in sorted(p.kinds)],
        reads_torrent_rows=True,
    )
    if p.next_poll_in is not None:
        message.next_poll_in_seconds = p.next_poll_in
    if p.run_summary is not None:
        r = p.run_summary
        message.run_summary.CopyFrom(
            pb.RunSummary(
                rule_id=r.rule_id,
                rule_name=r.rule_name,
                total_torrents=r.total,
                matched_torrents=r.matched,
                processed_torrents=r.processed,
                dry_run=r.dry_run,
                skipped=r.skipped,
                reason=r.reason,
                action_type=r.action,
            )
        )
    return message


def user_pb(row: UserRow) -> pb.User:
    """A registry row as a message."""
    user = pb.User(
        auth_id=row.auth_id,
        status=USER_STATUSES[row.status],
        key_ciphertext=row.key_ciphertext or b"",
        has_enabled_rules=row.has_enabled_rules,
        seq=row.seq,
        created_at=row.created_at,
        torrent_count=row.torrent_count,
    )
    if row.last_seen_at is not None:
        user.last_seen_at = row.last_seen_at
    if row.last_poll_at is not None:
        user.last_poll_at = row.last_poll_at
    return user


def user_row(user: pb.User) -> UserRow:
    """A registry row received from another shard (for a move)."""
    return UserRow(
        auth_id=user.auth_id,
        status=STATUS_NAMES.get(user.status, ACTIVE),
        key_ciphertext=user.key_ciphertext or None,
        has_enabled_rules=user.has_enabled_rules,
        seq=0,
        created_at=user.created_at,
        updated_at=user.created_at,
        last_seen_at=user.last_seen_at if user.HasField("last_seen_at") else None,
        last_poll_at=user.last_poll_at if user.HasField("last_poll_at") else None,
        torrent_count=user.torrent_count,
        polls=0,
    )


def last_action_pb(action: dict[str, Any]) -> pb.LastAction:
    """An action record as a message."""
    message = pb.LastAction(
        action_id=action["action_id"],
        rule_id=action["rule_id"],
        rule_name=action["rule_name"],
        action=action["action"],
        dry_run=action["dry_run"],
        status=action["status"],
        error_code=action["error_code"] or "",
        reason_json=action["reason_json"] or "[]",
        created_at=action["created_at"],
        torrent_id=action["torrent_id"],
        name=action["name"],
        hash=action["hash"],
        queued=action["queued"],
    )
    if action["completed_at"] is not None:
        message.completed_at = action["completed_at"]
    if action["error_message"] is not None:
        message.error_message = action["error_message"]
    return message


def torrent_status_pb(view: TorrentView) -> pb.TorrentStatus:
    """A torrent's automation status as a message."""
    s = view.state
    snap = s.snap
    message = pb.TorrentStatus(
        torrent_id=snap.id,
        hash=snap.hash,
        name=snap.name,
        queued=snap.queued,
        present=s.present,
        first_seen_at=s.first_seen_at,
        last_seen_at=s.last_seen_at,
        last_state=snap.download_state,
        status=s.status,
        stall_count=s.stall_count,
        protected=view.protected,
        # Left unspecified for a torrent: the torrents answer keeps the shape it always had.
        asset_type=ASSET_TYPES[snap.kind] if snap.kind != TORRENT else tpb.ASSET_TYPE_UNSPECIFIED,
    )
    optional = {
        "last_total_downloaded": snap.total_downloaded,
        "last_total_uploaded": snap.total_uploaded,
        "last_progress": snap.progress,
        "ratio": snap.ratio,
        "seeds": snap.seeds,
        "peers": snap.peers,
        "availability": snap.availability,
        "size": snap.size,
        "download_speed": snap.download_speed,
        "upload_speed": snap.upload_speed,
        "active": snap.active,
        "removed_at": s.removed_at,
        "last_download_activity_at": s.last_download_activity_at,
        "last_upload_activity_at": s.last_upload_activity_at,
        "stalled_since": s.stalled_since,
        "downloading_started_at": s.downloading_started_at,
        "seeding_started_at": s.seeding_started_at,
        "max_download_speed": s.max_download_speed,
        "seed_ratio_limit": view.seed_ratio_limit,
        "seed_time_limit_hours": view.seed_time_limit_hours,
        "tracker": snap.tracker,
        **view.derived(),
    }
    for name, value in optional.items():
        if value is not None:
            setattr(message, name, value)
    if view.last_action is not None:
        message.last_action.CopyFrom(last_action_pb(view.last_action))
    return message


def event_pb(e: Event | EventRow) -> pb.Event:
    """A synthetic event (fresh or stored) as a message: the item's TorBox id and type."""
    kind, item_id, _queued = split_key(e.torrent_key)
    asset_type = ASSET_TYPES[kind] if kind != TORRENT else tpb.ASSET_TYPE_UNSPECIFIED
    if isinstance(e, EventRow):
        return pb.Event(
            id=e.id,
            torrent_id=item_id,
            type=e.type,
            observed_at=e.observed_at,
            data_json=e.data_json,
            asset_type=asset_type,
        )
    return pb.Event(
        torrent_id=item_id,
        type=e.type,
        observed_at=e.observed_at,
        data_json=json.dumps(e.data, separators=(",", ":")),
        asset_type=asset_type,
    )


def transfer_pb(sample: Transfer) -> pb.TransferSample:
    """One kept sample of a torrent's byte counters, with the speeds since the previous one."""
    t, downloaded, uploaded, down_speed, up_speed = sample
    message = pb.TransferSample(observed_at=t, downloaded=int(downloaded), uploaded=int(uploaded))
    if down_speed is not None:
        message.download_speed = down_speed
    if up_speed is not None:
        message.upload_speed = up_speed
    return message


def rule_log_pb(row: LogRow) -> pb.RuleLog:
    """An execution log row as a message."""
    message = pb.RuleLog(
        id=row.id,
        rule_id=row.rule_id,
        rule_name=row.rule_name,
        execution_type=row.execution_type,
        items_processed=row.items_processed,
        success=row.success,
        executed_at=row.executed_at,
        dry_run=row.dry_run,
        actions=[last_action_pb(a) for a in row.actions],
    )
    if row.error_message is not None:
        message.error_message = row.error_message
    return message


def preview_pb(preview: Preview) -> pb.PreviewRuleResponse:
    """A rule preview as a message."""
    message = pb.PreviewRuleResponse(
        total_torrents=preview.total,
        matched_torrents=preview.matched,
        torrents=[
            pb.PreviewMatch(
                torrent_id=row.torrent_id,
                name=row.name,
                status=row.status,
                matched=row.matched,
                actionable=row.actionable,
                skip_reason=row.skip_reason,
                conditions=[
                    pb.ConditionTrace(
                        path=c["path"],
                        type=c["type"],
                        operator=c["operator"],
                        threshold_json=json.dumps(c["threshold"]),
                        value_json=json.dumps(c["value"]),
                        result=c["result"],
                    )
                    for c in row.conditions
                ],
            )
            for row in preview.torrents
        ],
    )
    if preview.observed_at is not None:
        message.observed_at = preview.observed_at
    return message


def archive_entry(e: pb.ArchiveEntry) -> ArchiveEntry:
    """A bulk archive entry as the service's value."""
    return ArchiveEntry(
        torrent_id=e.torrent_id,
        hash=e.hash,
        name=e.name if e.HasField("name") else None,
        tracker=e.tracker if e.HasField("tracker") else None,
        magnet=e.magnet if e.HasField("magnet") else None,
    )


def archived_pb(a: Archived) -> pb.ArchivedDownload:
    """An archive row as a message."""
    message = pb.ArchivedDownload(
        id=a.id, torrent_id=a.torrent_id, hash=a.hash, name=a.name, archived_at=a.archived_at
    )
    if a.tracker is not None:
        message.tracker = a.tracker
    if a.magnet is not None:
        message.magnet = a.magnet
    return message


def limits_pb(limits: Limits) -> pb.TorrentLimits:
    """A torrent's limits as a message."""
    message = pb.TorrentLimits(torrent_id=limits.torrent_id, updated_at=limits.updated_at)
    if limits.seed_ratio is not None:
        message.seed_ratio = limits.seed_ratio
    if limits.seed_time_hours is not None:
        message.seed_time_hours = limits.seed_time_hours
    return message


def opt(message: Any, name: str) -> Any:
    """An optional field's value, or None when unset."""
    return _opt(message, name)
