"""One long-lived Ingest stream per userstore shard, with reconnects and answers by poll id.

Snapshots are never queued across a broken stream: a request made while the stream is down, or
in flight when it breaks, fails at once (that poll is simply lost and the poller polls the user
again soon after the reconnect; the userstore ignores a replay, so nothing is ever applied twice).
Outcomes are different: they are kept until a shard acknowledges them and resent after a
reconnect, because they describe actions that really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common import grpc_client, torrent_rows
from common.errors import BY_STATUS, AutomationError, Unavailable, UserNotRegistered

if TYPE_CHECKING:
    from torbox.automation.v1.userstore_service_pb2_grpc import (
        UserstoreServiceAsyncStub as UserstoreAsyncStub,
    )

log = logging.getLogger(__name__)

OUTCOMES_PREFIX = "outcomes:"
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


class IngestStream:
    """The stream to one shard: send a request, await the answer that carries its poll id."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc_client.channel(address)
        self._stub: UserstoreAsyncStub = pb_grpc.UserstoreServiceStub(self._channel)
        self._outbox: asyncio.Queue[pb.IngestRequest] | None = None
        self._waiting: dict[str, asyncio.Future[pb.IngestResponse]] = {}
        self._unacked: dict[str, pb.IngestRequest] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outcome_batches = itertools.count(1)
        self._on_connect: list[Callable[[], None]] = []
        self.reconnects = 0
        # Whether the shard on the other end reads Snapshot.torrent_rows: learnt from its plans
        # and forgotten on every reconnect (the shard may have been replaced by an older one).
        self.reads_rows = False

    @property
    def connected(self) -> bool:
        """Whether the stream is up right now (a snapshot sent now can be answered)."""
        return self._connected.is_set()

    @property
    def unacknowledged(self) -> int:
        """Outcome batches sent (or waiting to be) that the shard has not acknowledged yet."""
        return len(self._unacked)

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Call `callback` every time the stream (re)connects."""
        self._on_connect.append(callback)

    @property
    def stub(self) -> UserstoreAsyncStub:
        """A unary stub on the same channel (registry sync, key registration)."""
        return self._stub

    def start(self) -> None:
        """Begin connecting (in the background; reconnects forever until :meth:`close`)."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the stream and the channel."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all("shutting down")
        await self._channel.close()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until the stream is up (True) or the timeout passes (False)."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def items(self, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """A snapshot's items in the form this shard reads, as the Snapshot's fields.

        Rows once its plans have said it reads them; messages until then: an older shard (in a
        rolling update) would read a snapshot of rows as a complete list of no items.
        """
        if self.reads_rows:
            return {"torrent_rows": torrent_rows.encode(rows)}
        return {"torrents": [torrent_rows.message_fields(row) for row in rows]}

    async def send_snapshot(self, snapshot: pb.Snapshot) -> pb.Plan:
        """Apply a snapshot on the shard and return its plan (Unavailable if the stream is down)."""
        return await self.send_request(pb.IngestRequest(snapshot=snapshot))

    async def send_request(self, request: pb.IngestRequest) -> pb.Plan:
        """:meth:`send_snapshot` for a request built around its snapshot (no copy of it made)."""
        response = await self._request(request.snapshot.poll_id, request)
        if response.WhichOneof("kind") != "plan":
            raise Unavailable("unexpected answer to a snapshot", code="BAD_ANSWER")
        return response.plan

    async def send_outcomes(
        self, poll_id: str, auth_id: str, outcomes: Sequence[tpb.ActionOutcome]
    ) -> bool:
        """Deliver outcomes; if the shard is unreachable they are kept and resent on reconnect.

        Each batch travels under its own key, ``outcomes:<poll id>:<n>``, so several batches of
        one poll (outcomes are streamed as actions finish) never share an acknowledgement.
        """
        key = f"{OUTCOMES_PREFIX}{poll_id}:{next(self._outcome_batches)}"
        request = pb.IngestRequest(
            outcomes=pb.ActionOutcomes(poll_id=key, auth_id=auth_id, outcomes=list(outcomes))
        )
        # Kept exactly as sent, so a resent batch is acknowledged under the same key.
        self._unacked[key] = request
        try:
            await self._request(key, request)
        except Unavailable:
            log.warning("outcomes not acknowledged yet; will resend", extra={"shard": self.address})
            return False
        except AutomationError as error:
            # The shard refused them for good (the user was removed, say): resending won't help.
            self._unacked.pop(key, None)
            log.warning("outcomes refused", extra={"shard": self.address, "code": error.code})
            return False
        self._unacked.pop(key, None)
        return True

    async def _request(self, key: str, request: pb.IngestRequest) -> pb.IngestResponse:
        outbox = self._outbox
        if outbox is None or not self._connected.is_set():
            raise Unavailable(
                f"userstore {self.address} is not connected", code="SHARD_UNAVAILABLE"
            )
        future: asyncio.Future[pb.IngestResponse] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            outbox.put_nowait(request)
            # wait_for, not asyncio.timeout: an answer that arrives in the same turn of the loop
            # as the deadline is still taken (3.11's wait_for checks the future once more), where
            # a cancelled task would drop it.
            response = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise Unavailable(
                f"userstore {self.address} did not answer in time", code="TIMEOUT"
            ) from None
        finally:
            self._waiting.pop(key, None)
        if response.WhichOneof("kind") == "error":
            error = response.error
            raise _error_from_code(error.code, error.message)
        return response

    def _fail_all(self, reason: str) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(
                    Unavailable(f"userstore stream lost: {reason}", code="SHARD_UNAVAILABLE")
                )
        self._waiting.clear()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            outbox: asyncio.Queue[pb.IngestRequest] = asyncio.Queue()
            for request in self._unacked.values():
                outbox.put_nowait(request)
            call = self._stub.Ingest(_drain(outbox))
            self._outbox = outbox
            self.reads_rows = False
            try:
                await asyncio.wait_for(call.wait_for_connection(), 5.0)
                self._connected.set()
                if self.reconnects:
                    log.info("ingest stream reconnected", extra={"shard": self.address})
                for callback in self._on_connect:
                    try:
                        callback()
                    except Exception:
                        log.exception("on-connect callback failed")
                backoff = 0.1
                async for response in call:
                    self._deliver(response)
                reason = "stream ended"
            except (grpc.aio.AioRpcError, TimeoutError) as error:
                reason = error.code().name if isinstance(error, grpc.aio.AioRpcError) else "timeout"
            finally:
                self._connected.clear()
                self._outbox = None
                call.cancel()
            self._fail_all(reason)
            self.reconnects += 1
            log.warning(
                "ingest stream down; reconnecting", extra={"shard": self.address, "reason": reason}
            )
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 2.0)

    def _deliver(self, response: pb.IngestResponse) -> None:
        kind = response.WhichOneof("kind")
        if kind == "plan":
            key = response.plan.poll_id
            if response.plan.reads_torrent_rows:
                self.reads_rows = True
        elif kind == "outcomes_recorded":
            key = response.outcomes_recorded.poll_id  # "outcomes:<poll id>:<n>"
            self._unacked.pop(key, None)
        elif kind == "error":
            key = response.error.poll_id
            if key.startswith(OUTCOMES_PREFIX) and response.error.code != _UNAVAILABLE:
                # A resent batch nobody awaits any more: a refusal is final, drop it.
                self._unacked.pop(key, None)
        else:
            return
        future = self._waiting.get(key)
        if future is not None and not future.done():
            future.set_result(response)


async def _drain(outbox: asyncio.Queue[pb.IngestRequest]) -> AsyncIterator[pb.IngestRequest]:
    while True:
        yield await outbox.get()


def _error_from_code(code: int, message: str) -> AutomationError:
    status = next((s for s in grpc.StatusCode if s.value[0] == code), grpc.StatusCode.UNKNOWN)
    if status == grpc.StatusCode.NOT_FOUND and message == "User not registered":
        return UserNotRegistered()
    return BY_STATUS.get(status.name, AutomationError)(message)
