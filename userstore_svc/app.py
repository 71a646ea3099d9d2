"""The userstore's composition root: storage, services, the gRPC server and background upkeep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from torbox.automation.v1 import link_history_service_pb2_grpc as lpb_grpc
from torbox.automation.v1 import tags_service_pb2_grpc as tags_grpc
from torbox.automation.v1 import uploads_service_pb2_grpc as upb_grpc
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc
from torbox.automation.v1 import views_service_pb2_grpc as vpb_grpc

from common.files import private_dir
from common.grpc_server import GrpcServer
from userstore_svc.config import UserstoreSettings
from userstore_svc.core.models import PipelineConfig
from userstore_svc.core.rules.plan import SafetyConfig
from userstore_svc.downloads_service import DownloadService
from userstore_svc.hub import EventHub
from userstore_svc.ingest import IngestConfig, Ingestor
from userstore_svc.link_history_service import LinkHistoryService
from userstore_svc.maintenance import maintain_all
from userstore_svc.moves import MoveService
from userstore_svc.rules_service import RuleService
from userstore_svc.servicer import UserstoreServicer
from userstore_svc.store.pool import DatabasePool, fit_open_files
from userstore_svc.store.registry import Registry
from userstore_svc.tags_service import TagService
from userstore_svc.tags_servicer import SERVICE_NAME as TAGS_SERVICE_NAME
from userstore_svc.tags_servicer import TagsServicer
from userstore_svc.torrents_service import TorrentService
from userstore_svc.uploads_service import UploadService
from userstore_svc.uploads_servicer import SERVICE_NAME as UPLOADS_SERVICE_NAME
from userstore_svc.uploads_servicer import UploadsServicer
from userstore_svc.users_service import UserService
from userstore_svc.views_service import ViewService
from userstore_svc.views_servicer import (
    LINK_HISTORY_SERVICE_NAME,
    VIEWS_SERVICE_NAME,
    LinkHistoryServicer,
    ViewsServicer,
)

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["UserstoreService"].full_name
COUNTER_FLUSH_SECONDS = 5.0


def ingest_config(settings: UserstoreSettings) -> IngestConfig:
    """The pipeline and safety settings the ingestor applies."""
    return IngestConfig(
        pipeline=PipelineConfig(
            stall_after_seconds=settings.stall_after_minutes * 60.0,
            ratio_event_threshold=settings.ratio_event_threshold,
        ),
        safety=SafetyConfig(
            global_dry_run=settings.dry_run,
            max_destructive_per_poll=settings.max_destructive_per_poll,
        ),
    )


class UserstoreApp:
    """A running userstore: registry, pool, services, gRPC server and background upkeep."""

    def __init__(self, settings: UserstoreSettings) -> None:
        self.settings = settings
        self.server = GrpcServer(
            [
                SERVICE_NAME,
                TAGS_SERVICE_NAME,
                VIEWS_SERVICE_NAME,
                LINK_HISTORY_SERVICE_NAME,
                UPLOADS_SERVICE_NAME,
            ]
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._readiness: set[asyncio.Task[None]] = set()
        self.registry: Registry | None = None
        self.pool: DatabasePool | None = None
        self.servicer: UserstoreServicer | None = None

    async def start(self) -> int:
        """Open storage, start serving, report healthy; returns the bound port."""
        s = self.settings
        private_dir(s.user_db_dir)
        self.registry = await Registry.open(s.master_db_path)
        max_open = fit_open_files(s.max_open_dbs)
        if max_open < s.max_open_dbs:
            log.warning(
                "the open-files limit allows fewer open user databases than MAX_OPEN_DBS",
                extra={"max_open_dbs": s.max_open_dbs, "allowed": max_open},
            )
        self.pool = DatabasePool(s.user_db_dir, max_open, max_cached=s.max_cached_users)
        # A disk that refuses writes makes the shard unready (polls are refused, nothing is
        # recorded) until a write succeeds again; the process stays alive.
        self.pool.storage.changed = self._storage_changed
        self.server.translate(self.pool.storage.translate)
        clock = time.time
        hub = EventHub()
        self.servicer = UserstoreServicer(
            registry=self.registry,
            pool=self.pool,
            users=UserService(self.pool, self.registry, clock),
            ingestor=Ingestor(self.pool, self.registry, hub, ingest_config(s)),
            rules=RuleService(self.pool, self.registry, clock),
            torrents=TorrentService(self.pool, self.registry),
            downloads=DownloadService(self.pool, self.registry, clock, hub),
            moves=MoveService(self.pool, self.registry, clock),
            hub=hub,
            started_at=clock(),
            clock=clock,
        )
        pb_grpc.add_UserstoreServiceServicer_to_server(self.servicer, self.server.server)
        # TBM's tags: their own service, beside the userstore's, over the same pool and hub.
        tags_grpc.add_TagsServiceServicer_to_server(
            TagsServicer(TagService(self.pool, self.registry, clock, hub)), self.server.server
        )
        # TBM's custom views and link history: likewise, over the same pool.
        vpb_grpc.add_ViewsServiceServicer_to_server(
            ViewsServicer(ViewService(self.pool, self.registry, clock)), self.server.server
        )
        lpb_grpc.add_LinkHistoryServiceServicer_to_server(
            LinkHistoryServicer(LinkHistoryService(self.pool, self.registry, clock)),
            self.server.server,
        )
        # TBM's upload queue: rows and staged files in each user's database.
        upb_grpc.add_UploadsServiceServicer_to_server(
            UploadsServicer(UploadService(self.pool, self.registry, clock)), self.server.server
        )
        port = await self.server.start(f"{s.bind_host}:{s.port}")
        self._tasks = [
            asyncio.create_task(self._flush_counters()),
            asyncio.create_task(self._maintenance()),
        ]
        await self.server.set_serving()
        log.info(
            "userstore serving",
            extra={
                "port": port,
                "max_open_dbs": self.pool.max_open,
                "max_cached_users": self.pool.max_cached,
            },
        )
        return port

    def _storage_changed(self, ok: bool) -> None:
        task = asyncio.create_task(self.server.set_ready(ok))
        self._readiness.add(task)
        task.add_done_callback(self._readiness.discard)

    async def _flush_counters(self) -> None:
        assert self.registry is not None
        while True:
            await asyncio.sleep(COUNTER_FLUSH_SECONDS)
            try:
                await self.registry.flush_counters()
            except Exception:
                log.exception("flushing registry counters failed")

    async def _maintenance(self) -> None:
        assert self.registry is not None
        assert self.pool is not None
        while True:
            await asyncio.sleep(self.settings.maintenance_interval_seconds)
            report = await maintain_all(self.pool, self.registry)
            log.info(
                "maintenance pass done",
                extra={"checked": report.checked, "damaged": len(report.damaged)},
            )

    async def stop(self) -> None:
        """Drain: NOT_SERVING, finish in-flight snapshots, stop the server, close storage."""
        grace = self.settings.shutdown_grace_seconds
        await self.server.health.enter_graceful_shutdown()
        if self.servicer is not None:
            await self.servicer.drain(timeout=grace)
        await self.server.stop(grace)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.servicer is not None:
            # Drained: no heavy poll is under way, so this returns at once.
            self.servicer.ingestor.close()
        if self.pool is not None:
            await self.pool.close()
        if self.registry is not None:
            await self.registry.close()
        log.info("userstore stopped")
