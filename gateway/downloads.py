"""REST handlers for download protection and archived downloads, in TBM's shapes.

TBM's Next.js server asks ``/api/downloads/protect/assert`` before every delete and stop seeding
and turns anything but 200 or 403 into a 500 for the user; the archive routes check protection
first too. A 403 names the blocked ids (as strings, as TBM stores them).
"""

from __future__ import annotations

import math
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel
from torbox.automation.v1 import uploads_service_pb2 as upb
from torbox.automation.v1 import userstore_service_pb2 as pb

from gateway import bodies
from gateway.api import Answer, Message, Query, Route, answer, query, text, whole
from gateway.handlers import Handlers
from gateway.inputs import path_id
from gateway.jsonview import to_json

PROTECTED = "Download is protected"


class ProtectedIds(Answer):
    """Every protected download id (strings, as TBM stores and sends them)."""

    protected_ids: list[str]


class ProtectionCheck(Answer):
    """Which of the asked ids a destructive operation may touch (ids as strings, as TBM's)."""

    allowed: list[str]
    blocked: list[str]


class Archived(BaseModel):
    """One archived download (`torrent_id` a string as in TBM; `id` is the archive row's)."""

    id: int
    torrent_id: str
    hash: str
    name: str
    tracker: str | None
    magnet: str | None
    archived_at: str | None
    created_at: str | None

    @classmethod
    def of(cls, item: pb.ArchivedDownload) -> Archived:
        """The row as TBM shapes it (archived when it was created: one time for both)."""
        row = to_json(item)
        return cls(**{**row, "torrent_id": str(item.torrent_id), "created_at": row["archived_at"]})


class RestoredDownload(BaseModel):
    """An archived download queued again: TorBox ids are unknown until the worker sends it."""

    torrent_id: int | None = None
    queued_id: int | None = None
    hash: str
    upload_id: int
    status: str


class Pagination(BaseModel):
    """Where a page sits in the whole list."""

    page: int
    limit: int
    total: int
    totalPages: int


class ArchivedPage(Answer):
    """A page of archived downloads, newest first."""

    data: list[Archived]
    pagination: Pagination


class ArchivedOne(Answer):
    """The archive row just written."""

    data: Archived


class BulkArchived(BaseModel):
    """What a bulk archive did."""

    torrentIds: list[str]
    blocked_ids: list[str]


class ArchivedBulk(Answer):
    """Downloads archived, and those left out because they are protected."""

    data: BulkArchived


class Counts(BaseModel):
    """How many rows a bulk removal found of those asked."""

    deleted: int
    requested: int


class DeletedBulk(Answer):
    """Archive rows removed."""

    message: str
    data: Counts


class Restored(Answer):
    """The re-added download as TorBox answered (a queued one has only a queued id)."""

    data: RestoredDownload


class ArchiveQuery(Query):
    """A page of the archive, optionally searched by name or hash."""

    page: Annotated[int, whole(1, 1_000_000)] = 1
    limit: Annotated[int, whole(1, 1000)] = 50
    search: Annotated[str, text(200)] = ""


def protected_answer(blocked: list[int]) -> web.Response:
    """TBM's 403 for a destructive operation on protected downloads."""
    return web.json_response(
        {
            "success": False,
            "error": PROTECTED,
            "code": "DOWNLOAD_PROTECTED",
            "blocked_ids": [str(i) for i in blocked],
        },
        status=403,
    )


async def get_protected(h: Handlers, request: web.Request) -> web.Response:
    """Every protected id."""
    caller = await h.caller(request)
    response = await h.b.userstore(caller.auth_id).GetProtected(
        pb.GetProtectedRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    return answer(ProtectedIds(protected_ids=[str(i) for i in response.torrent_ids]))


async def set_protected(h: Handlers, request: web.Request) -> web.Response:
    """Protect or unprotect; answers every protected id after the change."""
    caller = await h.caller(request)
    body = await bodies.read(request, bodies.SetProtection)
    response = await h.b.userstore(caller.auth_id).SetProtected(
        pb.SetProtectedRequest(
            auth_id=caller.auth_id, torrent_ids=body.download_ids, protected=body.protected
        ),
        **h.b.opts(),
    )
    return answer(ProtectedIds(protected_ids=[str(i) for i in response.torrent_ids]))


async def assert_protection(h: Handlers, request: web.Request) -> web.Response:
    """200 with allowed and blocked ids when any is allowed; 403 when every one is blocked.

    TBM gives this route no per-user rate limit (it runs before every delete): authentication
    only.
    """
    caller = await h.caller(request, per_user=False)
    body = await bodies.read(request, bodies.AssertProtection)
    response = await h.b.userstore(caller.auth_id).AssertProtection(
        pb.AssertProtectionRequest(
            auth_id=caller.auth_id, download_ids=body.download_ids, operation=body.operation
        ),
        **h.b.opts(),
    )
    if not response.allowed:
        return protected_answer(list(response.blocked))
    return answer(
        ProtectionCheck(
            allowed=[str(i) for i in response.allowed], blocked=[str(i) for i in response.blocked]
        )
    )


async def list_archived(h: Handlers, request: web.Request) -> web.Response:
    """A page of archived downloads, newest first."""
    caller = await h.caller(request)
    asked = query(request, ArchiveQuery)
    page, limit = asked.page, asked.limit
    response = await h.b.userstore(caller.auth_id).ListArchived(
        pb.ListArchivedRequest(
            auth_id=caller.auth_id, page=page, limit=limit, search=asked.search.strip()
        ),
        **h.b.opts(),
    )
    return answer(
        ArchivedPage(
            data=[Archived.of(item) for item in response.items],
            pagination=Pagination(
                page=page,
                limit=limit,
                total=response.total,
                totalPages=math.ceil(response.total / limit) if response.total else 0,
            ),
        )
    )


async def create_archived(h: Handlers, request: web.Request) -> web.Response:
    """Archive one download; protection is checked first (403), then duplicates (409)."""
    caller = await h.caller(request)
    body = await bodies.read(request, bodies.ArchiveDownload)
    stub = h.b.userstore(caller.auth_id)
    check = await stub.AssertProtection(
        pb.AssertProtectionRequest(
            auth_id=caller.auth_id, download_ids=[body.torrent_id], operation="archive"
        ),
        **h.b.opts(),
    )
    if check.blocked:
        return protected_answer(list(check.blocked))
    message = pb.CreateArchivedRequest(
        auth_id=caller.auth_id, torrent_id=body.torrent_id, hash=body.hash, name=body.name or ""
    )
    if body.tracker is not None:
        message.tracker = body.tracker
    if body.magnet is not None:
        message.magnet = body.magnet
    response = await stub.CreateArchived(message, **h.b.opts())
    return answer(ArchivedOne(data=Archived.of(response.item)))


async def archive_bulk(h: Handlers, request: web.Request) -> web.Response:
    """Archive many; protected ones are left out (403 when every usable one is protected)."""
    caller = await h.caller(request)
    body = await bodies.read(request, bodies.ArchiveBulk)
    entries = []
    for entry in body.downloads:
        usable = entry.usable()
        if usable is None:
            continue  # TBM skips an entry without an id and a hash
        torrent_id, info_hash = usable
        message = pb.ArchiveEntry(torrent_id=torrent_id, hash=info_hash)
        for name in ("name", "tracker", "magnet"):
            value = entry.text(name)
            if value is not None:
                setattr(message, name, value)
        entries.append(message)
    response = await h.b.userstore(caller.auth_id).ArchiveBulk(
        pb.ArchiveBulkRequest(auth_id=caller.auth_id, downloads=entries), **h.b.opts()
    )
    if not response.torrent_ids and response.blocked_ids:
        return protected_answer(list(response.blocked_ids))
    return answer(
        ArchivedBulk(
            data=BulkArchived(
                torrentIds=[str(i) for i in response.torrent_ids],
                blocked_ids=[str(i) for i in response.blocked_ids],
            )
        )
    )


async def delete_archived_bulk(h: Handlers, request: web.Request) -> web.Response:
    """Forget archive rows by their row ids (unknown ids are simply not counted)."""
    caller = await h.caller(request)
    body = await bodies.read(request, bodies.DeleteArchivedBulk)
    response = await h.b.userstore(caller.auth_id).DeleteArchivedBulk(
        pb.DeleteArchivedBulkRequest(auth_id=caller.auth_id, archive_ids=body.ids), **h.b.opts()
    )
    noun = "download" if response.deleted == 1 else "downloads"
    return answer(
        DeletedBulk(
            message=f"Deleted {response.deleted} archived {noun}",
            data=Counts(deleted=response.deleted, requested=response.requested),
        )
    )


async def delete_archived(h: Handlers, request: web.Request) -> web.Response:
    """Forget one archive row (not the download)."""
    caller = await h.caller(request)
    archive_id = path_id(request)
    await h.b.userstore(caller.auth_id).DeleteArchived(
        pb.DeleteArchivedRequest(auth_id=caller.auth_id, archive_id=archive_id), **h.b.opts()
    )
    return answer(Message(message="Archived download deleted successfully"))


async def restore_archived(h: Handlers, request: web.Request) -> web.Response:
    """Queue an archived download's magnet again (the upload queue sends it to TorBox)."""
    caller = await h.caller(request)
    archive_id = path_id(request)
    response = await h.b.uploads(caller.auth_id).RestoreArchivedUpload(
        upb.RestoreArchivedUploadRequest(auth_id=caller.auth_id, archive_id=archive_id),
        **h.b.opts(),
    )
    row = response.upload
    info_hash = row.url.partition("btih:")[2][:40] if row.HasField("url") else ""
    return answer(
        Restored(data=RestoredDownload(hash=info_hash, upload_id=row.id, status=row.status))
    )


_ARCHIVE = "/api/archived-downloads"
_PROTECT = "/api/downloads/protect"

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        _ARCHIVE,
        list_archived,
        "Archived downloads, newest first",
        query=ArchiveQuery,
        answer=ArchivedPage,
        tag="archive",
    ),
    Route(
        "POST",
        _ARCHIVE,
        create_archived,
        "Archive a download by hand (protection first: 403, then duplicates: 409)",
        body=bodies.ArchiveDownload,
        answer=ArchivedOne,
        errors=(400, 401, 403, 404, 409, 429, 503),
        tag="archive",
    ),
    # The bulk paths before "{id}": aiohttp tries resources in the order they were added.
    Route(
        "POST",
        _ARCHIVE + "/bulk",
        archive_bulk,
        "Archive up to 500 downloads; protected ones are left out (403 when all are)",
        body=bodies.ArchiveBulk,
        answer=ArchivedBulk,
        tag="archive",
    ),
    Route(
        "DELETE",
        _ARCHIVE + "/bulk",
        delete_archived_bulk,
        "Remove up to 500 archive rows by their row ids",
        body=bodies.DeleteArchivedBulk,
        answer=DeletedBulk,
        tag="archive",
    ),
    Route(
        "DELETE",
        _ARCHIVE + "/{id}",
        delete_archived,
        "Remove an archive row (not the torrent)",
        answer=Message,
        tag="archive",
    ),
    Route(
        "POST",
        _ARCHIVE + "/{id}/restore",
        restore_archived,
        (
            "Queue the torrent again from its magnet (seed 3, zip allowed, as TBM restores) and "
            "remove the archive row, in one transaction; the upload queue sends it to TorBox"
        ),
        answer=Restored,
        errors=(400, 401, 403, 404, 409, 429, 503, 504),
        tag="archive",
    ),
    Route(
        "GET",
        _PROTECT,
        get_protected,
        "Protected download ids",
        answer=ProtectedIds,
        tag="archive",
    ),
    Route(
        "PUT",
        _PROTECT,
        set_protected,
        "Protect or unprotect downloads (never stopped, archived or deleted)",
        body=bodies.SetProtection,
        answer=ProtectedIds,
        tag="archive",
    ),
    Route(
        "POST",
        _PROTECT + "/assert",
        assert_protection,
        "May a destructive operation touch these downloads? 403 when none may",
        body=bodies.AssertProtection,
        answer=ProtectionCheck,
        tag="archive",
    ),
)
