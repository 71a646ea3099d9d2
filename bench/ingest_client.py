"""A client of a userstore's Ingest stream that sends pre-encoded requests and awaits each plan.

Requests go out as bytes (encoded before the clock starts), so the client's own protobuf work is
not charged to the userstore; answers are matched to requests by poll id, as the scheduler does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import grpc_client

INGEST_METHOD = "/torbox.automation.v1.UserstoreService/Ingest"


class IngestClient:
    """One long-lived Ingest stream; :meth:`send` returns the answer to one request."""

    def __init__(self, address: str) -> None:
        self.channel = grpc_client.channel(address)
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[pb.IngestResponse]] = {}
        method: grpc.aio.StreamStreamMultiCallable[bytes, pb.IngestResponse]
        method = self.channel.stream_stream(
            INGEST_METHOD,
            request_serializer=None,  # the requests are already bytes
            response_deserializer=pb.IngestResponse.FromString,
        )
        self._call = method(self._requests())
        self._reader = asyncio.create_task(self._read())

    async def _requests(self) -> AsyncIterator[bytes]:
        while (item := await self._outbox.get()) is not None:
            yield item

    async def _read(self) -> None:
        try:
            async for response in self._call:
                kind = response.WhichOneof("kind")
                if kind == "plan":
                    key = response.plan.poll_id
                elif kind == "error":
                    key = response.error.poll_id
                else:
                    continue
                future = self._waiting.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(response)
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(RuntimeError("the ingest stream ended"))
            self._waiting.clear()

    async def send(self, poll_id: str, request: bytes) -> pb.IngestResponse:
        """Send one encoded IngestRequest and wait for the answer carrying its poll id."""
        if self._reader.done():
            raise RuntimeError("the ingest stream ended")
        future: asyncio.Future[pb.IngestResponse] = asyncio.get_running_loop().create_future()
        self._waiting[poll_id] = future
        self._outbox.put_nowait(request)
        return await future

    async def close(self) -> None:
        """Finish the stream and close the channel."""
        self._outbox.put_nowait(None)
        with contextlib.suppress(asyncio.TimeoutError, grpc.aio.AioRpcError):
            await asyncio.wait_for(self._reader, 10.0)
        self._reader.cancel()
        await self.channel.close()
