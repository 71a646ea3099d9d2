"""Servicers of ViewsService and LinkHistoryService: convert, call one service, convert back."""

from __future__ import annotations

from typing import Any

import grpc
from torbox.automation.v1 import link_history_service_pb2 as lpb
from torbox.automation.v1 import link_history_service_pb2_grpc as lpb_grpc
from torbox.automation.v1 import views_service_pb2 as vpb
from torbox.automation.v1 import views_service_pb2_grpc as vpb_grpc

from common.errors import InvalidArgument
from userstore_svc.link_history_service import LinkHistoryService
from userstore_svc.store.link_history import Entry, EntryIn
from userstore_svc.store.views import FIELDS, View, ViewFields
from userstore_svc.views_service import ViewService

Context = grpc.aio.ServicerContext[Any, Any]
VIEWS_SERVICE_NAME = vpb.DESCRIPTOR.services_by_name["ViewsService"].full_name
LINK_HISTORY_SERVICE_NAME = lpb.DESCRIPTOR.services_by_name["LinkHistoryService"].full_name
# Proto field names of ViewFields by column (JSON columns carry a _json suffix on the wire).
_WIRE = {
    name: f"{name}_json" if name in ("filters", "visible_columns") else name for name in FIELDS
}
_COLUMN = {wire: name for name, wire in _WIRE.items()}


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def view_fields_in(message: vpb.ViewFields) -> ViewFields:
    """Fields from the wire (an unset optional is null)."""
    return ViewFields(
        message.name,
        message.filters_json,
        *(_optional(message, _WIRE[name]) for name in FIELDS[2:]),
    )


def view_pb(view: View) -> vpb.CustomView:
    """A stored view on the wire."""
    fields = vpb.ViewFields()
    for name in FIELDS:
        value = getattr(view.fields, name)
        if value is not None:
            setattr(fields, _WIRE[name], value)
    return vpb.CustomView(
        id=view.id,
        fields=fields,
        sort_order=view.sort_order,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


class ViewsServicer(vpb_grpc.ViewsServiceServicer):
    """Thin adapter from gRPC to :class:`ViewService`."""

    def __init__(self, views: ViewService) -> None:
        self.views = views

    async def ListViews(
        self, request: vpb.ListViewsRequest, context: Context
    ) -> vpb.ListViewsResponse:
        views = await self.views.list(request.auth_id)
        return vpb.ListViewsResponse(views=[view_pb(v) for v in views])

    async def GetView(self, request: vpb.GetViewRequest, context: Context) -> vpb.GetViewResponse:
        return vpb.GetViewResponse(
            view=view_pb(await self.views.get(request.auth_id, request.view_id))
        )

    async def CreateView(
        self, request: vpb.CreateViewRequest, context: Context
    ) -> vpb.CreateViewResponse:
        view = await self.views.create(request.auth_id, view_fields_in(request.fields))
        return vpb.CreateViewResponse(view=view_pb(view))

    async def UpdateView(
        self, request: vpb.UpdateViewRequest, context: Context
    ) -> vpb.UpdateViewResponse:
        fields = view_fields_in(request.fields)
        changes: dict[str, Any] = {}
        for path in request.update_mask.paths:
            name = _COLUMN.get(path)
            if name is None:
                raise InvalidArgument(f"{path} is not a field of a view", field="update_mask")
            changes[name] = getattr(fields, name)
        view = await self.views.update(request.auth_id, request.view_id, changes)
        return vpb.UpdateViewResponse(view=view_pb(view))

    async def DeleteView(
        self, request: vpb.DeleteViewRequest, context: Context
    ) -> vpb.DeleteViewResponse:
        await self.views.delete(request.auth_id, request.view_id)
        return vpb.DeleteViewResponse()

    async def ReorderViews(
        self, request: vpb.ReorderViewsRequest, context: Context
    ) -> vpb.ReorderViewsResponse:
        await self.views.reorder(request.auth_id, list(request.view_ids))
        return vpb.ReorderViewsResponse()


def entry_in(message: lpb.LinkEntryInput) -> EntryIn:
    """An entry from the wire (an unset optional is null)."""
    return EntryIn(
        item_id=message.item_id,
        file_id=_optional(message, "file_id"),
        url=message.url,
        asset_type=message.asset_type,
        item_name=_optional(message, "item_name"),
        file_name=_optional(message, "file_name"),
        status=message.status,
        generated_at=_optional(message, "generated_at"),
    )


def entry_pb(entry: Entry) -> lpb.LinkEntry:
    """A stored entry on the wire."""
    written = lpb.LinkEntryInput(
        item_id=entry.item_id,
        url=entry.url,
        asset_type=entry.asset_type,
        status=entry.status,
    )
    for name in ("file_id", "item_name", "file_name"):
        value = getattr(entry, name)
        if value is not None:
            setattr(written, name, value)
    return lpb.LinkEntry(
        id=entry.id, input=written, generated_at=entry.generated_at, created_at=entry.created_at
    )


class LinkHistoryServicer(lpb_grpc.LinkHistoryServiceServicer):
    """Thin adapter from gRPC to :class:`LinkHistoryService`."""

    def __init__(self, history: LinkHistoryService) -> None:
        self.history = history

    async def ListLinkHistory(
        self, request: lpb.ListLinkHistoryRequest, context: Context
    ) -> lpb.ListLinkHistoryResponse:
        entries, total = await self.history.page(
            request.auth_id, request.page, request.limit, request.search
        )
        return lpb.ListLinkHistoryResponse(entries=[entry_pb(e) for e in entries], total=total)

    async def ScanLinkHistory(
        self, request: lpb.ScanLinkHistoryRequest, context: Context
    ) -> lpb.ScanLinkHistoryResponse:
        after = (
            (request.after.generated_at, request.after.id) if request.HasField("after") else None
        )
        entries = await self.history.scan(request.auth_id, request.limit, request.search, after)
        return lpb.ScanLinkHistoryResponse(entries=[entry_pb(e) for e in entries])

    async def CreateLinkHistory(
        self, request: lpb.CreateLinkHistoryRequest, context: Context
    ) -> lpb.CreateLinkHistoryResponse:
        entry = await self.history.create(request.auth_id, entry_in(request.entry))
        return lpb.CreateLinkHistoryResponse(entry=entry_pb(entry))

    async def ImportLinkHistory(
        self, request: lpb.ImportLinkHistoryRequest, context: Context
    ) -> lpb.ImportLinkHistoryResponse:
        validated, deleted, inserted = await self.history.import_entries(
            request.auth_id, [entry_in(e) for e in request.entries]
        )
        return lpb.ImportLinkHistoryResponse(
            validated=validated, deleted=deleted, inserted=inserted
        )

    async def DeleteLinkHistory(
        self, request: lpb.DeleteLinkHistoryRequest, context: Context
    ) -> lpb.DeleteLinkHistoryResponse:
        await self.history.delete(request.auth_id, request.entry_id)
        return lpb.DeleteLinkHistoryResponse()

    async def DeleteLinkHistoryBulk(
        self, request: lpb.DeleteLinkHistoryBulkRequest, context: Context
    ) -> lpb.DeleteLinkHistoryBulkResponse:
        deleted = await self.history.delete_many(request.auth_id, list(request.entry_ids))
        return lpb.DeleteLinkHistoryBulkResponse(deleted=deleted)
