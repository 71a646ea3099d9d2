"""The UserstoreService gRPC servicer: convert, call one service function, convert back."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common.errors import AutomationError, InvalidArgument
from userstore_svc import convert
from userstore_svc.core.models import TORRENT
from userstore_svc.downloads_service import DownloadService
from userstore_svc.hub import Changed, EventHub
from userstore_svc.ingest import Ingestor
from userstore_svc.moves import MoveService
from userstore_svc.rules_service import RuleService
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry
from userstore_svc.torrents_service import TorrentService
from userstore_svc.users_service import UserService

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
LIST_USERS_MAX = 5000


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        raise InvalidArgument("is not valid JSON", field=field) from None


class UserstoreServicer(pb_grpc.UserstoreServiceServicer):
    """Thin adapter from gRPC to the userstore's services."""

    def __init__(
        self,
        *,
        registry: Registry,
        pool: DatabasePool,
        users: UserService,
        ingestor: Ingestor,
        rules: RuleService,
        torrents: TorrentService,
        downloads: DownloadService,
        moves: MoveService,
        hub: EventHub,
        started_at: float,
        clock: Any,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.users = users
        self.ingestor = ingestor
        self.rules = rules
        self.torrents = torrents
        self.downloads = downloads
        self.moves = moves
        self.hub = hub
        self.started_at = started_at
        self.clock = clock
        self._streams: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._draining = asyncio.Event()

    # Registry ---------------------------------------------------------------------------------

    async def RegisterUser(
        self, request: pb.RegisterUserRequest, context: Context
    ) -> pb.RegisterUserResponse:
        result = await self.users.register(request.auth_id, request.key_ciphertext)
        return pb.RegisterUserResponse(
            was_created=result.was_created,
            db_exists=result.db_exists,
            reactivated=result.reactivated,
        )

    async def RemoveUser(
        self, request: pb.RemoveUserRequest, context: Context
    ) -> pb.RemoveUserResponse:
        return pb.RemoveUserResponse(removed=await self.users.remove(request.auth_id))

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        return pb.GetUserResponse(user=convert.user_pb(self.registry.require(request.auth_id)))

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        limit = min(max(request.limit or LIST_USERS_MAX, 1), LIST_USERS_MAX)
        rows, more = self.registry.changed_after(request.after_seq, limit)
        return pb.ListUsersResponse(
            users=[convert.user_pb(r) for r in rows],
            registry_epoch=self.registry.epoch,
            latest_seq=rows[-1].seq if rows else max(request.after_seq, 0),
            more=more,
        )

    async def SetUserStatus(
        self, request: pb.SetUserStatusRequest, context: Context
    ) -> pb.SetUserStatusResponse:
        status = convert.STATUS_NAMES.get(request.status)
        if status is None or status == "removed":
            raise InvalidArgument("status must be ACTIVE or AUTH_FAILED", field="status")
        await self.registry.set_status(request.auth_id, status, self.clock())
        return pb.SetUserStatusResponse()

    async def MarkActivity(
        self, request: pb.MarkActivityRequest, context: Context
    ) -> pb.MarkActivityResponse:
        self.registry.require(request.auth_id)
        self.registry.note_seen(request.auth_id, self.clock())
        return pb.MarkActivityResponse()

    # Ingest -----------------------------------------------------------------------------------

    async def _handle(
        self, request: pb.IngestRequest, out: asyncio.Queue[pb.IngestResponse | None]
    ) -> None:
        kind = request.WhichOneof("kind")
        poll_id = request.snapshot.poll_id if kind == "snapshot" else request.outcomes.poll_id
        try:
            if kind == "snapshot":
                plan = await self.ingestor.ingest(convert.snapshot_in(request.snapshot))
                await out.put(pb.IngestResponse(plan=convert.plan_pb(plan)))
            elif kind == "outcomes":
                recorded = await self.ingestor.record_outcomes(
                    request.outcomes.auth_id, convert.outcomes_in(request.outcomes)
                )
                await out.put(
                    pb.IngestResponse(
                        outcomes_recorded=pb.OutcomesRecorded(poll_id=poll_id, recorded=recorded)
                    )
                )
            else:
                raise InvalidArgument("empty ingest request", field="kind")
        except AutomationError as exc:
            code = grpc.StatusCode[exc.status].value[0]
            await out.put(
                pb.IngestResponse(
                    error=pb.IngestError(poll_id=poll_id, code=code, message=exc.message)
                )
            )
        except Exception as exc:
            mapped = self.pool.storage.translate(exc)  # logs the original disk error
            if mapped is not None:
                code = grpc.StatusCode[mapped.status].value[0]
                error = pb.IngestError(poll_id=poll_id, code=code, message=mapped.message)
                await out.put(pb.IngestResponse(error=error))
                return
            log.exception("ingest failed")
            await out.put(
                pb.IngestResponse(
                    error=pb.IngestError(
                        poll_id=poll_id,
                        code=grpc.StatusCode.INTERNAL.value[0],
                        message="internal error",
                    )
                )
            )

    async def Ingest(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: Context
    ) -> AsyncIterator[pb.IngestResponse]:
        # Requests are handled concurrently (one user at a time, through the pool's locks);
        # answers go out as they finish, each carrying its poll id.
        out: asyncio.Queue[pb.IngestResponse | None] = asyncio.Queue()

        async def read() -> None:
            mine: set[asyncio.Task[None]] = set()
            try:
                async for request in request_iterator:
                    if self._draining.is_set():
                        break
                    task = asyncio.create_task(self._handle(request, out))
                    for group in (mine, self._handlers):
                        group.add(task)
                        task.add_done_callback(group.discard)
            finally:
                if mine:
                    await asyncio.wait(mine)
                out.put_nowait(None)

        reader = asyncio.create_task(read())
        self._streams.add(reader)
        reader.add_done_callback(self._streams.discard)
        try:
            while (item := await out.get()) is not None:
                yield item
        finally:
            if not reader.done():
                reader.cancel()

    async def drain(self, timeout: float) -> None:
        """Stop taking snapshots and wait (bounded) for the ones being applied to commit."""
        self._draining.set()
        for reader in list(self._streams):
            reader.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=timeout)

    # Torrents and events -----------------------------------------------------------------------

    async def ListTorrents(
        self, request: pb.ListTorrentsRequest, context: Context
    ) -> pb.ListTorrentsResponse:
        kinds = convert.kinds_in(request.asset_types) or frozenset({TORRENT})
        views, observed = await self.torrents.list_torrents(
            request.auth_id, request.include_removed, kinds
        )
        response = pb.ListTorrentsResponse(torrents=[convert.torrent_status_pb(v) for v in views])
        if observed is not None:
            response.observed_at = observed
        return response

    async def ListTorrentEvents(
        self, request: pb.ListTorrentEventsRequest, context: Context
    ) -> pb.ListTorrentEventsResponse:
        kind = convert.KIND_NAMES.get(request.asset_type, TORRENT)
        rows = await self.torrents.events(
            request.auth_id, request.torrent_id, request.limit, kind=kind
        )
        return pb.ListTorrentEventsResponse(events=[convert.event_pb(r) for r in rows])

    async def ListAccountEvents(
        self, request: pb.ListAccountEventsRequest, context: Context
    ) -> pb.ListAccountEventsResponse:
        rows = await self.torrents.account_events(request.auth_id, request.limit)
        return pb.ListAccountEventsResponse(events=[convert.event_pb(r) for r in rows])

    async def GetTorrentHistory(
        self, request: pb.GetTorrentHistoryRequest, context: Context
    ) -> pb.GetTorrentHistoryResponse:
        samples, observed_since = await self.torrents.history(request.auth_id, request.torrent_id)
        response = pb.GetTorrentHistoryResponse(
            samples=[convert.transfer_pb(sample) for sample in samples]
        )
        if observed_since is not None:
            response.observed_since = observed_since
        return response

    async def WatchEvents(
        self, request: pb.WatchEventsRequest, context: Context
    ) -> AsyncIterator[pb.WatchEventsResponse]:
        self.registry.require(request.auth_id)
        queue = self.hub.subscribe(request.auth_id)
        try:
            # Headers only now: a caller that waits for them (the gateway, before its 200) misses
            # no event published after that.
            await context.send_initial_metadata(())
            while not self._draining.is_set():
                item = await queue.get()
                if isinstance(item, Changed):
                    yield pb.WatchEventsResponse(
                        changed=pb.PollChanged(
                            observed_at=item.observed_at, changed_torrents=item.changed_torrents
                        )
                    )
                else:
                    yield pb.WatchEventsResponse(event=convert.event_pb(item))
        finally:
            self.hub.unsubscribe(request.auth_id, queue)

    # Rules ------------------------------------------------------------------------------------

    async def ListRules(
        self, request: pb.ListRulesRequest, context: Context
    ) -> pb.ListRulesResponse:
        rules = await self.rules.list_rules(request.auth_id)
        return pb.ListRulesResponse(rules_json=[json.dumps(r) for r in rules])

    async def SaveRules(
        self, request: pb.SaveRulesRequest, context: Context
    ) -> pb.SaveRulesResponse:
        saved = await self.rules.save_all(request.auth_id, _json(request.rules_json, "rules"))
        return pb.SaveRulesResponse(rules_json=[json.dumps(r) for r in saved])

    async def GetRule(self, request: pb.GetRuleRequest, context: Context) -> pb.GetRuleResponse:
        return pb.GetRuleResponse(
            rule_json=json.dumps(await self.rules.get(request.auth_id, request.rule_id))
        )

    async def UpdateRule(
        self, request: pb.UpdateRuleRequest, context: Context
    ) -> pb.UpdateRuleResponse:
        rule = await self.rules.update(
            request.auth_id, request.rule_id, _json(request.patch_json, "body")
        )
        return pb.UpdateRuleResponse(rule_json=json.dumps(rule))

    async def DeleteRule(
        self, request: pb.DeleteRuleRequest, context: Context
    ) -> pb.DeleteRuleResponse:
        await self.rules.delete(request.auth_id, request.rule_id)
        return pb.DeleteRuleResponse()

    async def ListRuleLogs(
        self, request: pb.ListRuleLogsRequest, context: Context
    ) -> pb.ListRuleLogsResponse:
        rows = await self.rules.logs(request.auth_id, request.rule_id, request.limit)
        return pb.ListRuleLogsResponse(logs=[convert.rule_log_pb(r) for r in rows])

    async def ClearRuleLogs(
        self, request: pb.ClearRuleLogsRequest, context: Context
    ) -> pb.ClearRuleLogsResponse:
        await self.rules.clear_logs(request.auth_id, request.rule_id)
        return pb.ClearRuleLogsResponse()

    async def PreviewRule(
        self, request: pb.PreviewRuleRequest, context: Context
    ) -> pb.PreviewRuleResponse:
        return convert.preview_pb(
            await self.rules.preview(request.auth_id, _json(request.rule_json, "rule"))
        )

    async def ListPresets(
        self, request: pb.ListPresetsRequest, context: Context
    ) -> pb.ListPresetsResponse:
        return pb.ListPresetsResponse(presets_json=[json.dumps(p) for p in self.rules.presets()])

    # Archive, protection, limits --------------------------------------------------------------

    async def ListArchived(
        self, request: pb.ListArchivedRequest, context: Context
    ) -> pb.ListArchivedResponse:
        items, total = await self.downloads.list_archived(
            request.auth_id, request.page, request.limit, request.search
        )
        return pb.ListArchivedResponse(items=[convert.archived_pb(a) for a in items], total=total)

    async def CreateArchived(
        self, request: pb.CreateArchivedRequest, context: Context
    ) -> pb.CreateArchivedResponse:
        item = await self.downloads.create_archived(
            request.auth_id,
            request.torrent_id,
            request.hash,
            request.name,
            convert.opt(request, "tracker"),
            convert.opt(request, "magnet"),
        )
        return pb.CreateArchivedResponse(item=convert.archived_pb(item))

    async def GetArchived(
        self, request: pb.GetArchivedRequest, context: Context
    ) -> pb.GetArchivedResponse:
        item = await self.downloads.get_archived(request.auth_id, request.archive_id)
        return pb.GetArchivedResponse(item=convert.archived_pb(item))

    async def DeleteArchived(
        self, request: pb.DeleteArchivedRequest, context: Context
    ) -> pb.DeleteArchivedResponse:
        await self.downloads.delete_archived(request.auth_id, request.archive_id)
        return pb.DeleteArchivedResponse()

    async def GetProtected(
        self, request: pb.GetProtectedRequest, context: Context
    ) -> pb.GetProtectedResponse:
        return pb.GetProtectedResponse(
            torrent_ids=await self.downloads.get_protected(request.auth_id)
        )

    async def SetProtected(
        self, request: pb.SetProtectedRequest, context: Context
    ) -> pb.SetProtectedResponse:
        ids = await self.downloads.set_protected(
            request.auth_id, list(request.torrent_ids), request.protected
        )
        return pb.SetProtectedResponse(torrent_ids=ids)

    async def AssertProtection(
        self, request: pb.AssertProtectionRequest, context: Context
    ) -> pb.AssertProtectionResponse:
        allowed, blocked = await self.downloads.assert_protection(
            request.auth_id, list(request.download_ids), request.operation
        )
        return pb.AssertProtectionResponse(allowed=allowed, blocked=blocked)

    async def ArchiveBulk(
        self, request: pb.ArchiveBulkRequest, context: Context
    ) -> pb.ArchiveBulkResponse:
        archived, blocked = await self.downloads.archive_bulk(
            request.auth_id, [convert.archive_entry(e) for e in request.downloads]
        )
        return pb.ArchiveBulkResponse(torrent_ids=archived, blocked_ids=blocked)

    async def DeleteArchivedBulk(
        self, request: pb.DeleteArchivedBulkRequest, context: Context
    ) -> pb.DeleteArchivedBulkResponse:
        deleted = await self.downloads.delete_archived_bulk(
            request.auth_id, list(request.archive_ids)
        )
        return pb.DeleteArchivedBulkResponse(deleted=deleted, requested=len(request.archive_ids))

    async def GetTorrentLimits(
        self, request: pb.GetTorrentLimitsRequest, context: Context
    ) -> pb.GetTorrentLimitsResponse:
        limits = await self.downloads.get_limits(request.auth_id, request.torrent_id)
        response = pb.GetTorrentLimitsResponse()
        if limits is not None:
            response.limits.CopyFrom(convert.limits_pb(limits))
        return response

    async def SetTorrentLimits(
        self, request: pb.SetTorrentLimitsRequest, context: Context
    ) -> pb.SetTorrentLimitsResponse:
        limits = await self.downloads.set_limits(
            request.auth_id,
            request.torrent_id,
            convert.opt(request, "seed_ratio"),
            convert.opt(request, "seed_time_hours"),
            request.clear,
        )
        response = pb.SetTorrentLimitsResponse()
        if limits is not None:
            response.limits.CopyFrom(convert.limits_pb(limits))
        return response

    # Moves ------------------------------------------------------------------------------------

    async def BeginMove(
        self, request: pb.BeginMoveRequest, context: Context
    ) -> pb.BeginMoveResponse:
        frozen = await self.moves.begin(request.auth_id)
        return pb.BeginMoveResponse(
            user=convert.user_pb(frozen.user), size=frozen.size, sha256=frozen.sha256
        )

    async def ExportUser(
        self, request: pb.ExportUserRequest, context: Context
    ) -> AsyncIterator[pb.ExportUserResponse]:
        async for chunk in self.moves.export(request.auth_id):
            yield pb.ExportUserResponse(chunk=chunk)

    async def ImportUser(
        self, request_iterator: AsyncIterator[pb.ImportUserRequest], context: Context
    ) -> pb.ImportUserResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("an import starts with its header", field="header")
        header = first.header

        async def chunks() -> AsyncIterator[bytes]:
            async for part in request_iterator:
                if part.WhichOneof("part") != "chunk":
                    raise InvalidArgument("only chunks follow the header", field="chunk")
                yield part.chunk

        replaced = await self.moves.import_user(
            convert.user_row(header.user), header.size, header.sha256, chunks()
        )
        return pb.ImportUserResponse(replaced=replaced)

    async def FinishMove(
        self, request: pb.FinishMoveRequest, context: Context
    ) -> pb.FinishMoveResponse:
        await self.moves.finish(request.auth_id)
        return pb.FinishMoveResponse()

    async def AbortMove(
        self, request: pb.AbortMoveRequest, context: Context
    ) -> pb.AbortMoveResponse:
        await self.moves.abort(request.auth_id)
        return pb.AbortMoveResponse()

    async def GetStats(self, request: pb.GetStatsRequest, context: Context) -> pb.GetStatsResponse:
        registered, active = self.registry.counts()
        return pb.GetStatsResponse(
            open_databases=self.pool.open_count,
            max_open_databases=self.pool.max_open,
            databases_in_use=self.pool.in_use_count,
            users_registered=registered,
            users_active=active,
            snapshots_applied=self.ingestor.applied,
            snapshots_replayed=self.ingestor.replayed,
            snapshots_after_gap=self.ingestor.after_gap,
            torrents_ingested=self.ingestor.torrents,
            uptime_seconds=self.clock() - self.started_at,
            pool_opens=self.pool.stats.opens,
            pool_evictions=self.pool.stats.evictions,
            watch_streams=self.hub.total_subscribers(),
            storage_error=self.pool.storage.error,
            storage_failing_since=self.pool.storage.failing_since,
            storage_failures=self.pool.storage.failures,
        )
