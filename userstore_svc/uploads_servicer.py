"""The UploadsService gRPC servicer: convert, call one UploadService method, convert back."""

from __future__ import annotations

from typing import Any

import grpc
from torbox.automation.v1 import uploads_service_pb2 as pb
from torbox.automation.v1 import uploads_service_pb2_grpc as pb_grpc

from userstore_svc.store.uploads import NewUpload, Outcome, UploadRow
from userstore_svc.uploads_service import UploadService

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["UploadsService"].full_name
MAX_DUE = 10_000


def upload_pb(row: UploadRow) -> pb.Upload:
    """A row as its message (never the password)."""
    message = pb.Upload(
        id=row.id,
        type=row.type,
        upload_type=row.upload_type,
        name=row.name,
        status=row.status,
        retry_count=row.retry_count,
        allow_zip=row.allow_zip,
        as_queued=row.as_queued,
        add_only_if_cached=row.add_only_if_cached,
        has_password=row.has_password,
        queue_order=row.queue_order,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    optional = {
        "file_path": row.file_path,
        "url": row.url,
        "error_message": row.error_message,
        "seed": row.seed,
        "torbox_hash": row.torbox_hash,
        "torbox_torrent_id": row.torbox_torrent_id,
        "torbox_auth_id": row.torbox_auth_id,
        "last_processed_at": row.last_processed_at,
        "completed_at": row.completed_at,
        "next_attempt_at": row.next_attempt_at,
        "create_was_cached": row.create_was_cached,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(message, name, value)
    return message


def new_upload(item: pb.UploadInput) -> NewUpload:
    """A queued input as the store takes it (empty strings mean absent)."""
    return NewUpload(
        type=item.type,
        upload_type=item.upload_type,
        file_path=item.file_path or None,
        url=item.url or None,
        name=item.name,
        seed=item.seed if item.HasField("seed") and item.seed else None,
        allow_zip=item.allow_zip if item.HasField("allow_zip") else True,
        as_queued=item.as_queued,
        add_only_if_cached=item.add_only_if_cached,
        password=item.password_ciphertext or None,
    )


def outcome(message: pb.UploadOutcome) -> Outcome:
    """A reported outcome as the store applies it."""
    return Outcome(
        status=message.status,
        error_message=message.error_message if message.HasField("error_message") else None,
        next_attempt_at=message.next_attempt_at if message.HasField("next_attempt_at") else None,
        torbox_hash=message.torbox_hash if message.HasField("torbox_hash") else None,
        torbox_id=message.torbox_id if message.HasField("torbox_id") else None,
        torbox_auth_id=message.torbox_auth_id if message.HasField("torbox_auth_id") else None,
        log_attempt=message.log_attempt,
        cached=message.cached,
        retry_increment=message.retry_increment,
        defer_type_until=(
            message.defer_type_until if message.HasField("defer_type_until") else None
        ),
        defer_type_message=message.defer_type_message,
        status_code=message.status_code,
        error_code=message.error_code,
    )


class UploadsServicer(pb_grpc.UploadsServiceServicer):
    """Thin adapter from gRPC to the upload service."""

    def __init__(self, uploads: UploadService) -> None:
        self.uploads = uploads

    async def StageFile(
        self, request: pb.StageFileRequest, context: Context
    ) -> pb.StageFileResponse:
        path = await self.uploads.stage(
            request.auth_id, request.type, request.filename, request.data
        )
        return pb.StageFileResponse(file_path=path)

    async def DeleteStagedFile(
        self, request: pb.DeleteStagedFileRequest, context: Context
    ) -> pb.DeleteStagedFileResponse:
        await self.uploads.delete_staged(request.auth_id, request.file_path)
        return pb.DeleteStagedFileResponse()

    async def CreateUploads(
        self, request: pb.CreateUploadsRequest, context: Context
    ) -> pb.CreateUploadsResponse:
        rows = await self.uploads.create(request.auth_id, [new_upload(u) for u in request.uploads])
        return pb.CreateUploadsResponse(uploads=[upload_pb(r) for r in rows])

    async def ListUploads(
        self, request: pb.ListUploadsRequest, context: Context
    ) -> pb.ListUploadsResponse:
        found = await self.uploads.listing(
            request.auth_id,
            request.status,
            request.type,
            request.search,
            max(1, request.page),
            min(1000, max(1, request.limit or 50)),
        )
        return pb.ListUploadsResponse(
            uploads=[upload_pb(r) for r in found.rows],
            total=found.total,
            status_counts=[
                pb.StatusCount(status=s, count=n) for s, n in found.status_counts.items()
            ],
            statistics=[
                pb.TypeStatistics(
                    type=s.type,
                    window_used=s.window_used,
                    window_limit=60,
                    window_reset_at=s.window_reset_at,
                    deferred_count=s.deferred_count,
                    deferred_until=s.deferred_until,
                    paused_count=s.paused_count,
                    paused_until=s.paused_until,
                    pause_reason=s.pause_reason,
                )
                for s in found.statistics
            ],
        )

    async def GetUpload(
        self, request: pb.GetUploadRequest, context: Context
    ) -> pb.GetUploadResponse:
        row = await self.uploads.get(request.auth_id, request.upload_id)
        return pb.GetUploadResponse(upload=upload_pb(row))

    async def GetUploadFile(
        self, request: pb.GetUploadFileRequest, context: Context
    ) -> pb.GetUploadFileResponse:
        row, data = await self.uploads.file(request.auth_id, request.upload_id)
        return pb.GetUploadFileResponse(name=row.name, file_path=row.file_path or "", data=data)

    async def RetryUploads(
        self, request: pb.RetryUploadsRequest, context: Context
    ) -> pb.RetryUploadsResponse:
        found, rows = await self.uploads.retry(request.auth_id, list(request.upload_ids))
        return pb.RetryUploadsResponse(
            found=found, requeued_ids=[r.id for r in rows], uploads=[upload_pb(r) for r in rows]
        )

    async def ReorderUpload(
        self, request: pb.ReorderUploadRequest, context: Context
    ) -> pb.ReorderUploadResponse:
        row = await self.uploads.reorder(
            request.auth_id, request.upload_id, request.old_order, request.new_order
        )
        return pb.ReorderUploadResponse(upload=upload_pb(row))

    async def DeleteUploads(
        self, request: pb.DeleteUploadsRequest, context: Context
    ) -> pb.DeleteUploadsResponse:
        deleted = await self.uploads.delete(request.auth_id, list(request.upload_ids))
        return pb.DeleteUploadsResponse(deleted=deleted)

    async def RestoreArchivedUpload(
        self, request: pb.RestoreArchivedUploadRequest, context: Context
    ) -> pb.RestoreArchivedUploadResponse:
        row = await self.uploads.restore_archived(request.auth_id, request.archive_id)
        return pb.RestoreArchivedUploadResponse(upload=upload_pb(row))

    async def DueUploads(
        self, request: pb.DueUploadsRequest, context: Context
    ) -> pb.DueUploadsResponse:
        due = self.uploads.due(self.uploads.clock(), min(MAX_DUE, max(1, request.limit)))
        return pb.DueUploadsResponse(users=[pb.DueUser(auth_id=a, due_at=t) for a, t in due])

    async def ClaimUploads(
        self, request: pb.ClaimUploadsRequest, context: Context
    ) -> pb.ClaimUploadsResponse:
        claimed = await self.uploads.claim(
            request.auth_id, request.worker, request.limit, request.lease_seconds
        )
        return pb.ClaimUploadsResponse(
            uploads=[
                pb.ClaimedUpload(
                    upload=upload_pb(c.row),
                    file_data=c.file_data or b"",
                    password_ciphertext=c.password or b"",
                    claim=c.claim,
                    unconfirmed=c.unconfirmed,
                )
                for c in claimed
            ]
        )

    async def ReportUpload(
        self, request: pb.ReportUploadRequest, context: Context
    ) -> pb.ReportUploadResponse:
        applied = await self.uploads.report(
            request.auth_id, request.upload_id, request.claim, outcome(request.outcome)
        )
        return pb.ReportUploadResponse(applied=applied)
