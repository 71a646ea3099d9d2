"""The upload queue's worker: ask each shard who is due, claim, send to TorBox, report.

Each user is served by one task at a time: it claims a bounded batch (fair by type, FIFO by
queue_order within a type), sends each type's rows in order through the client's rate limiter,
and reports every outcome before the user can be claimed again. A report the shard cannot take
is retried until it lands (the outcome is never guessed again); a worker that dies leaves its
claims to the next boot of its replica, which resends them: TorBox's "already exists" then
completes them, so an accepted upload is neither lost nor added twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from torbox.automation.v1 import uploads_service_pb2 as pb
from torbox.automation.v1 import uploads_service_pb2_grpc as pb_grpc

from common import grpc_client
from scheduler_svc.config import SchedulerSettings
from scheduler_svc.directory import ACTIVE, Directory
from scheduler_svc.keys import KeyDecryptError, secret_context
from scheduler_svc.torbox.client import TorBoxClient
from scheduler_svc.torbox.errors import TorBoxRateLimited, TorBoxUnavailable
from scheduler_svc.uploads import policy
from scheduler_svc.uploads.policy import Decision

log = logging.getLogger(__name__)
MAX_DUE = 2000
REPORT_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
PERMANENT = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND})


@dataclass(slots=True)
class WorkerStats:
    """Counts since start, for status and the bench."""

    sent: int = 0
    completed: int = 0
    failed: int = 0
    deferred: int = 0


class UploadWorker:
    """Serves due users fairly; one task per user at a time, at most `upload_user_concurrency`."""

    def __init__(
        self,
        settings: SchedulerSettings,
        client: TorBoxClient,
        directory: Directory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self.clock = clock
        # "<replica>:<boot>": the shard treats this replica's claims by another boot as dead.
        self.worker = f"{settings.scheduler_index}:{secrets.token_hex(6)}"
        self._channels = [grpc_client.channel(a) for a in settings.userstore_addrs]
        self.stubs = [pb_grpc.UploadsServiceStub(c) for c in self._channels]
        self.stats = WorkerStats()
        self._strikes: dict[tuple[str, str], int] = {}
        self._served = 0
        self._last_served: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin serving (a no-op when UPLOAD_POLL_SECONDS is 0)."""
        if self.settings.upload_poll_seconds > 0:
            self._loop_task = asyncio.create_task(self._loop())

    async def stop(self, grace: float) -> None:
        """Stop claiming; let batches in flight finish within `grace`, then cancel them."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace)
        for task in list(self._tasks.values()):
            task.cancel()
        for channel in self._channels:
            await channel.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("upload worker tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.upload_poll_seconds)

    async def tick(self) -> int:
        """Start a task for each due user this replica serves, as slots allow; returns how many."""
        started = 0
        for index, stub in enumerate(self.stubs):
            slots = self.settings.upload_user_concurrency - len(self._tasks)
            if slots <= 0:
                break
            try:
                due = await stub.DueUploads(
                    pb.DueUploadsRequest(limit=MAX_DUE),
                    timeout=self.settings.userstore_timeout_seconds,
                    metadata=grpc_client.metadata(),
                )
            except grpc.aio.AioRpcError:
                continue  # the shard is down: its users wait, nothing is lost
            eligible = {
                a for a, e in self.directory.users.items()
                if e.status == ACTIVE and self.directory.shard_index(a) == index
            }  # fmt: skip
            chosen = policy.plan(
                [(u.auth_id, u.due_at) for u in due.users],
                eligible,
                set(self._tasks),
                self._last_served,
                slots,
            )
            for auth_id in chosen:
                self._served += 1
                self._last_served[auth_id] = self._served
                self._tasks[auth_id] = asyncio.create_task(self._serve(index, auth_id))
                started += 1
        return started

    async def _serve(self, shard: int, auth_id: str) -> None:
        try:
            await self._batch(shard, auth_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("upload batch failed", extra={"auth_id": auth_id[:12]})
        finally:
            self._tasks.pop(auth_id, None)
            self._wake.set()  # a slot is free: look again now, not after a whole interval

    async def _batch(self, shard: int, auth_id: str) -> None:
        stub = self.stubs[shard]
        try:
            claimed = await stub.ClaimUploads(
                pb.ClaimUploadsRequest(
                    auth_id=auth_id,
                    worker=self.worker,
                    limit=self.settings.upload_batch,
                    lease_seconds=self.settings.upload_lease_seconds,
                ),
                timeout=self.settings.userstore_timeout_seconds,
                metadata=grpc_client.metadata(),
            )
        except grpc.aio.AioRpcError:
            return
        by_type: dict[str, list[pb.ClaimedUpload]] = {}
        for item in claimed.uploads:
            by_type.setdefault(item.upload.type, []).append(item)
        await asyncio.gather(*(self._type_run(stub, auth_id, items) for items in by_type.values()))

    async def _type_run(
        self, stub: pb_grpc.UploadsServiceAsyncStub, auth_id: str, items: list[pb.ClaimedUpload]
    ) -> None:
        """One type's rows in queue order; a deferral releases the rest unsent."""
        stop: Decision | None = None
        for item in items:
            if stop is not None:
                released = Decision(
                    "queued",
                    error_message=stop.defer_type_message,
                    next_attempt_at=stop.defer_type_until,
                )
                await self._report(stub, auth_id, item, released)
                continue
            decision = await self._send(auth_id, item)
            await self._report(stub, auth_id, item, decision)
            if decision.stop_type:
                stop = decision

    async def _send(self, auth_id: str, item: pb.ClaimedUpload) -> Decision:
        upload = item.upload
        kind = upload.type
        strikes = self._strikes.get((auth_id, kind), 0)
        entry = self.directory.users.get(auth_id)
        if entry is None:
            return policy.connection_failure(strikes, self.clock())
        password = None
        if item.password_ciphertext:
            try:
                password = self.directory.keybox.decrypt(
                    item.password_ciphertext, secret_context(auth_id)
                )
            except KeyDecryptError:
                return Decision(
                    "failed",
                    error_message="The password could not be read: add the link again",
                    retry_increment=True,
                )
        fields = policy.form_fields(
            kind,
            upload.upload_type,
            upload.url if upload.HasField("url") else None,
            upload.name,
            (
                upload.seed if upload.HasField("seed") else None,
                upload.allow_zip,
                upload.as_queued,
                upload.add_only_if_cached,
            ),
            password,
        )
        file = (upload.name, item.file_data) if upload.upload_type == "file" else None
        row = policy.Row(
            kind,
            upload.upload_type,
            upload.url if upload.HasField("url") else None,
            upload.retry_count,
            item.unconfirmed,
        )
        self.stats.sent += 1
        try:
            reply = await self.client.create_upload(
                auth_id,
                self.directory.api_key(entry),
                policy.ENDPOINTS[kind],
                fields,
                file,
            )
        except TorBoxRateLimited as limited:
            # Our own limiter (or a poll's 429 on this key) holds the key: wait it out.
            decision = policy.rate_limited({}, self.clock(), limited.retry_at - self.clock())
        except (TorBoxUnavailable, KeyDecryptError):
            decision = policy.connection_failure(strikes, self.clock())
        else:
            decision = policy.decide(
                row,
                reply.status,
                reply.body,
                reply.headers,
                self.clock(),
                strikes,
                self.settings.upload_rate_limit_fallback_seconds,
            )
        self._count(auth_id, kind, decision)
        return decision

    def _count(self, auth_id: str, kind: str, decision: Decision) -> None:
        key = (auth_id, kind)
        if decision.strike:
            self._strikes[key] = self._strikes.get(key, 0) + 1
        elif decision.status == "completed":
            self._strikes.pop(key, None)
        if decision.status == "completed":
            self.stats.completed += 1
        elif decision.status == "failed":
            self.stats.failed += 1
        else:
            self.stats.deferred += 1

    async def _report(
        self,
        stub: pb_grpc.UploadsServiceAsyncStub,
        auth_id: str,
        item: pb.ClaimedUpload,
        decision: Decision,
    ) -> None:
        """Deliver an outcome until the shard has it (it is never decided twice)."""
        request = pb.ReportUploadRequest(
            auth_id=auth_id, upload_id=item.upload.id, claim=item.claim, outcome=outcome(decision)
        )
        attempt = 0
        while True:
            try:
                await stub.ReportUpload(
                    request,
                    timeout=self.settings.userstore_timeout_seconds,
                    metadata=grpc_client.metadata(),
                )
                return
            except grpc.aio.AioRpcError as error:
                if error.code() in PERMANENT:
                    log.warning("upload report refused", extra={"code": error.code().name})
                    return
            await asyncio.sleep(REPORT_BACKOFF[min(attempt, len(REPORT_BACKOFF) - 1)])
            attempt += 1


def outcome(decision: Decision) -> pb.UploadOutcome:
    """A decision as the shard's message."""
    message = pb.UploadOutcome(
        status=decision.status,
        log_attempt=decision.log_attempt,
        cached=decision.cached,
        retry_increment=decision.retry_increment,
        defer_type_message=decision.defer_type_message,
        status_code=decision.status_code,
        error_code=decision.error_code,
    )
    optional = {
        "error_message": decision.error_message,
        "next_attempt_at": decision.next_attempt_at,
        "torbox_hash": decision.torbox_hash,
        "torbox_id": decision.torbox_id,
        "torbox_auth_id": decision.torbox_auth_id,
        "defer_type_until": decision.defer_type_until,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(message, name, value)
    return message
