"""REST handlers for download protection and archived downloads, in TBM's shapes.

TBM's Next.js server asks ``/api/downloads/protect/assert`` before every delete and stop seeding
and turns anything but 200 or 403 into a 500 for the user; the archive routes check protection
first too. A 403 names the blocked ids (as strings, as TBM stores them).
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as pb

from gateway import bodies
from gateway.auth import caller_of
from gateway.handlers import Handlers, ok
from gateway.inputs import int_query, positive_id, text_query
from gateway.jsonview import to_json

PROTECTED = "Download is protected"


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
    return ok({"protected_ids": list(response.torrent_ids)})


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
    return ok({"protected_ids": list(response.torrent_ids)})


async def assert_protection(h: Handlers, request: web.Request) -> web.Response:
    """200 with allowed and blocked ids when any is allowed; 403 when every one is blocked.

    TBM gives this route no per-user rate limit (it runs before every delete): authentication
    only.
    """
    caller = await caller_of(request)
    body = await bodies.read(request, bodies.AssertProtection)
    response = await h.b.userstore(caller.auth_id).AssertProtection(
        pb.AssertProtectionRequest(
            auth_id=caller.auth_id, download_ids=body.download_ids, operation=body.operation
        ),
        **h.b.opts(),
    )
    if not response.allowed:
        return protected_answer(list(response.blocked))
    return ok(
        {
            "allowed": [str(i) for i in response.allowed],
            "blocked": [str(i) for i in response.blocked],
        }
    )


async def list_archived(h: Handlers, request: web.Request) -> web.Response:
    """A page of archived downloads, newest first."""
    caller = await h.caller(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    limit = int_query(request, "limit", 50, 1, 1000)
    search = text_query(request, "search", 200).strip()
    response = await h.b.userstore(caller.auth_id).ListArchived(
        pb.ListArchivedRequest(auth_id=caller.auth_id, page=page, limit=limit, search=search),
        **h.b.opts(),
    )
    return ok(
        {
            "data": [to_json(item) for item in response.items],
            "pagination": {
                "page": page,
                "limit": limit,
                "total": response.total,
                "totalPages": math.ceil(response.total / limit) if response.total else 0,
            },
        }
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
    return ok({"data": to_json(response.item)})


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
    return ok(
        {
            "data": {
                "torrentIds": [str(i) for i in response.torrent_ids],
                "blocked_ids": [str(i) for i in response.blocked_ids],
            }
        }
    )


async def delete_archived_bulk(h: Handlers, request: web.Request) -> web.Response:
    """Forget archive rows by their row ids (unknown ids are simply not counted)."""
    caller = await h.caller(request)
    body = await bodies.read(request, bodies.DeleteArchivedBulk)
    response = await h.b.userstore(caller.auth_id).DeleteArchivedBulk(
        pb.DeleteArchivedBulkRequest(auth_id=caller.auth_id, archive_ids=body.ids), **h.b.opts()
    )
    noun = "download" if response.deleted == 1 else "downloads"
    payload: dict[str, Any] = {
        "message": f"Deleted {response.deleted} archived {noun}",
        "data": {"deleted": response.deleted, "requested": response.requested},
    }
    return ok(payload)


async def delete_archived(h: Handlers, request: web.Request) -> web.Response:
    """Forget one archive row (not the download)."""
    caller = await h.caller(request)
    archive_id = positive_id(request.match_info.get("id"), "id")
    await h.b.userstore(caller.auth_id).DeleteArchived(
        pb.DeleteArchivedRequest(auth_id=caller.auth_id, archive_id=archive_id), **h.b.opts()
    )
    return ok({"message": "Archived download deleted successfully"})


async def restore_archived(h: Handlers, request: web.Request) -> web.Response:
    """Re-add an archived download from its magnet (through the scheduler)."""
    caller = await h.caller(request)
    archive_id = positive_id(request.match_info.get("id"), "id")
    response = await h.b.scheduler(caller.auth_id).RestoreArchived(
        spb.RestoreArchivedRequest(auth_id=caller.auth_id, archive_id=archive_id),
        **h.b.opts(30.0),
    )
    return ok({"data": to_json(response)})
