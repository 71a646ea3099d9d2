"""REST routes of TBM's link history: pages and keyset scans, single and bulk upserts, deletes.

Entries are read as TBM's backend reads them (JavaScript truthiness, numbers as text) and checked
in TBM's order and words; a bulk import skips what a single create would refuse. Times go out as
TBM's ``YYYY-MM-DD HH:MM:SS`` (UTC). A keyset cursor is opaque to the frontend, which only passes
``nextCursor`` back: it carries the exact stored time and id, so a walk never loses or repeats a
row even when many share a second.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from torbox.automation.v1 import link_history_service_pb2 as pb

from common import limits
from common.errors import InvalidArgument
from gateway.api import Answer, Message, Query, Route, answer, query
from gateway.bodies import Body, list_field, read, required_list, tbm_error
from gateway.inputs import INT64_MAX, path_id
from gateway.jsonview import sql_time
from gateway.tbm import falsy, parse_time, positive_int, text

if TYPE_CHECKING:
    from gateway.handlers import Handlers

ASSET_TYPES = ("torrents", "usenet", "webdl")
# TBM migrates a whole localStorage history in one request under its 10 MiB body cap: so does this
# route (every other route keeps the 1 MiB cap).
IMPORT_BODY_BYTES = 10 * 1024 * 1024
# The largest import takes about 1.5 s in the userstore. TBM's proxy sets no timeout on this call,
# and a deadline that expired mid-import would report a failure for rows that are then committed.
IMPORT_TIMEOUT_SECONDS = 30.0
MAX_PAGE = 1_000_000_000
_INTEGER = re.compile(r"\s*([+-]?[0-9]+)")
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")
_BOUNDS = {
    "item_id": limits.MAX_LINK_ID,
    "file_id": limits.MAX_LINK_ID,
    "url": limits.MAX_LINK_URL,
    "item_name": limits.MAX_LINK_NAME,
    "file_name": limits.MAX_LINK_NAME,
}


# Query ---------------------------------------------------------------------------------------


def _parse_int(raw: Any, default: int) -> int:
    """``parseInt(raw) || default``, as TBM reads limit and page (garbage means the default)."""
    match = _INTEGER.match(raw) if isinstance(raw, str) else None
    if match is None:
        return default
    digits = match.group(1)
    if len(digits.lstrip("+-")) > 18:  # far out of range either way; int() stays cheap
        return MAX_PAGE if not digits.startswith("-") else -1
    return int(digits) or default


def _limit(raw: Any) -> int:
    return max(1, min(_parse_int(raw, 50), 1000))


def _page(raw: Any) -> int:
    return max(1, min(_parse_int(raw, 1), MAX_PAGE))


def _search(raw: Any) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("unicode", "must be valid Unicode") from None
    return value


def encode_cursor(generated_at: float, entry_id: int) -> str:
    """The position after an entry: its exact time and id, as URL-safe base64 of JSON."""
    raw = json.dumps({"g": generated_at, "i": entry_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[float, int] | None:
    """A position from :func:`encode_cursor`, or None when the text is not one."""
    if not _CURSOR.fullmatch(cursor):
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(decoded, dict):
        return None
    g, i = decoded.get("g"), decoded.get("i")
    if not isinstance(g, int | float) or isinstance(g, bool) or not math.isfinite(g):
        return None
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i <= INT64_MAX:
        return None
    return float(g), i


def _cursor(raw: Any) -> Any:
    # TBM checks a cursor whenever one is given, in both modes.
    if raw and (not isinstance(raw, str) or decode_cursor(raw) is None):
        raise tbm_error("Invalid cursor")
    return raw or None


def _keyset(raw: Any) -> bool:
    return raw in ("1", "true")  # TBM's exact test: anything else is page mode


class LinkHistoryQuery(Query):
    """GET /api/link-history: page mode by default, keyset mode with keyset=1 or true."""

    page: Annotated[int, BeforeValidator(_page)] = 1
    limit: Annotated[int, BeforeValidator(_limit)] = 50
    search: Annotated[str, BeforeValidator(_search)] = Field(
        default="", max_length=limits.MAX_LINK_SEARCH
    )
    keyset: Annotated[bool, BeforeValidator(_keyset)] = False
    cursor: Annotated[str | None, BeforeValidator(_cursor)] = Field(
        default=None, description="pagination.nextCursor of the previous keyset page"
    )

    @property
    def position(self) -> tuple[float, int] | None:
        """The entry the cursor points after (None: from the newest)."""
        return None if self.cursor is None else decode_cursor(self.cursor)


# Bodies ----------------------------------------------------------------------------------------


def _loose(value: Any) -> Any:
    """A bulk entry as TBM takes it: anything (what is not an object is skipped)."""
    return value if isinstance(value, dict) else {}


class LinkEntry(Body):
    """One generated link, as TBM's frontend writes it (checked by :meth:`wire`)."""

    required = ("item_id", "asset_type")
    documented: ClassVar[dict[str, dict[str, Any]]] = {
        "item_id": {"type": ["string", "integer"], "maxLength": limits.MAX_LINK_ID},
        "file_id": {"type": ["string", "integer", "null"], "maxLength": limits.MAX_LINK_ID},
        "url": {
            "type": ["string", "null"],
            "maxLength": limits.MAX_LINK_URL,
            "description": "may be empty for a failed entry",
        },
        "asset_type": {"enum": list(ASSET_TYPES)},
        "item_name": {"type": ["string", "null"], "maxLength": limits.MAX_LINK_NAME},
        "file_name": {"type": ["string", "null"], "maxLength": limits.MAX_LINK_NAME},
        "status": {"type": "string", "description": '"failed", else success'},
        "generated_at": {
            "type": ["string", "number", "null"],
            "description": "bulk only: ISO 8601 or SQLite UTC text, or epoch milliseconds",
        },
    }

    item_id: Any = None
    file_id: Any = None
    url: Any = None
    asset_type: Any = None
    item_name: Any = None
    file_name: Any = None
    status: Any = None
    generated_at: Any = None

    def wire(self, *, dated: bool) -> pb.LinkEntryInput:
        """The entry for the userstore, or InvalidArgument in TBM's order and words.

        `dated`: take generated_at from the entry (bulk); a single create is always stamped now.
        """
        if falsy(self.item_id) or falsy(self.asset_type):
            field = "item_id" if falsy(self.item_id) else "asset_type"
            raise InvalidArgument("item_id and asset_type are required", field=field)
        status = "failed" if self.status == "failed" else "success"
        url = "" if self.url is None else text(self.url)
        if url is None:
            raise InvalidArgument("must be a string", field="url")
        if status == "success" and not url:
            raise InvalidArgument(
                "url is required for successful link history entries", field="url"
            )
        if self.asset_type not in ASSET_TYPES:
            raise InvalidArgument(
                "asset_type must be one of: torrents, usenet, webdl", field="asset_type"
            )
        entry = pb.LinkEntryInput(
            item_id=self._text("item_id"), url=url, asset_type=self.asset_type, status=status
        )
        for name in ("file_id", "item_name", "file_name"):
            if not falsy(getattr(self, name)):
                setattr(entry, name, self._text(name))
        for name, bound in _BOUNDS.items():
            if len(getattr(entry, name)) > bound:
                raise InvalidArgument(f"must be at most {bound} characters", field=name)
        if dated and not falsy(self.generated_at):
            seconds = parse_time(self.generated_at)
            if seconds is None:
                raise InvalidArgument(
                    "must be an ISO 8601 or SQLite date-time, or epoch milliseconds",
                    field="generated_at",
                )
            entry.generated_at = seconds
        return entry

    def _text(self, name: str) -> str:
        value = text(getattr(self, name))
        if value is None:
            raise InvalidArgument("must be a string or a number", field=name)
        return value


class ImportLinks(Body):
    """POST /api/link-history/bulk: entries to upsert; unusable ones are skipped."""

    required = ("entries",)

    entries: Annotated[
        list[Annotated[LinkEntry, BeforeValidator(_loose)]],
        required_list("entries", limits.MAX_LINK_IMPORT),
    ] = list_field(limits.MAX_LINK_IMPORT)


def _entry_id(value: Any) -> Any:
    entry_id = positive_int(value)
    if entry_id is None:
        raise tbm_error("Invalid ids. All IDs must be positive integers.")
    return entry_id


class DeleteLinks(Body):
    """DELETE /api/link-history/bulk: entries to delete by id."""

    required = ("ids",)

    ids: Annotated[
        list[Annotated[int, BeforeValidator(_entry_id)]],
        required_list("ids", limits.MAX_LINK_DELETE),
    ] = list_field(limits.MAX_LINK_DELETE)


# Answers ---------------------------------------------------------------------------------------


class LinkRow(BaseModel):
    """An entry as TBM's frontend reads it."""

    id: int
    item_id: str
    file_id: str | None
    url: str
    asset_type: str
    item_name: str | None
    file_name: str | None
    generated_at: str
    created_at: str
    status: str


class Pages(BaseModel):
    """Page mode's position."""

    page: int
    limit: int
    total: int
    totalPages: int


class Keyset(BaseModel):
    """Keyset mode's position: nextCursor only after a full page."""

    limit: int
    nextCursor: str | None
    hasMore: bool


class LinkHistoryPage(Answer):
    """Entries newest first, with page mode's or keyset mode's pagination."""

    data: list[LinkRow]
    pagination: Pages | Keyset


class OneLink(Answer):
    """The entry just written."""

    data: LinkRow


class ImportCounts(BaseModel):
    """What a bulk import did."""

    requested: int
    validated: int
    deleted: int
    inserted: int


class Imported(Answer):
    """TBM's message and counts of a bulk import."""

    message: str
    data: ImportCounts


class DeleteCounts(BaseModel):
    """What a bulk delete did."""

    deleted: int
    requested: int


class BulkDeleted(Answer):
    """TBM's message and counts of a bulk delete."""

    message: str
    data: DeleteCounts


def row(entry: pb.LinkEntry) -> LinkRow:
    """A stored entry in TBM's shape."""
    e = entry.input
    return LinkRow(
        id=entry.id,
        item_id=e.item_id,
        file_id=e.file_id if e.HasField("file_id") else None,
        url=e.url,
        asset_type=e.asset_type,
        item_name=e.item_name if e.HasField("item_name") else None,
        file_name=e.file_name if e.HasField("file_name") else None,
        generated_at=sql_time(entry.generated_at),
        created_at=sql_time(entry.created_at),
        status=e.status,
    )


def entries(count: int) -> str:
    """TBM's noun: "entry" for one, "entries" otherwise."""
    return "entry" if count == 1 else "entries"


# Handlers --------------------------------------------------------------------------------------


async def list_history(h: Handlers, request: web.Request) -> web.Response:
    """A page (page mode) or the entries after a cursor (keyset mode), newest first."""
    caller = await h.caller(request)
    q = query(request, LinkHistoryQuery)
    stub = h.b.link_history(caller.auth_id)
    if not q.keyset:
        listed = await stub.ListLinkHistory(
            pb.ListLinkHistoryRequest(
                auth_id=caller.auth_id, page=q.page, limit=q.limit, search=q.search
            ),
            **h.b.opts(),
        )
        pages = Pages(
            page=q.page, limit=q.limit, total=listed.total, totalPages=-(-listed.total // q.limit)
        )
        return answer(LinkHistoryPage(data=[row(e) for e in listed.entries], pagination=pages))
    message = pb.ScanLinkHistoryRequest(auth_id=caller.auth_id, limit=q.limit, search=q.search)
    if q.position is not None:
        message.after.generated_at, message.after.id = q.position
    scanned = await stub.ScanLinkHistory(message, **h.b.opts())
    last = scanned.entries[-1] if len(scanned.entries) == q.limit else None
    cursor = None if last is None else encode_cursor(last.generated_at, last.id)
    return answer(
        LinkHistoryPage(
            data=[row(e) for e in scanned.entries],
            pagination=Keyset(limit=q.limit, nextCursor=cursor, hasMore=cursor is not None),
        )
    )


async def create_entry(h: Handlers, request: web.Request) -> web.Response:
    """Replace the entry with the same item, file and asset type; stamped now."""
    caller = await h.caller(request)
    entry = (await read(request, LinkEntry)).wire(dated=False)
    response = await h.b.link_history(caller.auth_id).CreateLinkHistory(
        pb.CreateLinkHistoryRequest(auth_id=caller.auth_id, entry=entry), **h.b.opts()
    )
    return answer(OneLink(data=row(response.entry)))


async def import_entries(h: Handlers, request: web.Request) -> web.Response:
    """Upsert many in one transaction; unusable entries are skipped, repeats count once."""
    caller = await h.caller(request)
    body = await read(request, ImportLinks)
    usable = []
    for entry in body.entries:
        try:
            usable.append(entry.wire(dated=True))
        except InvalidArgument:
            continue  # TBM skips an entry it cannot store, silently
    if not usable:
        raise InvalidArgument("No valid entries to insert", field="entries")
    done = await h.b.link_history(caller.auth_id).ImportLinkHistory(
        pb.ImportLinkHistoryRequest(auth_id=caller.auth_id, entries=usable),
        **h.b.opts(IMPORT_TIMEOUT_SECONDS),
    )
    counts = ImportCounts(
        requested=len(body.entries),
        validated=done.validated,
        deleted=done.deleted,
        inserted=done.inserted,
    )
    message = f"Migrated {done.inserted} link history {entries(done.inserted)}"
    return answer(Imported(message=message, data=counts))


async def delete_entries(h: Handlers, request: web.Request) -> web.Response:
    """Delete entries by id; unknown ids are not counted (never a 404)."""
    caller = await h.caller(request)
    body = await read(request, DeleteLinks)
    done = await h.b.link_history(caller.auth_id).DeleteLinkHistoryBulk(
        pb.DeleteLinkHistoryBulkRequest(auth_id=caller.auth_id, entry_ids=body.ids), **h.b.opts()
    )
    return answer(
        BulkDeleted(
            message=f"Deleted {done.deleted} link history {entries(done.deleted)}",
            data=DeleteCounts(deleted=done.deleted, requested=len(body.ids)),
        )
    )


async def delete_entry(h: Handlers, request: web.Request) -> web.Response:
    """Delete one entry (404 "Link history entry not found")."""
    caller = await h.caller(request)
    entry_id = path_id(request)
    await h.b.link_history(caller.auth_id).DeleteLinkHistory(
        pb.DeleteLinkHistoryRequest(auth_id=caller.auth_id, entry_id=entry_id), **h.b.opts()
    )
    return answer(Message(message="Link history entry deleted successfully"))


_PATH = "/api/link-history"
ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        _PATH,
        list_history,
        "Link history, newest first (generated_at, then id): pages, or with keyset=1 or true "
        "pages after a cursor (pass pagination.nextCursor back; it is set after a full page); "
        "limit and page are read as TBM's parseInt, then clamped; search is literal and ASCII "
        'case-insensitive over item_id, item_name, file_name and url; 400 "Invalid cursor" '
        "in both modes",
        query=LinkHistoryQuery,
        answer=LinkHistoryPage,
        tag="link history",
    ),
    Route(
        "POST",
        _PATH,
        create_entry,
        "Record a generated link, stamped now, replacing the one with the same item_id, file_id "
        "(null-safe; 0 is null) and asset_type; 400 in TBM's order: \"item_id and asset_type "
        'are required", "url is required for successful link history entries", '
        '"asset_type must be one of: torrents, usenet, webdl"; the newest '
        f"{limits.MAX_LINK_ROWS} entries are kept",
        body=LinkEntry,
        answer=OneLink,
        tag="link history",
    ),
    # The bulk paths before "{id}": aiohttp tries resources in the order they were added.
    Route(
        "POST",
        f"{_PATH}/bulk",
        import_entries,
        "Import many links in one transaction (a body up to 10 MiB): entries a single POST "
        "would refuse, or whose generated_at (ISO 8601, SQLite UTC text or epoch "
        'milliseconds) cannot be read, are skipped; of repeats the first wins; "Migrated N '
        'link history entries"; 400 "entries array is required and must not be empty", '
        '"No valid entries to insert"',
        body=ImportLinks,
        answer=Imported,
        tag="link history",
        max_body=IMPORT_BODY_BYTES,
    ),
    Route(
        "DELETE",
        f"{_PATH}/bulk",
        delete_entries,
        'Delete entries by id (unknown ids are not counted, never a 404): "Deleted N link '
        'history entries"; 400 "Invalid ids. All IDs must be positive integers.", "ids '
        'array is required and must not be empty"',
        body=DeleteLinks,
        answer=BulkDeleted,
        tag="link history",
    ),
    Route(
        "DELETE",
        f"{_PATH}/{{id}}",
        delete_entry,
        'Delete one entry; 404 "Link history entry not found"',
        answer=Message,
        tag="link history",
    ),
)
