"""The scheduler's composition root: HTTP session, TorBox client, streams, poller, gRPC server."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import aiohttp
from torbox.automation.v1 import scheduler_service_pb2 as pb
from torbox.automation.v1 import scheduler_service_pb2_grpc as pb_grpc

from common.grpc_server import GrpcServer
from scheduler_svc.accounts import Accounts
from scheduler_svc.config import SchedulerSettings
from scheduler_svc.directory import Directory
from scheduler_svc.executor import ActionExecutor
from scheduler_svc.health import OutageBreaker
from scheduler_svc.keys import KeyBox, load_or_create_key
from scheduler_svc.polling import Poller
from scheduler_svc.servicer import SchedulerServicer
from scheduler_svc.streams import IngestStream
from scheduler_svc.torbox.client import ClientConfig, TorBoxClient
from scheduler_svc.uploads.worker import UploadWorker

log = logging.getLogger(__name__)

# How long a starting scheduler waits on a shard's stream between checks.
READY_CHECK_SECONDS = 30.0
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SchedulerService"].full_name
# The cyclic GC's thresholds. With the default first one (700 container allocations) it ran
# several times while one 1,000-torrent list was parsed: each pass scanned the half-built lists,
# promoted them, and full passes scanned them again (about a tenth of such a poll's CPU). A
# poll's objects are freed by reference counting; the scheduler makes few cycles.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Collect rarely, and leave what exists now (the imported modules) out of every pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class SchedulerApp:
    """A running scheduler."""

    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings
        self.server = GrpcServer([SERVICE_NAME])
        self.session: aiohttp.ClientSession | None = None
        self.streams: list[IngestStream] = []
        self.poller: Poller | None = None
        self._ready_task: asyncio.Task[None] | None = None
        self.uploads: UploadWorker | None = None

    async def start(self) -> int:
        """Connect everything, start polling and serving; returns the bound port."""
        s = self.settings
        keybox = KeyBox(
            load_or_create_key(s.encryption_key, s.encryption_key_file, s.legacy_key_file)
        )
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=s.torbox_max_concurrency, ttl_dns_cache=300),
            raise_for_status=False,
        )
        client = TorBoxClient(
            self.session,
            ClientConfig(
                base_url=s.torbox_api_base,
                api_version=s.torbox_api_version,
                timeout_seconds=s.torbox_timeout_seconds,
                max_concurrency=s.torbox_max_concurrency,
                per_key_per_minute=s.torbox_rate_per_minute,
                global_per_second=s.torbox_global_rate_per_second,
                rate_limit_fallback_seconds=s.rate_limit_fallback_seconds,
            ),
        )
        self.streams = [IngestStream(a, s.userstore_timeout_seconds) for a in s.userstore_addrs]
        for stream in self.streams:
            stream.start()
        directory = Directory(
            self.streams,
            keybox,
            replica_index=s.scheduler_index,
            replicas=s.scheduler_replicas,
            timeout=s.userstore_timeout_seconds,
        )
        breaker = OutageBreaker(
            min_polls=s.breaker_min_polls,
            failure_ratio=s.breaker_failure_ratio,
            probe_seconds=s.breaker_probe_seconds,
        )
        executor = ActionExecutor(client, concurrency=s.action_concurrency, dry_run=s.dry_run)
        self.poller = Poller(s, client, directory, executor, breaker)
        # The upload queue's worker: same client (rate limits), directory (keys) and shards.
        self.uploads = UploadWorker(s, client, directory)
        accounts = Accounts(
            client, directory, self.poller, s.userstore_timeout_seconds, self.uploads.stubs
        )
        servicer = SchedulerServicer(
            accounts,
            self.poller,
            executor,
            breaker,
            replica_index=s.scheduler_index,
            replicas=s.scheduler_replicas,
            dry_run=s.dry_run,
        )
        pb_grpc.add_SchedulerServiceServicer_to_server(servicer, self.server.server)
        port = await self.server.start(f"{s.bind_host}:{s.port}")
        await self.poller.start()
        self.uploads.start()
        # Ready (the named service) only once every shard's stream is up: before that, ensure-db
        # and manual runs would fail with 503 although the process answers.
        await self.server.set_serving(ready=False)
        self._ready_task = asyncio.create_task(self._ready_when_connected())
        log.info(
            "scheduler serving",
            extra={"port": port, "replica": s.scheduler_index, "replicas": s.scheduler_replicas},
        )
        return port

    async def _ready_when_connected(self) -> None:
        for stream in self.streams:
            while not await stream.wait_connected(READY_CHECK_SECONDS):
                continue
        await self.server.set_ready(True)
        log.info("scheduler ready: every userstore shard connected")

    async def stop(self) -> None:
        """NOT_SERVING, stop scheduling, let in-flight calls finish, close connections."""
        grace = self.settings.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        await self.server.health.enter_graceful_shutdown()
        if self._ready_task is not None:
            self._ready_task.cancel()
        if self.uploads is not None:
            await self.uploads.stop(max(0.0, deadline - time.monotonic()))
        if self.poller is not None:
            await self.poller.stop(grace)
        await self.server.stop(max(0.0, deadline - time.monotonic()))
        for stream in self.streams:
            await stream.close()
        if self.session is not None:
            await self.session.close()
        log.info("scheduler stopped")
