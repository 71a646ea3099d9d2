"""The gateway's gRPC clients: a stub per userstore shard and per scheduler replica, by auth id."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, TypedDict

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
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


# The services' own names: their gRPC health status is their readiness.
USERSTORE_SERVICE = "torbox.automation.v1.UserstoreService"
SCHEDULER_SERVICE = "torbox.automation.v1.SchedulerService"
READY_TIMEOUT = 2.0


# A call made while its service starts (or restarts) waits for the connection this long at most,
# and never more than half its deadline, then fails fast (503) as before.
CONNECT_WAIT_SECONDS = 5.0


class _WaitForConnection(
    grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor
):
    """Waits briefly for a channel that is not connected yet, instead of failing at once.

    gRPC's own wait_for_ready would wait out the whole deadline for a service that is down
    (a 504 after 4 s instead of a 503 at once); this bounds the wait and keeps the 503.
    """

    def __init__(self) -> None:
        self.channel: grpc.aio.Channel | None = None

    async def _connected(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        channel = self.channel
        ready = grpc.ChannelConnectivity.READY
        if channel is None or channel.get_state(try_to_connect=True) is ready:
            return details
        budget = CONNECT_WAIT_SECONDS
        if details.timeout is not None:
            budget = min(budget, details.timeout / 2)
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(channel.channel_ready(), budget)
        if details.timeout is None:
            return details
        # The wait counts against the call's deadline.
        left = max(0.001, details.timeout - (time.monotonic() - started))
        return details._replace(timeout=left)  # type: ignore[attr-defined,no-any-return]

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(await self._connected(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(await self._connected(details), request)


def _channel(address: str) -> grpc.aio.Channel:
    waiter = _WaitForConnection()
    channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=[waiter])
    waiter.channel = channel
    return channel


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
        # (what it is, its health stub, the service name whose SERVING means ready)
        self._health: list[tuple[str, health_pb2_grpc.HealthStub, str]] = []
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
            self._health.append(
                (f"userstore {address}", health_pb2_grpc.HealthStub(channel), USERSTORE_SERVICE)
            )
            self.tag_shards.append(tags_grpc.TagsServiceStub(channel))
            self.view_shards.append(views_grpc.ViewsServiceStub(channel))
            self.link_history_shards.append(link_history_grpc.LinkHistoryServiceStub(channel))
            self.upload_shards.append(uploads_grpc.UploadsServiceStub(channel))
        self.schedulers: list[SchedulerStub] = []
        for address in scheduler_addrs:
            channel = _channel(address)
            self._channels.append(channel)
            self.schedulers.append(scheduler_grpc.SchedulerServiceStub(channel))
            self._health.append(
                (f"scheduler {address}", health_pb2_grpc.HealthStub(channel), SCHEDULER_SERVICE)
            )

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

    async def not_ready(self) -> list[str]:
        """The services that do not report themselves ready (empty: the whole path works)."""

        async def check(stub: health_pb2_grpc.HealthStub, service: str) -> bool:
            try:
                reply = await stub.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=READY_TIMEOUT
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        answers = await asyncio.gather(*(check(stub, name) for _, stub, name in self._health))
        return [what for (what, _, _), ok in zip(self._health, answers, strict=True) if not ok]

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels:
            await channel.close()
