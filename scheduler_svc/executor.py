"""Sending a plan's actions to TorBox, with bounded concurrency, and reporting every outcome.

The plan was made from the snapshot of this very poll, so nothing is re-checked here. Deleting a
torrent that is already gone counts as done. An archive whose magnet TorBox did not list first
fetches it (exportdata); if that fails the torrent is not deleted. An airlock action reads the
torrent fresh and sends TorBox's edit call with the flag. Each outcome is handed to a
`report` callback as soon as it is known (the poller streams it to the userstore), and an action
whose turn comes while TorBox is considered down (`halted`) is not sent but reported as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from torbox.automation.v1 import torrent_pb2 as tpb

from scheduler_svc.torbox.client import TorBoxClient
from scheduler_svc.torbox.errors import TorBoxApiError, TorBoxError

log = logging.getLogger(__name__)

_CONTROL = {
    tpb.ACTION_TYPE_STOP_SEEDING: "stop_seeding",
    tpb.ACTION_TYPE_PAUSE: "pause",
    tpb.ACTION_TYPE_RESUME: "resume",
    tpb.ACTION_TYPE_REANNOUNCE: "reannounce",
}
# Airlock actions are edit calls: the value each one sets.
_AIRLOCK = {tpb.ACTION_TYPE_ADD_AIRLOCK: True, tpb.ACTION_TYPE_REMOVE_AIRLOCK: False}
GONE_CODES = frozenset({"ITEM_NOT_FOUND"})
# An item's type, as the control calls name it (unspecified is a torrent).
KIND_NAMES = {
    tpb.ASSET_TYPE_UNSPECIFIED: "torrent",
    tpb.ASSET_TYPE_TORRENT: "torrent",
    tpb.ASSET_TYPE_USENET: "usenet",
    tpb.ASSET_TYPE_WEBDL: "webdl",
}
HALTED_CODE = "TORBOX_OUTAGE"

Report = Callable[[tpb.ActionOutcome], Awaitable[None]]


class ActionExecutor:
    """Executes planned actions for one user at a time."""

    def __init__(
        self,
        client: TorBoxClient,
        *,
        concurrency: int,
        dry_run: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.clock = clock
        self.sent = 0
        self.failed = 0

    async def run(
        self,
        key_id: str,
        api_key: str,
        actions: Sequence[tpb.PlannedAction],
        *,
        report: Report | None = None,
        halted: Callable[[], bool] | None = None,
    ) -> list[tpb.ActionOutcome]:
        """Send every action (at most `concurrency` at once) and return their outcomes in order.

        `report` receives each outcome as soon as it is known; when `halted()` is true at an
        action's turn, the action is not sent and fails with TORBOX_OUTAGE.
        """
        gate = asyncio.Semaphore(self.concurrency)

        async def one(action: tpb.PlannedAction) -> tpb.ActionOutcome:
            async with gate:
                if halted is not None and halted():
                    outcome = self._not_sent(action, HALTED_CODE, "TorBox is unreachable")
                else:
                    outcome = await self._execute(key_id, api_key, action)
            if report is not None:
                await report(outcome)
            return outcome

        return list(await asyncio.gather(*(one(a) for a in actions)))

    def _not_sent(self, action: tpb.PlannedAction, code: str, message: str) -> tpb.ActionOutcome:
        self.failed += 1
        return tpb.ActionOutcome(
            action_id=action.action_id,
            success=False,
            error_code=code,
            message=message,
            completed_at=self.clock(),
        )

    async def _execute(
        self, key_id: str, api_key: str, action: tpb.PlannedAction
    ) -> tpb.ActionOutcome:
        outcome = tpb.ActionOutcome(action_id=action.action_id)
        if self.dry_run:
            # A scheduler started with DRY_RUN sends nothing, whatever a userstore planned.
            outcome.success = False
            outcome.error_code = "DRY_RUN"
            outcome.message = "the scheduler runs with DRY_RUN=true"
            outcome.completed_at = self.clock()
            return outcome
        try:
            magnet = await self._send(key_id, api_key, action)
            outcome.success = True
            if magnet is not None:
                outcome.magnet = magnet
            self.sent += 1
        except TorBoxError as error:
            if (
                action.type in (tpb.ACTION_TYPE_DELETE, tpb.ACTION_TYPE_ARCHIVE)
                and error.code in GONE_CODES
            ):
                outcome.success = True
                outcome.message = "already gone"
                self.sent += 1
            else:
                outcome.success = False
                outcome.error_code = error.code
                outcome.message = error.message[:500]
                self.failed += 1
        outcome.completed_at = self.clock()
        return outcome

    async def _send(self, key_id: str, api_key: str, action: tpb.PlannedAction) -> str | None:
        """Perform one action; returns a fetched magnet for archives that needed one."""
        kind = action.type
        asset = KIND_NAMES.get(action.asset_type)
        if asset is None:
            raise TorBoxApiError("UNKNOWN_ASSET_TYPE", f"asset type {action.asset_type}")
        if asset != "torrent":
            await self._send_download(key_id, api_key, action, asset)
            return None
        operation = _CONTROL.get(kind)
        if operation is not None:
            await self.client.control_torrent(key_id, api_key, action.torrent_id, operation)
            return None
        airlocked = _AIRLOCK.get(kind)
        if airlocked is not None:
            if action.queued:
                # TorBox's queue has no edit call (TBM refuses these too).
                raise TorBoxApiError("QUEUED", "Cannot update airlock for queued downloads")
            await self.client.set_airlock(key_id, api_key, action.torrent_id, airlocked)
            return None
        if kind == tpb.ACTION_TYPE_FORCE_START:
            await self.client.control_queued(key_id, api_key, action.torrent_id, "start")
            return None
        if kind in (tpb.ACTION_TYPE_DELETE, tpb.ACTION_TYPE_ARCHIVE):
            magnet = None
            if kind == tpb.ACTION_TYPE_ARCHIVE and action.needs_magnet and not action.queued:
                try:
                    magnet = await self.client.export_magnet(key_id, api_key, action.torrent_id)
                except TorBoxError as error:
                    raise TorBoxApiError(
                        "EXPORT_FAILED", f"could not fetch the magnet, not deleting: {error.code}"
                    ) from None
            if action.queued:
                await self.client.control_queued(key_id, api_key, action.torrent_id, "delete")
            else:
                await self.client.control_torrent(key_id, api_key, action.torrent_id, "delete")
            return magnet
        raise TorBoxApiError("UNKNOWN_ACTION", f"action type {kind} is not supported")

    async def _send_download(
        self, key_id: str, api_key: str, action: tpb.PlannedAction, asset: str
    ) -> None:
        """Delete, force start or (un)airlock a usenet or web download (TBM's calls per type)."""
        kind, item_id = action.type, action.torrent_id
        airlocked = _AIRLOCK.get(kind)
        if airlocked is not None:
            if action.queued:
                raise TorBoxApiError("QUEUED", "Cannot update airlock for queued downloads")
            await self.client.set_airlock(key_id, api_key, item_id, airlocked, asset)
        elif kind == tpb.ACTION_TYPE_FORCE_START:
            await self.client.control_queued(key_id, api_key, item_id, "start", asset)
        elif kind == tpb.ACTION_TYPE_DELETE and action.queued:
            await self.client.control_queued(key_id, api_key, item_id, "delete", asset)
        elif kind == tpb.ACTION_TYPE_DELETE:
            await self.client.control_download(key_id, api_key, asset, item_id, "delete")
        else:
            # stop_seeding, archive, pause, resume, reannounce: torrents only (the rule schema
            # refuses them for other types; a plan naming one is not sent).
            raise TorBoxApiError("UNSUPPORTED", f"action type {kind} is for torrents only")
