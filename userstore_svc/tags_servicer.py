"""The TagsService gRPC servicer: convert, call one TagService method, convert back."""

from __future__ import annotations

from typing import Any

import grpc
from torbox.automation.v1 import tags_service_pb2 as pb
from torbox.automation.v1 import tags_service_pb2_grpc as pb_grpc

from common.errors import InvalidArgument
from userstore_svc.store.tags import Mapping, Operation, TagRow
from userstore_svc.tags_service import TagService

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TagsService"].full_name
OPERATIONS = {
    pb.TAG_OPERATION_ADD: Operation.ADD,
    pb.TAG_OPERATION_REMOVE: Operation.REMOVE,
    pb.TAG_OPERATION_REPLACE: Operation.REPLACE,
}


def tag_pb(tag: TagRow) -> pb.Tag:
    """A tag row as its message."""
    return pb.Tag(
        id=tag.id,
        name=tag.name,
        created_at=tag.created_at,
        updated_at=tag.updated_at,
        usage_count=tag.usage_count,
    )


def downloads_pb(rows: list[Mapping]) -> list[pb.DownloadTags]:
    """Mappings (ordered by download) grouped into one message per download."""
    grouped: list[pb.DownloadTags] = []
    for row in rows:
        if not grouped or grouped[-1].download_id != row.download_id:
            grouped.append(pb.DownloadTags(download_id=row.download_id))
        grouped[-1].tags.append(pb.TagRef(id=row.tag_id, name=row.tag_name))
    return grouped


class TagsServicer(pb_grpc.TagsServiceServicer):
    """Thin adapter from gRPC to the tag service."""

    def __init__(self, tags: TagService) -> None:
        self.tags = tags

    async def ListTags(self, request: pb.ListTagsRequest, context: Context) -> pb.ListTagsResponse:
        rows = await self.tags.list_tags(request.auth_id)
        return pb.ListTagsResponse(tags=[tag_pb(t) for t in rows])

    async def CreateTag(
        self, request: pb.CreateTagRequest, context: Context
    ) -> pb.CreateTagResponse:
        tag = await self.tags.create_tag(request.auth_id, request.name)
        return pb.CreateTagResponse(tag=tag_pb(tag))

    async def GetTag(self, request: pb.GetTagRequest, context: Context) -> pb.GetTagResponse:
        return pb.GetTagResponse(
            tag=tag_pb(await self.tags.get_tag(request.auth_id, request.tag_id))
        )

    async def UpdateTag(
        self, request: pb.UpdateTagRequest, context: Context
    ) -> pb.UpdateTagResponse:
        tag = await self.tags.rename_tag(request.auth_id, request.tag_id, request.name)
        return pb.UpdateTagResponse(tag=tag_pb(tag))

    async def DeleteTag(
        self, request: pb.DeleteTagRequest, context: Context
    ) -> pb.DeleteTagResponse:
        await self.tags.delete_tag(request.auth_id, request.tag_id)
        return pb.DeleteTagResponse()

    async def ListDownloadTags(
        self, request: pb.ListDownloadTagsRequest, context: Context
    ) -> pb.ListDownloadTagsResponse:
        rows = await self.tags.mappings(request.auth_id)
        return pb.ListDownloadTagsResponse(downloads=downloads_pb(rows))

    async def ChangeDownloadTags(
        self, request: pb.ChangeDownloadTagsRequest, context: Context
    ) -> pb.ChangeDownloadTagsResponse:
        operation = OPERATIONS.get(request.operation)
        if operation is None:
            raise InvalidArgument(
                "operation must be one of: add, remove, replace", field="operation"
            )
        await self.tags.change_mappings(
            request.auth_id, operation, list(request.download_ids), list(request.tag_ids)
        )
        return pb.ChangeDownloadTagsResponse()
