"""REST routes of TBM's custom views: list, create, read, change, reorder and delete.

Filters and visible columns are the frontend's JSON, stored and returned unchanged. Values are read
as TBM's backend reads them (JavaScript truthiness: a falsy sort field is null, ``{}`` filters are
given); a value TBM would have failed on with a 500 (an object as a name) is a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from aiohttp import web
from google.protobuf.field_mask_pb2 import FieldMask
from pydantic import BaseModel, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError
from torbox.automation.v1 import views_service_pb2 as pb

from common import limits
from gateway.api import Answer, Message, Query, Route, answer
from gateway.bodies import Body, read, tbm_error
from gateway.inputs import path_id
from gateway.jsonview import sql_time
from gateway.tbm import falsy, positive_int

if TYPE_CHECKING:
    from gateway.handlers import Handlers

FIELDS = limits.VIEW_FIELDS  # the body's fields = the columns a client writes = update paths
_JSON_FIELDS = ("filters", "visible_columns")


def _json_text(value: Any) -> str:
    """A JSON value as compact text, as JSON.stringify writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _name(value: Any) -> Any:
    # Run only for a name that is present: TBM stores a number as its text, but an object, or a
    # null on PUT (its column is NOT NULL), makes TBM fail with a 500.
    if not isinstance(value, str):
        raise PydanticCustomError("string", "must be a string")
    return value


def _optional_text(value: Any) -> Any:
    """TBM stores a falsy value as null; a text as given."""
    if falsy(value):
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("string", "must be a string or null")
    return value


def _search(value: Any) -> Any:
    """Trimmed; empty is null (TBM fails on anything but a string or null)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("string", "must be a string or null")
    return value.strip() or None


OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]


class ViewBody(Body):
    """A custom view's fields: all of them to create one, any subset to change one."""

    # Bounds of our own (TBM has none), also enforced by the userstore: common/limits.py.
    name: Annotated[str | None, BeforeValidator(_name)] = Field(
        default=None, max_length=limits.MAX_VIEW_NAME
    )
    filters: Any = Field(
        default=None,
        description=f"the frontend's filter groups (any JSON, {limits.MAX_VIEW_FILTERS_BYTES} "
        "bytes at most)",
    )
    sort_field: OptionalText = Field(default=None, max_length=limits.MAX_VIEW_TEXT)
    sort_direction: OptionalText = Field(default=None, max_length=limits.MAX_VIEW_TEXT)
    visible_columns: Any = Field(
        default=None,
        description=f"column keys (any JSON, {limits.MAX_VIEW_COLUMNS_BYTES} bytes at most)",
    )
    asset_type: OptionalText = Field(default=None, max_length=limits.MAX_VIEW_TEXT)
    search_query: Annotated[str | None, BeforeValidator(_search)] = Field(
        default=None, max_length=limits.MAX_VIEW_SEARCH
    )

    def wire(self) -> pb.ViewFields:
        """The fields as the userstore takes them (JSON as text, falsy columns as null)."""
        fields = pb.ViewFields(name=self.name or "", filters_json=_json_text(self.filters))
        if not falsy(self.visible_columns):
            fields.visible_columns_json = _json_text(self.visible_columns)
        for name in ("sort_field", "sort_direction", "asset_type", "search_query"):
            value = getattr(self, name)
            if value is not None:
                setattr(fields, name, value)
        return fields

    def mask(self) -> FieldMask:
        """The fields the body names (TBM's PUT changes only those)."""
        paths = [
            f"{n}_json" if n in _JSON_FIELDS else n for n in FIELDS if n in self.model_fields_set
        ]
        return FieldMask(paths=paths)


class CreateView(ViewBody):
    """POST /api/custom-views: name and filters must be truthy, the rest optional."""

    required = ("name", "filters")

    @model_validator(mode="before")
    @classmethod
    def _required(cls, raw: Any) -> Any:
        # TBM's first check, before any type: both present and truthy ({} filters are).
        if isinstance(raw, dict) and (falsy(raw.get("name")) or falsy(raw.get("filters"))):
            field = "name" if falsy(raw.get("name")) else "filters"
            raise tbm_error("name and filters are required", field)
        return raw


class UpdateView(ViewBody):
    """PUT /api/custom-views/{id}: only the fields present change (none: updated_at only)."""


def _order(value: Any) -> Any:
    """TBM's checks of a reorder that need no database, in its order and words."""
    if not isinstance(value, list) or not value:
        raise tbm_error("ids must be a non-empty array")
    ids = [positive_int(v) for v in value]
    if any(i is None for i in ids):
        raise tbm_error("ids must contain positive integers")
    if len(set(ids)) != len(ids):
        raise tbm_error("ids must not contain duplicates")
    return ids


class ReorderViews(Body):
    """PATCH /api/custom-views/reorder: every view id, in the new order."""

    required = ("ids",)

    ids: Annotated[list[int], BeforeValidator(_order)] = Field(default=None, validate_default=True)


class ViewsQuery(Query):
    """TBM's proxies add the key's auth id (checked against the key)."""

    authId: str | None = None


class View(BaseModel):
    """A custom view as TBM's frontend reads it."""

    id: int
    name: str
    filters: Any
    sort_field: str | None
    sort_direction: str | None
    visible_columns: Any
    asset_type: str | None
    search_query: str | None
    sort_order: int
    created_at: str
    updated_at: str


class ViewList(Answer):
    """Every view, by sort_order then id."""

    views: list[View]


class OneView(Answer):
    """One view."""

    view: View


def _parsed(text: str, fallback: Any) -> Any:
    """Stored JSON back as a value (TBM answers {} or [] for text that does not parse)."""
    try:
        return json.loads(text)
    except ValueError:
        return fallback


def view_json(view: pb.CustomView) -> View:
    """A stored view in TBM's shape."""
    f = view.fields
    return View(
        id=view.id,
        name=f.name,
        filters=_parsed(f.filters_json, {}),
        sort_field=f.sort_field if f.HasField("sort_field") else None,
        sort_direction=f.sort_direction if f.HasField("sort_direction") else None,
        visible_columns=(
            _parsed(f.visible_columns_json, []) if f.HasField("visible_columns_json") else None
        ),
        asset_type=f.asset_type if f.HasField("asset_type") else None,
        search_query=f.search_query if f.HasField("search_query") else None,
        sort_order=view.sort_order,
        created_at=sql_time(view.created_at),
        updated_at=sql_time(view.updated_at),
    )


async def list_views(h: Handlers, request: web.Request) -> web.Response:
    """Every view of the caller."""
    caller = await h.caller(request)
    response = await h.b.views(caller.auth_id).ListViews(
        pb.ListViewsRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    return answer(ViewList(views=[view_json(v) for v in response.views]))


async def create_view(h: Handlers, request: web.Request) -> web.Response:
    """A new view, after every other one."""
    caller = await h.caller(request)
    body = await read(request, CreateView)
    response = await h.b.views(caller.auth_id).CreateView(
        pb.CreateViewRequest(auth_id=caller.auth_id, fields=body.wire()), **h.b.opts()
    )
    return answer(OneView(view=view_json(response.view)))


async def get_view(h: Handlers, request: web.Request) -> web.Response:
    """One view (404 "Custom view not found")."""
    caller = await h.caller(request)
    view_id = path_id(request)
    response = await h.b.views(caller.auth_id).GetView(
        pb.GetViewRequest(auth_id=caller.auth_id, view_id=view_id), **h.b.opts()
    )
    return answer(OneView(view=view_json(response.view)))


async def update_view(h: Handlers, request: web.Request) -> web.Response:
    """Change the fields the body names; answers the whole view."""
    caller = await h.caller(request)
    view_id = path_id(request)
    body = await read(request, UpdateView)
    response = await h.b.views(caller.auth_id).UpdateView(
        pb.UpdateViewRequest(
            auth_id=caller.auth_id, view_id=view_id, fields=body.wire(), update_mask=body.mask()
        ),
        **h.b.opts(),
    )
    return answer(OneView(view=view_json(response.view)))


async def reorder_views(h: Handlers, request: web.Request) -> web.Response:
    """Number every view by its place in ids (which must name each view once)."""
    caller = await h.caller(request)
    body = await read(request, ReorderViews)
    await h.b.views(caller.auth_id).ReorderViews(
        pb.ReorderViewsRequest(auth_id=caller.auth_id, view_ids=body.ids), **h.b.opts()
    )
    return answer(Answer())


async def delete_view(h: Handlers, request: web.Request) -> web.Response:
    """Delete one view (404 "Custom view not found")."""
    caller = await h.caller(request)
    view_id = path_id(request)
    await h.b.views(caller.auth_id).DeleteView(
        pb.DeleteViewRequest(auth_id=caller.auth_id, view_id=view_id), **h.b.opts()
    )
    return answer(Message(message="Custom view deleted successfully"))


_PATH = "/api/custom-views"
ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        _PATH,
        list_views,
        "Custom views, by sort_order then id; filters and visible_columns come back as the "
        "frontend stored them (JSON)",
        query=ViewsQuery,
        answer=ViewList,
        tag="views",
    ),
    Route(
        "POST",
        _PATH,
        create_view,
        'Save a custom view after the others (sort_order = highest + 1); 400 "name and '
        'filters are required" unless both are truthy ({} filters are); a falsy sort_field, '
        "sort_direction, asset_type or visible_columns is null, search_query is trimmed; "
        f"409 past {limits.MAX_VIEWS} views",
        body=CreateView,
        answer=OneView,
        errors=(400, 401, 403, 404, 409, 429, 503),
        tag="views",
    ),
    # Before "{id}": aiohttp tries resources in the order they were added.
    Route(
        "PATCH",
        f"{_PATH}/reorder",
        reorder_views,
        "Put every custom view in a new order (sort_order = index); 400 in TBM's order: "
        '"ids must be a non-empty array", "ids must contain positive integers", "ids '
        'must not contain duplicates", "ids must include every custom view" (count), '
        '"ids contain unknown custom view ids"',
        body=ReorderViews,
        answer=Answer,
        tag="views",
    ),
    Route(
        "GET",
        f"{_PATH}/{{id}}",
        get_view,
        'One custom view; 404 "Custom view not found"',
        query=ViewsQuery,
        answer=OneView,
        tag="views",
    ),
    Route(
        "PUT",
        f"{_PATH}/{{id}}",
        update_view,
        "Change the fields the body names (an empty body only moves updated_at); 404 "
        '"Custom view not found"',
        body=UpdateView,
        answer=OneView,
        tag="views",
    ),
    Route(
        "DELETE",
        f"{_PATH}/{{id}}",
        delete_view,
        'Delete a custom view; 404 "Custom view not found"',
        query=ViewsQuery,
        answer=Message,
        tag="views",
    ),
)
