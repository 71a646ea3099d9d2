"""The gateway's gRPC clients: a stub per userstore shard and per scheduler replica, by auth id."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import grpc
from torbox.automation.v1 import link_history_service_pb2_grpc as link_history_grpc
from torbox.automation.v1 import scheduler_service_pb2_grpc as scheduler_grpc
from torbox.automation.v1 import tags_service_pb2_grpc as tags_grpc
from torbox.automation.v1 import uploads_service_pb2_grpc as uploads_grpc
from torbox.automation.v1 import userstore_service_pb2_grpc as userstore_grpc
from torbox.automation.v1 import views_service_pb2_grpc as views_grpc

from common import grpc_client
from common.routing import owner_index

if TYPE_CHECKING:
    from torbox.automation.v1.link_history_service_pb2_grpc import (
        LinkHistoryServiceAsyncStub as LinkHistoryStub,
    )
    from torbox.automation.v1.scheduler_service_pb2_grpc import (
        SchedulerServiceAsyncStub as SchedulerStub,
    )
    from torbox.automation.v1.tags_service_pb2_grpc import TagsServiceAsyncStub as TagsStub
    from torbox.automation.v1.uploads_service_pb2_grpc import (
        UploadsServiceAsyncStub as UploadsStub,
    )
    from torbox.automation.v1.userstore_service_pb2_grpc import (
        UserstoreServiceAsyncStub as UserstoreStub,
    )
    from torbox.automation.v1.views_service_pb2_grpc import ViewsServiceAsyncStub as ViewsStub


# A service's error message may quote the offending input (up to the 1 MiB body): accept such
# trailers instead of failing the call with RESOURCE_EXHAUSTED (gRPC's default limit is 16 KiB).
MAX_METADATA_BYTES = 8 * 1024 * 1024
CHANNEL_OPTIONS = (
    *grpc_client.CHANNEL_OPTIONS,
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
)


def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


class CallOptions(TypedDict):
    """Keyword arguments every stub call gets."""

    timeout: float
    metadata: tuple[tuple[str, str], ...]


class Backends:
    """Channels to every shard and scheduler replica, opened once per gateway process."""

    def __init__(
        self, userstore_addrs: tuple[str, ...], scheduler_addrs: tuple[str, ...], timeout: float
    ) -> None:
        self.timeout = timeout
        self._channels: list[grpc.aio.Channel] = []
        self.shards: list[UserstoreStub] = []
        # Each shard also serves TBM's tags, custom views and link history, over the same channel.
        self.tag_shards: list[TagsStub] = []
        self.view_shards: list[ViewsStub] = []
        self.link_history_shards: list[LinkHistoryStub] = []
        self.upload_shards: list[UploadsStub] = []
        for address in userstore_addrs:
            channel = _channel(address)
            self._channels.append(channel)
            self.shards.append(userstore_grpc.UserstoreServiceStub(channel))
            self.tag_shards.append(tags_grpc.TagsServiceStub(channel))
            self.view_shards.append(views_grpc.ViewsServiceStub(channel))
            self.link_history_shards.append(link_history_grpc.LinkHistoryServiceStub(channel))
            self.upload_shards.append(uploads_grpc.UploadsServiceStub(channel))
        self.schedulers: list[SchedulerStub] = []
        for address in scheduler_addrs:
            channel = _channel(address)
            self._channels.append(channel)
            self.schedulers.append(scheduler_grpc.SchedulerServiceStub(channel))

    def userstore(self, auth_id: str) -> UserstoreStub:
        """The stub of the shard that holds this user (the same routing as the scheduler's)."""
        return self.shards[owner_index(auth_id, len(self.shards))]

    def views(self, auth_id: str) -> ViewsStub:
        """The custom views of this user's shard (routed as :meth:`userstore`)."""
        return self.view_shards[owner_index(auth_id, len(self.view_shards))]

    def link_history(self, auth_id: str) -> LinkHistoryStub:
        """The link history of this user's shard (routed as :meth:`userstore`)."""
        return self.link_history_shards[owner_index(auth_id, len(self.link_history_shards))]

    def uploads(self, auth_id: str) -> UploadsStub:
        """The upload queue of this user's shard (routed as :meth:`userstore`)."""
        return self.upload_shards[owner_index(auth_id, len(self.upload_shards))]

    def tags(self, auth_id: str) -> TagsStub:
        """The tags stub of the shard that holds this user (routed as :meth:`userstore`)."""
        return self.tag_shards[owner_index(auth_id, len(self.tag_shards))]

    def scheduler(self, auth_id: str) -> SchedulerStub:
        """The replica that polls this user (the scheduler's own routing).

        A manual run or a restore then happens under that user's poll lock.
        """
        return self.schedulers[owner_index(auth_id, len(self.schedulers))]

    def opts(self, timeout: float | None = None) -> CallOptions:
        """Deadline and request-id metadata for one call (every call has a deadline)."""
        return {"timeout": timeout or self.timeout, "metadata": grpc_client.metadata()}

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels:
            await channel.close()
