"""TBM's tags and download tags: bodies, answers, handlers and their route declarations.

TBM's Next.js server forwards its browser's calls with ``x-api-key`` (and ``authId`` in the query
or the body). Its frontend compares some error strings, so the checks run in TBM's order with its
words; its download-tags proxy turns every backend error into a 500 carrying our message. The
userstore's TagsService does the storing and publishes ``tags_changed`` on the event stream.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from torbox.automation.v1 import tags_service_pb2 as pb

from common.errors import InvalidArgument
from common.tags import MAX_NAME, clean_name
from gateway import bodies
from gateway.api import Answer, Message, Route, answer
from gateway.bodies import Body, DownloadId, tbm_error
from gateway.handlers import Handlers
from gateway.inputs import path_id
from gateway.jsonview import sql_time

MAX_DOWNLOAD_IDS = 1000
MAX_TAG_IDS = 100
OPERATIONS = {
    "add": (pb.TAG_OPERATION_ADD, "Tags added successfully"),
    "remove": (pb.TAG_OPERATION_REMOVE, "Tags removed successfully"),
    "replace": (pb.TAG_OPERATION_REPLACE, "Tags replaced successfully"),
}

# Bodies -------------------------------------------------------------------------------------------


class TagName(Body):
    """POST /api/tags and PUT /api/tags/{id}: a tag's name (trimmed; 1 to 100 characters)."""

    required = ("name",)

    name: str = Field(default=None, validate_default=True, max_length=MAX_NAME)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        try:
            return clean_name(value)
        except InvalidArgument as error:
            raise tbm_error(error.message) from None


_IDS = TypeAdapter(list[DownloadId])


def _valid_ids(value: list[Any]) -> bool:
    """Whether every item is a positive integer (TBM's checks 1 and 2), as the fields take them."""
    try:
        _IDS.validate_python(value)
    except ValidationError:
        return False
    return True


def _has_repeats(values: list[Any]) -> bool:
    """Repeated raw values, as a JavaScript Set sees them: ``1`` and ``"1"`` differ."""
    return len({(type(v), v) for v in values}) != len(values)


def tbm_mapping_checks(data: Any) -> None:
    """TBM's ten checks of a mapping change, in its order, but the last (tags exist: userstore)."""
    downloads, tags = data.get("download_ids"), data.get("tag_ids")
    operation = data.get("operation", "add")  # a default for a missing one, not for null
    checks: tuple[tuple[bool, str, str], ...] = (
        (
            isinstance(tags, list) and bool(tags) and not _valid_ids(tags),
            "Invalid tag_ids. All tag IDs must be positive integers.",
            "tag_ids",
        ),
        (
            isinstance(downloads, list) and bool(downloads) and not _valid_ids(downloads),
            "Invalid download_ids. All download IDs must be positive integers.",
            "download_ids",
        ),
        (
            not isinstance(downloads, list) or not downloads,
            "download_ids must be a non-empty array",
            "download_ids",
        ),
        (not isinstance(tags, list), "tag_ids must be an array", "tag_ids"),
    )
    for failed, message, field in checks:
        if failed:
            raise tbm_error(message, field)
    # Both are lists now (the checks above): narrowed for the type checker.
    assert isinstance(downloads, list)
    assert isinstance(tags, list)
    limits = (
        (
            len(downloads) > MAX_DOWNLOAD_IDS,
            f"Maximum {MAX_DOWNLOAD_IDS} download IDs allowed per request",
            "download_ids",
        ),
        (len(tags) > MAX_TAG_IDS, f"Maximum {MAX_TAG_IDS} tag IDs allowed per request", "tag_ids"),
        (_has_repeats(downloads), "download_ids array contains duplicate IDs", "download_ids"),
        (_has_repeats(tags), "tag_ids array contains duplicate IDs", "tag_ids"),
        (
            not isinstance(operation, str) or operation not in OPERATIONS,
            "operation must be one of: add, remove, replace",
            "operation",
        ),
    )
    for failed, message, field in limits:
        if failed:
            raise tbm_error(message, field)


class ChangeDownloadTags(Body):
    """POST /api/downloads/tags: add, remove or replace tags of downloads, all or nothing."""

    required = ("download_ids", "tag_ids")

    download_ids: list[DownloadId] = Field(min_length=1, max_length=MAX_DOWNLOAD_IDS)
    tag_ids: list[DownloadId] = Field(max_length=MAX_TAG_IDS)
    operation: Literal["add", "remove", "replace"] = "add"

    @model_validator(mode="before")
    @classmethod
    def _tbm_order(cls, data: Any) -> Any:
        # One validator for the whole body: TBM interleaves the fields' checks.
        if isinstance(data, dict):
            tbm_mapping_checks(data)
        return data


# Answers ------------------------------------------------------------------------------------------


class SavedTag(BaseModel):
    """A tag as TBM answers a save: times as SQLite's "YYYY-MM-DD HH:MM:SS" (UTC)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, tag: pb.Tag) -> SavedTag:
        """From the service's message."""
        return cls(
            id=tag.id,
            name=tag.name,
            created_at=sql_time(tag.created_at),
            updated_at=sql_time(tag.updated_at),
        )


class CountedTag(SavedTag):
    """A tag as TBM lists it: with how many downloads carry it."""

    usage_count: int

    @classmethod
    def of(cls, tag: pb.Tag) -> CountedTag:
        """From the service's message."""
        return cls(**SavedTag.of(tag).model_dump(), usage_count=tag.usage_count)


class TagList(Answer):
    """GET /api/tags."""

    tags: list[CountedTag]


class OneTag(Answer):
    """GET /api/tags/{id}."""

    tag: CountedTag


class TagSaved(Answer):
    """POST /api/tags and PUT /api/tags/{id} (no usage count, as TBM)."""

    tag: SavedTag


class TagRef(BaseModel):
    """A tag as a download's mapping names it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str


class Mappings(Answer):
    """GET /api/downloads/tags: every tagged download (its id as a string) and its tags."""

    mappings: dict[str, list[TagRef]]


# Handlers -----------------------------------------------------------------------------------------


async def list_tags(h: Handlers, request: web.Request) -> web.Response:
    """Every tag with its usage count, by name."""
    caller = await h.caller(request)
    response = await h.b.tags(caller.auth_id).ListTags(
        pb.ListTagsRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    return answer(TagList(tags=[CountedTag.of(t) for t in response.tags]))


async def create_tag(h: Handlers, request: web.Request) -> web.Response:
    """A new tag (no event: TBM announces only changes to existing tags and mappings)."""
    caller = await h.caller(request)
    body = await bodies.read(request, TagName)
    response = await h.b.tags(caller.auth_id).CreateTag(
        pb.CreateTagRequest(auth_id=caller.auth_id, name=body.name), **h.b.opts()
    )
    return answer(TagSaved(tag=SavedTag.of(response.tag)))


async def get_tag(h: Handlers, request: web.Request) -> web.Response:
    """One tag with its usage count."""
    caller = await h.caller(request)
    tag_id = path_id(request)
    response = await h.b.tags(caller.auth_id).GetTag(
        pb.GetTagRequest(auth_id=caller.auth_id, tag_id=tag_id), **h.b.opts()
    )
    return answer(OneTag(tag=CountedTag.of(response.tag)))


async def update_tag(h: Handlers, request: web.Request) -> web.Response:
    """Rename a tag."""
    caller = await h.caller(request)
    tag_id = path_id(request)
    body = await bodies.read(request, TagName)
    response = await h.b.tags(caller.auth_id).UpdateTag(
        pb.UpdateTagRequest(auth_id=caller.auth_id, tag_id=tag_id, name=body.name), **h.b.opts()
    )
    return answer(TagSaved(tag=SavedTag.of(response.tag)))


async def delete_tag(h: Handlers, request: web.Request) -> web.Response:
    """Delete a tag; its mappings go with it."""
    caller = await h.caller(request)
    tag_id = path_id(request)
    await h.b.tags(caller.auth_id).DeleteTag(
        pb.DeleteTagRequest(auth_id=caller.auth_id, tag_id=tag_id), **h.b.opts()
    )
    return answer(Message(message="Tag deleted successfully"))


async def list_mappings(h: Handlers, request: web.Request) -> web.Response:
    """Every tagged download and its tags (by name)."""
    caller = await h.caller(request)
    response = await h.b.tags(caller.auth_id).ListDownloadTags(
        pb.ListDownloadTagsRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    mappings = {
        str(d.download_id): [TagRef(id=t.id, name=t.name) for t in d.tags]
        for d in response.downloads
    }
    return answer(Mappings(mappings=mappings))


async def change_mappings(h: Handlers, request: web.Request) -> web.Response:
    """Add, remove or replace tags of downloads (an unknown tag id refuses it all)."""
    caller = await h.caller(request)
    body = await bodies.read(request, ChangeDownloadTags)
    operation, message = OPERATIONS[body.operation]
    await h.b.tags(caller.auth_id).ChangeDownloadTags(
        pb.ChangeDownloadTagsRequest(
            auth_id=caller.auth_id,
            download_ids=body.download_ids,
            tag_ids=body.tag_ids,
            operation=operation,
        ),
        **h.b.opts(),
    )
    return answer(Message(message=message))


_NAMED = (400, 401, 403, 404, 409, 429, 503)
ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/tags",
        list_tags,
        "TBM's local tags, by name (binary), each with how many downloads carry it",
        answer=TagList,
        tag="tags",
    ),
    Route(
        "POST",
        "/api/tags",
        create_tag,
        (
            "Create a tag: the name trimmed as JavaScript trims, 1 to 100 UTF-16 units; 409 when "
            "another tag has it in any ASCII case; no event"
        ),
        body=TagName,
        answer=TagSaved,
        errors=_NAMED,
        tag="tags",
    ),
    # The mappings before any "{id}" route that could take "tags" for an id.
    Route(
        "GET",
        "/api/downloads/tags",
        list_mappings,
        "Every tagged download (its id as a string key) and its tags, by name",
        answer=Mappings,
        tag="tags",
    ),
    Route(
        "POST",
        "/api/downloads/tags",
        change_mappings,
        (
            "Add, remove or replace tags of downloads in one transaction. TBM's ten checks in its "
            "order and words (tag ids, download ids, non-empty download_ids, tag_ids an array, at "
            "most 1000 and 100, no repeated raw values, the operation, every tag exists); a "
            "refused change changes nothing; emits tags_changed even when nothing changed"
        ),
        body=ChangeDownloadTags,
        answer=Message,
        tag="tags",
    ),
    Route(
        "GET",
        "/api/tags/{id}",
        get_tag,
        'One tag with its usage count (404 "Tag not found")',
        answer=OneTag,
        tag="tags",
    ),
    Route(
        "PUT",
        "/api/tags/{id}",
        update_tag,
        "Rename a tag: the name's checks, then 404, then 409; emits tags_changed",
        body=TagName,
        answer=TagSaved,
        errors=_NAMED,
        tag="tags",
    ),
    Route(
        "DELETE",
        "/api/tags/{id}",
        delete_tag,
        "Delete a tag and (by cascade) its mappings; its id is never reused; emits tags_changed",
        answer=Message,
        tag="tags",
    ),
)
