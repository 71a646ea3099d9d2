"""TBM's upload queue: bodies, answers, handlers and their route declarations.

TBM's Next.js server stages files through ``/api/uploads/file`` and queues rows through
``/api/uploads`` and ``/api/uploads/batch``; its Uploads page lists, retries, reorders and deletes
them. Checks run in TBM's order with its words (:func:`problem`). The userstore's UploadsService
stores rows and files; the scheduler seals a web-download password (it alone holds the key) and
its worker sends the rows to TorBox.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import uploads_service_pb2 as pb

from common.errors import InvalidArgument, NotFound, PermissionDenied
from gateway.api import Answer, Query, Route, answer, query, text
from gateway.bodies import Body
from gateway.handlers import Handlers
from gateway.inputs import json_object, path_id, positive_id
from gateway.jsonview import sql_time

TYPES = ("torrent", "usenet", "webdl")
UPLOAD_TYPES = ("file", "magnet", "link")
MAX_FILE_BYTES = 10 * 1024 * 1024
# TBM's JSON bodies may be 10 MiB: about 7.5 MiB of file once base64-encoded.
MAX_UPLOAD_BODY = 10 * 1024 * 1024
MAX_BATCH = 1000
MAX_NAME = 1024
MAX_PASSWORD = 1024
INVALID_TYPE = "Invalid type. Must be torrent, usenet, or webdl"
WEBDL_FILE = "WebDL type does not support file uploads. Use link upload_type instead."
EXTENSION = {
    "torrent": (
        ".torrent",
        "Invalid file extension. Torrent type requires .torrent file extension",
    ),
    "usenet": (".nzb", "Invalid file extension. Usenet type requires .nzb file extension"),
}
NOT_OWNED = "Invalid file path: file must belong to authenticated user"
BAD_IDS = "Invalid ids. All IDs must be positive integers."
EMPTY_IDS = "ids array is required and must not be empty"
CONTENT_TYPES = {".torrent": "application/x-bittorrent", ".nzb": "application/x-nzb"}

# Checks ---------------------------------------------------------------------------------------


def _bool(value: Any) -> bool:
    """TBM's proxies send true, "true", "1" or 1 for a set flag."""
    return value is True or value in ("true", "1", 1)


def _extension_problem(kind: str, path: str) -> str | None:
    if kind == "webdl":
        return WEBDL_FILE
    ext, message = EXTENSION[kind]
    return None if path.lower().endswith(ext) else message


def problem(item: Any, auth_id: str) -> tuple[int, str, str] | None:
    """TBM's eight checks of an UploadInput, in its order: (status, message, field) or None."""
    if not isinstance(item, dict):
        return 400, INVALID_TYPE, "type"
    kind, upload_type = item.get("type"), item.get("upload_type")
    path, url, name = item.get("file_path"), item.get("url"), item.get("name")
    if kind not in TYPES:
        return 400, INVALID_TYPE, "type"
    if upload_type not in UPLOAD_TYPES:
        return 400, "Invalid upload_type. Must be file, magnet, or link", "upload_type"
    if upload_type == "magnet" and kind != "torrent":
        return (
            400,
            'Invalid combination: magnet links can only be used with type="torrent"',
            "upload_type",
        )
    if not isinstance(name, str) or not name:
        return 400, "name is required", "name"
    if upload_type == "file":
        if not isinstance(path, str) or not path:
            return 400, "file_path is required for file uploads", "file_path"
        wrong = _extension_problem(str(kind), path)
        if wrong is not None:
            return 400, wrong, "file_path"
        parts = path.replace("\\", "/").split("/")
        if parts[0] != f"user_{auth_id}" or ".." in parts:
            return 403, NOT_OWNED, "file_path"
    elif not isinstance(url, str) or not url:
        return 400, "url is required for magnet/link uploads", "url"
    return _our_checks(item)


def _our_checks(item: dict[str, Any]) -> tuple[int, str, str] | None:
    """What TBM leaves unchecked and would only fail at TorBox (or store as garbage)."""
    seed = item.get("seed")
    if seed is not None and (isinstance(seed, bool) or seed not in (0, 1, 2, 3, "1", "2", "3")):
        return 400, "seed must be 1, 2 or 3", "seed"
    if len(item["name"]) > MAX_NAME:
        return 400, f"name must be at most {MAX_NAME} characters", "name"
    password = item.get("password")
    if password is not None and (not isinstance(password, str) or len(password) > MAX_PASSWORD):
        return 400, f"password must be a string of at most {MAX_PASSWORD} characters", "password"
    for name in ("file_path", "url"):
        if item.get(name) is not None and not isinstance(item.get(name), str):
            return 400, f"{name} must be a string", name
    return None


def _raise(found: tuple[int, str, str]) -> None:
    status, message, field = found
    if status == 403:
        raise PermissionDenied(message, code="FILE_NOT_OWNED", field=field)
    raise InvalidArgument(message, field=field)


def upload_input(item: dict[str, Any], sealed: bytes) -> pb.UploadInput:
    """A checked item as the service takes it (TBM's stored defaults)."""
    upload_type = item["upload_type"]
    message = pb.UploadInput(
        type=item["type"],
        upload_type=upload_type,
        file_path=item.get("file_path") or "" if upload_type == "file" else "",
        url=item.get("url") or "" if upload_type != "file" else "",
        name=item["name"],
        as_queued=_bool(item.get("as_queued")),
        add_only_if_cached=_bool(item.get("add_only_if_cached")),
        password_ciphertext=sealed,
    )
    seed = item.get("seed")
    if seed:
        message.seed = int(seed)
    if item.get("allow_zip") is not None:
        message.allow_zip = _bool(item["allow_zip"])
    return message


async def _sealed(h: Handlers, auth_id: str, item: dict[str, Any]) -> bytes:
    """The password sealed by the scheduler (empty when there is none)."""
    password = item.get("password")
    if not password:
        return b""
    response = await h.b.scheduler(auth_id).SealUploadSecret(
        spb.SealUploadSecretRequest(auth_id=auth_id, secret=password), **h.b.opts()
    )
    return response.ciphertext


def _ids(raw: Any) -> list[int]:
    """A bulk body's ids, refused in TBM's words."""
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument(EMPTY_IDS, field="ids")
    try:
        return [positive_id(i, "ids") for i in raw]
    except InvalidArgument:
        raise InvalidArgument(BAD_IDS, field="ids") from None


# Bodies (declared for the reference; the handlers check in TBM's order) -----------------------


class StageFile(Body):
    """POST /api/uploads/file: a base64 .torrent or .nzb to stage."""

    required = ("file_data", "filename", "type")

    file_data: str
    filename: str
    type: Literal["torrent", "usenet"]


class StagedPath(Body):
    """DELETE /api/uploads/file."""

    required = ("file_path",)

    file_path: str


class UploadInput(Body):
    """POST /api/uploads (and each item of a batch). The password is stored sealed."""

    required = ("type", "upload_type", "name")

    type: Literal["torrent", "usenet", "webdl"]
    upload_type: Literal["file", "magnet", "link"]
    name: str = Field(max_length=MAX_NAME)
    file_path: str | None = None
    url: str | None = None
    seed: Literal[1, 2, 3] | None = None
    allow_zip: bool = True
    as_queued: bool = False
    add_only_if_cached: bool = False
    password: str | None = Field(default=None, max_length=MAX_PASSWORD)


class Batch(Body):
    """POST /api/uploads/batch: 1 to 1000 items, each checked alone."""

    required = ("uploads",)

    uploads: list[UploadInput] = Field(min_length=1, max_length=MAX_BATCH)


class Ids(Body):
    """Bulk retry and bulk delete."""

    required = ("ids",)

    ids: list[int] = Field(min_length=1)


class Reorder(Body):
    """PATCH /api/uploads/reorder: move one queued row (old_order is an optimistic check)."""

    required = ("id", "old_order", "new_order")

    id: int
    old_order: int
    new_order: int


def _clamped(lo: int, hi: int, default: int) -> Any:
    """A page or limit as TBM's parseInt reads it: garbage is the default, then clamped."""

    def check(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            return default
        return min(hi, max(lo, number))

    return BeforeValidator(check, json_schema_input_type=int)


class UploadsQuery(Query):
    """GET /api/uploads filters (exact status and type; search over name, type, status, error)."""

    status: Annotated[str, text(50)] = ""
    type: Annotated[str, text(50)] = ""
    search: Annotated[str, text(200)] = ""
    page: Annotated[int, _clamped(1, 1_000_000, 1)] = 1
    limit: Annotated[int, _clamped(1, 1000, 50)] = 50


# Answers ------------------------------------------------------------------------------------------


class UploadDetail(BaseModel):
    """TBM's UploadRow without next_attempt_at (GET /api/uploads/{id}).

    The password is never returned (always null), where TBM returns it in clear.
    """

    model_config = ConfigDict(frozen=True)

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
    allow_zip: int
    as_queued: int
    add_only_if_cached: int
    password: None = None
    queue_order: int
    torbox_hash: str | None
    torbox_torrent_id: int | None
    torbox_auth_id: str | None
    last_processed_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str

    @classmethod
    def fields_of(cls, row: pb.Upload) -> dict[str, Any]:
        """The common fields from the service's message."""

        def opt(name: Any) -> Any:
            return getattr(row, name) if row.HasField(name) else None

        def when(name: Any) -> str | None:
            return sql_time(getattr(row, name)) if row.HasField(name) else None

        return {
            "id": row.id,
            "type": row.type,
            "upload_type": row.upload_type,
            "file_path": opt("file_path"),
            "url": opt("url"),
            "name": row.name,
            "status": row.status,
            "error_message": opt("error_message"),
            "retry_count": row.retry_count,
            "seed": opt("seed"),
            "allow_zip": int(row.allow_zip),
            "as_queued": int(row.as_queued),
            "add_only_if_cached": int(row.add_only_if_cached),
            "queue_order": row.queue_order,
            "torbox_hash": opt("torbox_hash"),
            "torbox_torrent_id": opt("torbox_torrent_id"),
            "torbox_auth_id": opt("torbox_auth_id"),
            "last_processed_at": when("last_processed_at"),
            "completed_at": when("completed_at"),
            "created_at": sql_time(row.created_at),
            "updated_at": sql_time(row.updated_at),
            "next_attempt_at": when("next_attempt_at"),
            "create_was_cached": opt("create_was_cached"),
        }

    @classmethod
    def of(cls, row: pb.Upload) -> UploadDetail:
        """From the service's message."""
        return cls.model_validate(cls.fields_of(row))


class UploadRow(UploadDetail):
    """TBM's UploadRow as every route but the detail returns it."""

    next_attempt_at: str | None

    @classmethod
    def of(cls, row: pb.Upload) -> UploadRow:
        """From the service's message."""
        return cls.model_validate(cls.fields_of(row))


class ListedUpload(UploadRow):
    """A listed row: create_was_cached is the newest successful attempt's flag (null: none)."""

    create_was_cached: bool | None

    @classmethod
    def of(cls, row: pb.Upload) -> ListedUpload:
        """From the service's message."""
        return cls.model_validate(cls.fields_of(row))


class Window(BaseModel):
    """The durable hourly count of successful uncached creates."""

    model_config = ConfigDict(frozen=True)
    uncachedUsed: int
    uncachedLimit: int
    uncachedResetAt: str | None


class TypeStatistics(BaseModel):
    """One type on the Uploads page.

    The live header view is unknown here (known: false, nulls): the worker keeps it in memory.
    The durable window below is exact.
    """

    model_config = ConfigDict(frozen=True)
    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    resetAt: str | None = None
    known: bool = False
    window: Window
    deferredCount: int
    deferredUntil: str | None
    pausedCount: int
    pausedUntil: str | None
    pauseReason: str | None


class Statistics(BaseModel):
    """Per type, and the earliest time anything resumes."""

    model_config = ConfigDict(frozen=True)
    byType: dict[str, TypeStatistics]
    retryAt: str | None


class Pagination(BaseModel):
    """TBM's pagination block."""

    model_config = ConfigDict(frozen=True)
    page: int
    limit: int
    total: int
    totalPages: int


class UploadList(Answer):
    """GET /api/uploads."""

    data: list[ListedUpload]
    pagination: Pagination
    statusCounts: dict[str, int]
    uploadStatistics: Statistics


class StagedAnswer(BaseModel):
    """Where a staged file is."""

    model_config = ConfigDict(frozen=True)
    file_path: str


class Staged(Answer):
    """POST /api/uploads/file."""

    data: StagedAnswer


class Message(Answer):
    """A change that answers only a message."""

    message: str


class OneUpload(Answer):
    """POST /api/uploads, reorder and retry."""

    data: UploadRow


class OneDetail(Answer):
    """GET /api/uploads/{id}."""

    data: UploadDetail


class BatchError(BaseModel):
    """An item refused, with the item as sent."""

    model_config = ConfigDict(frozen=True)
    upload: Any
    error: str


class BatchData(BaseModel):
    """Queued rows in input order, and the refused items (absent when none)."""

    model_config = ConfigDict(frozen=True)
    uploads: list[UploadRow]
    errors: list[BatchError] | None = None


class BatchMeta(BaseModel):
    """Counts of a batch."""

    model_config = ConfigDict(frozen=True)
    total: int
    successful: int
    failed: int


class BatchQueued(Answer):
    """POST /api/uploads/batch."""

    data: BatchData
    meta: BatchMeta


class RetryData(BaseModel):
    """What a bulk retry did (completedIds: always empty, see the reference)."""

    model_config = ConfigDict(frozen=True)
    retried: int
    completed: int = 0
    requested: int
    uploadIds: list[int]
    completedIds: list[int] = []


class Retried(Answer):
    """POST /api/uploads/bulk/retry."""

    message: str
    data: RetryData


class DeleteData(BaseModel):
    """How many rows a bulk delete removed."""

    model_config = ConfigDict(frozen=True)
    deleted: int
    requested: int


class Deleted(Answer):
    """DELETE /api/uploads/bulk."""

    message: str
    data: DeleteData


# Handlers -----------------------------------------------------------------------------------------


def _decoded(raw: dict[str, Any]) -> tuple[str, str, bytes]:
    """The /file body's checks in TBM's order: (type, filename, bytes)."""
    data, filename, kind = raw.get("file_data"), raw.get("filename"), raw.get("type")
    if not all(isinstance(v, str) and v for v in (data, filename, kind)):
        raise InvalidArgument("file_data (base64), filename, and type are required", field="body")
    assert isinstance(data, str)
    assert isinstance(filename, str)
    assert isinstance(kind, str)
    if kind not in TYPES:
        raise InvalidArgument(INVALID_TYPE, field="type")
    wrong = _extension_problem(kind, filename)
    if wrong is not None:
        raise InvalidArgument(wrong, field="filename" if kind != "webdl" else "type")
    too_large = f"File too large. Maximum size is {round(MAX_FILE_BYTES / 1024 / 1024)} MB."
    if len(data) * 3 // 4 > MAX_FILE_BYTES + 2:
        raise InvalidArgument(too_large, field="file_data")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("file_data must be base64", field="file_data") from None
    if len(decoded) > MAX_FILE_BYTES:
        raise InvalidArgument(too_large, field="file_data")
    if not decoded:
        raise InvalidArgument("file_data must not be empty", field="file_data")
    return kind, filename, decoded


async def stage_file(h: Handlers, request: web.Request) -> web.Response:
    """Stage a base64 .torrent or .nzb; answers the path a row then names."""
    caller = await h.caller(request)
    kind, filename, data = _decoded(await json_object(request))
    response = await h.b.uploads(caller.auth_id).StageFile(
        pb.StageFileRequest(auth_id=caller.auth_id, type=kind, filename=filename, data=data),
        **h.b.opts(),
    )
    return answer(Staged(data=StagedAnswer(file_path=response.file_path)))


async def delete_staged(h: Handlers, request: web.Request) -> web.Response:
    """Forget a staged file (one outside the user's folder names nothing: still a success)."""
    caller = await h.caller(request)
    path = (await json_object(request)).get("file_path")
    if not isinstance(path, str) or not path:
        raise InvalidArgument("file_path is required", field="file_path")
    await h.b.uploads(caller.auth_id).DeleteStagedFile(
        pb.DeleteStagedFileRequest(auth_id=caller.auth_id, file_path=path), **h.b.opts()
    )
    return answer(Message(message="File deleted successfully"))


async def create_upload(h: Handlers, request: web.Request) -> web.Response:
    """Queue one row (committed before this answers)."""
    caller = await h.caller(request)
    raw = await json_object(request)
    found = problem(raw, caller.auth_id)
    if found is not None:
        _raise(found)
    item = upload_input(raw, await _sealed(h, caller.auth_id, raw))
    response = await h.b.uploads(caller.auth_id).CreateUploads(
        pb.CreateUploadsRequest(auth_id=caller.auth_id, uploads=[item]), **h.b.opts()
    )
    return answer(OneUpload(data=UploadRow.of(response.uploads[0])))


async def create_batch(h: Handlers, request: web.Request) -> web.Response:
    """Queue the valid items in one transaction, in input order; refused ones are listed."""
    caller = await h.caller(request)
    items = (await json_object(request)).get("uploads")
    if not isinstance(items, list) or not items:
        raise InvalidArgument("uploads array is required and must not be empty", field="uploads")
    if len(items) > MAX_BATCH:
        raise InvalidArgument(f"Maximum {MAX_BATCH} uploads per batch request", field="uploads")
    valid, refused = [], []
    for item in items:
        found = problem(item, caller.auth_id)
        if found is None:
            valid.append(upload_input(item, await _sealed(h, caller.auth_id, item)))
        else:
            refused.append(BatchError(upload=_without_secret(item), error=found[1]))
    rows: list[pb.Upload] = []
    if valid:
        response = await h.b.uploads(caller.auth_id).CreateUploads(
            pb.CreateUploadsRequest(auth_id=caller.auth_id, uploads=valid), **h.b.opts()
        )
        rows = list(response.uploads)
    return answer(
        BatchQueued(
            data=BatchData(uploads=[UploadRow.of(r) for r in rows], errors=refused or None),
            meta=BatchMeta(total=len(items), successful=len(rows), failed=len(refused)),
        )
    )


def _without_secret(item: Any) -> Any:
    """A refused item echoed back without its password."""
    if isinstance(item, dict) and item.get("password"):
        return {**item, "password": None}
    return item


def _statistics(stats: list[pb.TypeStatistics]) -> Statistics:
    by_type: dict[str, TypeStatistics] = {}
    resumes: list[float] = []
    for s in stats:
        deferred = s.deferred_until if s.HasField("deferred_until") else None
        paused = s.paused_until if s.HasField("paused_until") else None
        resumes.extend(t for t in (deferred, paused) if t is not None)
        used = max(s.window_used, s.window_limit) if s.deferred_count else s.window_used
        by_type[s.type] = TypeStatistics(
            window=Window(
                uncachedUsed=used,
                uncachedLimit=s.window_limit,
                uncachedResetAt=(
                    sql_time(s.window_reset_at) if s.HasField("window_reset_at") else None
                ),
            ),
            deferredCount=s.deferred_count,
            deferredUntil=sql_time(deferred) if deferred is not None else None,
            pausedCount=s.paused_count,
            pausedUntil=sql_time(paused) if paused is not None else None,
            pauseReason=s.pause_reason or None,
        )
    return Statistics(byType=by_type, retryAt=sql_time(min(resumes)) if resumes else None)


async def list_uploads(h: Handlers, request: web.Request) -> web.Response:
    """A page of rows with status counts and per-type statistics."""
    caller = await h.caller(request)
    q = query(request, UploadsQuery)
    response = await h.b.uploads(caller.auth_id).ListUploads(
        pb.ListUploadsRequest(
            auth_id=caller.auth_id,
            status=q.status,
            type=q.type,
            search=q.search,
            page=q.page,
            limit=q.limit,
        ),
        **h.b.opts(),
    )
    return answer(
        UploadList(
            data=[ListedUpload.of(r) for r in response.uploads],
            pagination=Pagination(
                page=q.page,
                limit=q.limit,
                total=response.total,
                totalPages=-(-response.total // q.limit),
            ),
            statusCounts={c.status: c.count for c in response.status_counts},
            uploadStatistics=_statistics(list(response.statistics)),
        )
    )


async def get_upload(h: Handlers, request: web.Request) -> web.Response:
    """One row (404 "Upload not found")."""
    caller = await h.caller(request)
    response = await h.b.uploads(caller.auth_id).GetUpload(
        pb.GetUploadRequest(auth_id=caller.auth_id, upload_id=path_id(request)), **h.b.opts()
    )
    return answer(OneDetail(data=UploadDetail.of(response.upload)))


async def download_file(h: Handlers, request: web.Request) -> web.Response:
    """The staged file's bytes, typed by the extension of the row's name."""
    caller = await h.caller(request)
    response = await h.b.uploads(caller.auth_id).GetUploadFile(
        pb.GetUploadFileRequest(auth_id=caller.auth_id, upload_id=path_id(request)), **h.b.opts()
    )
    name = response.name or response.file_path.rsplit("/", 1)[-1]
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return web.Response(
        body=response.data,
        content_type=CONTENT_TYPES.get(ext, "application/octet-stream"),
        headers={"Content-Disposition": disposition(name)},
    )


def disposition(name: str) -> str:
    """TBM's ``attachment; filename="<name>"``, safe for any name.

    Quotes, backslashes and control characters cannot end the header early; a name outside
    ASCII (which HTTP headers cannot carry as is) gets an ASCII fallback plus RFC 6266's
    ``filename*``.
    """
    plain = "".join(c for c in name if c not in '"\\' and c.isprintable())
    fallback = plain.encode("ascii", "replace").decode().replace("?", "_")
    if fallback == plain:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(plain, safe='')}"


async def retry_bulk(h: Handlers, request: web.Request) -> web.Response:
    """Re-queue failed rows at the tail (others are ignored)."""
    caller = await h.caller(request)
    ids = _ids((await json_object(request)).get("ids"))
    response = await h.b.uploads(caller.auth_id).RetryUploads(
        pb.RetryUploadsRequest(auth_id=caller.auth_id, upload_ids=ids), **h.b.opts()
    )
    if response.found == 0:
        raise NotFound("No uploads found", code="UPLOAD_NOT_FOUND", field="ids")
    if not response.requeued_ids:
        raise InvalidArgument("No failed uploads found to retry", field="ids")
    count = len(response.requeued_ids)
    return answer(
        Retried(
            message=f"Upload retry: completed 0 existing on TorBox, re-queued {count}",
            data=RetryData(
                retried=count, requested=len(ids), uploadIds=list(response.requeued_ids)
            ),
        )
    )


async def retry_one(h: Handlers, request: web.Request) -> web.Response:
    """Re-queue one failed row."""
    caller = await h.caller(request)
    upload_id = path_id(request)
    stub = h.b.uploads(caller.auth_id)
    response = await stub.RetryUploads(
        pb.RetryUploadsRequest(auth_id=caller.auth_id, upload_ids=[upload_id]), **h.b.opts()
    )
    if response.found == 0:
        raise NotFound("Upload not found", code="UPLOAD_NOT_FOUND", field="id")
    if not response.uploads:
        raise InvalidArgument("Can only retry failed uploads", field="id")
    return answer(OneUpload(data=UploadRow.of(response.uploads[0])))


async def reorder(h: Handlers, request: web.Request) -> web.Response:
    """Move one queued row, in TBM's words when refused."""
    caller = await h.caller(request)
    raw = await json_object(request)
    values = [raw.get(k) for k in ("id", "old_order", "new_order")]
    if any(v is None for v in values):
        raise InvalidArgument("id, old_order, and new_order are required", field="body")
    upload_id = _reorder_id(values[0])
    old, new = (_whole(v, k) for v, k in zip(values[1:], ("old_order", "new_order"), strict=True))
    if old == new:
        raise InvalidArgument("old_order and new_order must be different", field="new_order")
    response = await h.b.uploads(caller.auth_id).ReorderUpload(
        pb.ReorderUploadRequest(
            auth_id=caller.auth_id, upload_id=upload_id, old_order=old, new_order=new
        ),
        **h.b.opts(),
    )
    return answer(OneUpload(data=UploadRow.of(response.upload)))


def _reorder_id(raw: Any) -> int:
    try:
        return positive_id(raw, "id")
    except InvalidArgument:
        raise InvalidArgument("Invalid id. Must be a positive integer.", field="id") from None


def _whole(raw: Any, field: str) -> int:
    """An order: an integer within SQLite's range (TBM does not check; a string would corrupt)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) >= 2**62:
        raise InvalidArgument(f"{field} must be an integer", field=field)
    return raw


async def delete_bulk(h: Handlers, request: web.Request) -> web.Response:
    """Delete rows (their staged files too, when no other row names them)."""
    caller = await h.caller(request)
    ids = _ids((await json_object(request)).get("ids"))
    response = await h.b.uploads(caller.auth_id).DeleteUploads(
        pb.DeleteUploadsRequest(auth_id=caller.auth_id, upload_ids=ids), **h.b.opts()
    )
    if response.deleted == 0:
        raise NotFound("No uploads found", code="UPLOAD_NOT_FOUND", field="ids")
    return answer(
        Deleted(
            message=f"Deleted {response.deleted} upload(s)",
            data=DeleteData(deleted=response.deleted, requested=len(ids)),
        )
    )


async def delete_one(h: Handlers, request: web.Request) -> web.Response:
    """Delete one row (an in-flight create's later report is ignored)."""
    caller = await h.caller(request)
    response = await h.b.uploads(caller.auth_id).DeleteUploads(
        pb.DeleteUploadsRequest(auth_id=caller.auth_id, upload_ids=[path_id(request)]),
        **h.b.opts(),
    )
    if response.deleted == 0:
        raise NotFound("Upload not found", code="UPLOAD_NOT_FOUND", field="id")
    return answer(Message(message="Upload deleted successfully"))


_U = "/api/uploads"
_BIG = (400, 401, 403, 404, 413, 429, 503)
ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        _U + "/file",
        stage_file,
        (
            "Stage a base64 .torrent or .nzb (at most 10 MB decoded, in a body of at most 10 MiB: "
            "about 7.5 MiB of file); TBM's checks in its order and words"
        ),
        body=StageFile,
        answer=Staged,
        errors=_BIG,
        tag="uploads",
        max_body=MAX_UPLOAD_BODY,
    ),
    Route(
        "DELETE",
        _U + "/file",
        delete_staged,
        "Forget a staged file (a path outside the caller's folder names nothing: no 500)",
        body=StagedPath,
        answer=Message,
        tag="uploads",
    ),
    Route(
        "POST",
        _U + "/batch",
        create_batch,
        (
            "Queue 1 to 1000 items in one transaction, in input order; refused items are listed "
            "in data.errors (their passwords blanked), never failing the request"
        ),
        body=Batch,
        answer=BatchQueued,
        errors=_BIG,
        tag="uploads",
        max_body=MAX_UPLOAD_BODY,
    ),
    Route(
        "POST",
        _U + "/bulk/retry",
        retry_bulk,
        (
            "Re-queue failed rows at the tail. Unlike TBM, no TorBox lookup first: a row TorBox "
            "already has completes as a duplicate when the worker sends it (so never a 503)"
        ),
        body=Ids,
        answer=Retried,
        tag="uploads",
    ),
    Route(
        "DELETE",
        _U + "/bulk",
        delete_bulk,
        "Delete rows and the staged files no other row names",
        body=Ids,
        answer=Deleted,
        tag="uploads",
    ),
    Route(
        "PATCH",
        _U + "/reorder",
        reorder,
        "Move one queued row (TBM's shifts; old_order must match)",
        body=Reorder,
        answer=OneUpload,
        tag="uploads",
    ),
    Route(
        "GET",
        _U,
        list_uploads,
        (
            "Rows with TBM's filters and order, status counts and per-type statistics; the live "
            "header view is reported unknown (known: false), the hourly window exactly"
        ),
        query=UploadsQuery,
        answer=UploadList,
        tag="uploads",
    ),
    Route(
        "POST",
        _U,
        create_upload,
        (
            "Queue one torrent, NZB or web link (committed before the answer); TBM's eight checks "
            "in its order (403 for another user's file); a password is stored sealed, never "
            "returned"
        ),
        body=UploadInput,
        answer=OneUpload,
        tag="uploads",
    ),
    Route(
        "GET",
        _U + "/{id}",
        get_upload,
        'One row without next_attempt_at (404 "Upload not found")',
        answer=OneDetail,
        tag="uploads",
    ),
    Route(
        "GET",
        _U + "/{id}/download",
        download_file,
        "The staged file's bytes (typed by the name's extension), as an attachment",
        tag="uploads",
        binary=True,
    ),
    Route(
        "POST",
        _U + "/{id}/retry",
        retry_one,
        "Re-queue one failed row at the tail",
        answer=OneUpload,
        tag="uploads",
    ),
    Route(
        "DELETE",
        _U + "/{id}",
        delete_one,
        "Delete one row (its file too when no other row names it)",
        answer=Message,
        tag="uploads",
    ),
)
