"""Per-user polling: one APScheduler job per user, the poll itself, and what follows from it.

A poll fetches the whole list (or fails and stops there: no snapshot, no actions), streams the
snapshot to the user's shard, executes the plan's actions and streams each outcome back. Jobs
coalesce and never overlap; users without an enabled rule are polled at the idle interval; a plan
may ask for an earlier poll, never sooner than the minimum interval. While the outage breaker is
open nothing is polled and no action is sent; a user whose shard is unreachable is not fetched
(the fetch would be thrown away) and is polled soon after the stream reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import grpc_client
from common.errors import AutomationError
from common.logs import request_id
from scheduler_svc.config import SchedulerSettings
from scheduler_svc.directory import AUTH_FAILED, Change, Directory, UserEntry
from scheduler_svc.executor import ActionExecutor
from scheduler_svc.health import AUTH_FAILED_STATE, UNKNOWN, HealthTotals, OutageBreaker
from scheduler_svc.keys import KeyDecryptError
from scheduler_svc.streams import IngestStream
from scheduler_svc.torbox.client import TorBoxClient
from scheduler_svc.torbox.errors import (
    TorBoxAuthError,
    TorBoxError,
    TorBoxRateLimited,
    TorBoxUnavailable,
)
from scheduler_svc.torbox.parse import QUEUED, Row

log = logging.getLogger(__name__)

# Per-run jitter as a share of the interval (capped): each gap is interval +- half of it.
JITTER_FRACTION = 0.1
MAX_JITTER_SECONDS = 30.0
# Users whose poll was skipped while their shard was down are polled within this after reconnect.
CATCH_UP_SPREAD_SECONDS = 5.0
OUTAGE_CODE = "TORBOX_OUTAGE"
# The types polled beside torrents when a user's rules need them, in TBM's order.
OTHER_KINDS = ("usenet", "webdl")
_ASSET_TYPES = {"usenet": tpb.ASSET_TYPE_USENET, "webdl": tpb.ASSET_TYPE_WEBDL}
_KIND_NAMES = {value: key for key, value in _ASSET_TYPES.items()}


@dataclass(slots=True)
class PollResult:
    """What one poll did (manual runs report it to the user)."""

    plan: pb.Plan | None = None
    outcomes: list[tpb.ActionOutcome] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class UserPolling:
    """When this replica polls one user next, and how that user's key is doing.

    Unknown stays unknown: no job means no next poll (None, never 0), and a key not yet tried
    (or a user this replica does not know) has the health "unknown".
    """

    scheduled: bool
    next_poll_at: float | None
    interval_seconds: float | None
    key_health: str
    consecutive_failures: int
    last_error_code: str | None
    last_success_at: float | None
    last_failure_at: float | None
    paused: bool


@dataclass(slots=True)
class PollStats:
    """Counters for /api/backend/status and the benchmarks."""

    polls: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    torrents: int = 0


class Poller:
    """Owns the jobs and runs the polls of this replica's users."""

    def __init__(
        self,
        settings: SchedulerSettings,
        client: TorBoxClient,
        directory: Directory,
        executor: ActionExecutor,
        breaker: OutageBreaker,
    ) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self.executor = executor
        self.breaker = breaker
        self.stats = PollStats()
        self._slots = asyncio.Semaphore(settings.max_concurrent_polls)
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        # A tick that finds the user's previous poll still running is skipped (coalesced, by
        # design): count it instead of letting APScheduler log a warning for each one.
        self._scheduler.add_listener(self._tick_skipped, EVENT_JOB_MAX_INSTANCES)
        self._tasks: list[asyncio.Task[None]] = []
        # Scheduled polls running now (APScheduler runs each job as a task of its own).
        self._running: set[asyncio.Task[object]] = set()
        # The nominal interval of each user's job (the trigger's own interval is shifted by
        # half the jitter, see :meth:`_schedule`).
        self._intervals: dict[str, float] = {}
        # Users whose poll was skipped because their shard's stream was down, by shard index.
        self._missed: dict[int, set[str]] = {}
        for index, stream in enumerate(directory.shards):
            stream.on_connect(self._caught_up_callback(index))

    def _tick_skipped(self, _event: object) -> None:
        self.stats.skipped += 1

    # Lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the job scheduler and the registry-sync and breaker-probe loops."""
        self._scheduler.start()
        self._tasks = [
            asyncio.create_task(self._sync_loop()),
            asyncio.create_task(self._probe_loop()),
        ]

    async def stop(self, grace: float = 0.0) -> None:
        """Stop scheduling; running polls get `grace` seconds to finish, then are cancelled.

        A cancelled poll loses nothing for good: its snapshot was applied or not (never in part),
        and actions whose outcome was not reported are reconciled by the user's next poll.
        """
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        running = list(self._running)
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            for poll in late:
                poll.cancel()
            if late:
                await asyncio.wait(late)

    def interval_for(self, entry: UserEntry) -> float:
        """The user's regular poll interval."""
        s = self.settings
        return s.poll_interval_seconds if entry.has_enabled_rules else s.idle_poll_interval_seconds

    @property
    def scheduled(self) -> int:
        """How many users have a poll job."""
        return len(self._scheduler.get_jobs())

    # Jobs -------------------------------------------------------------------------------------

    def _schedule(self, entry: UserEntry, first_in: float) -> None:
        interval = self.interval_for(entry)
        jitter = min(interval * JITTER_FRACTION, MAX_JITTER_SECONDS)
        # APScheduler adds uniform(0, jitter) to each gap; shortening the trigger by half the
        # jitter keeps the mean gap at the configured interval instead of drifting above it.
        self._scheduler.add_job(
            _run_job,
            IntervalTrigger(seconds=interval - jitter / 2, jitter=jitter or None),
            args=[self, entry.auth_id],
            id=entry.auth_id,
            name="poll",
            replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=first_in),
        )
        self._intervals[entry.auth_id] = interval

    def _unschedule(self, auth_id: str) -> None:
        self._intervals.pop(auth_id, None)
        for missed in self._missed.values():
            missed.discard(auth_id)
        with contextlib.suppress(Exception):
            self._scheduler.remove_job(auth_id)

    def _poll_soon(self, auth_id: str, seconds: float) -> None:
        """Move a user's next poll earlier (never later than it already is)."""
        job = self._scheduler.get_job(auth_id)
        if job is None:
            return
        when = datetime.now(UTC) + timedelta(seconds=seconds)
        if job.next_run_time is None or when < job.next_run_time:
            job.modify(next_run_time=when)

    def apply_changes(self, changes: list[Change], *, startup: bool) -> None:
        """Add, reschedule or drop jobs after a registry sync."""
        for change in changes:
            entry = change.entry
            if change.kind == "removed" or entry.status != pb.USER_STATUS_ACTIVE:
                self._unschedule(entry.auth_id)
                if change.kind == "removed":
                    self.client.limiter.forget(entry.auth_id)
                continue
            job = self._scheduler.get_job(entry.auth_id)
            interval = self.interval_for(entry)
            if job is None:
                # Users read in bulk (startup, a shard's first contact) are spread over their
                # interval; a user who just registered or was reactivated is polled at once.
                spread = startup or change.bulk
                self._schedule(entry, random.uniform(0, interval) if spread else 0.0)
            elif self._intervals.get(entry.auth_id) != interval:
                remaining = (job.next_run_time - datetime.now(UTC)).total_seconds()
                self._schedule(entry, max(0.0, min(remaining, interval)))

    async def _sync_loop(self) -> None:
        startup = True
        while True:
            try:
                changes = await self.directory.sync()
                self.apply_changes(changes, startup=startup)
                startup = False
            except Exception:
                # A bad sync must not end registry following for the life of the process.
                log.exception("registry sync failed")
            await asyncio.sleep(self.settings.registry_sync_seconds)

    def _caught_up_callback(self, shard: int) -> Callable[[], None]:
        def caught_up() -> None:
            missed = self._missed.pop(shard, set())
            for auth_id in missed:
                self._poll_soon(auth_id, random.uniform(0, CATCH_UP_SPREAD_SECONDS))
            if missed:
                log.info("shard back: polling skipped users soon", extra={"users": len(missed)})

        return caught_up

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.breaker.probe_seconds))
            now = time.time()
            if not self.breaker.probe_due(now):
                continue
            candidates = sorted(
                (e for e in self.directory.users.values() if e.status == pb.USER_STATUS_ACTIVE),
                key=lambda e: e.health.last_success_at or 0.0,
                reverse=True,
            )[:3]
            # Without a key to probe with there is nothing to wait for: the next polls decide.
            ok = not candidates
            for entry in candidates:
                try:
                    await self.client.user_me(entry.auth_id, self.directory.api_key(entry))
                except KeyDecryptError:
                    continue
                except TorBoxUnavailable:
                    continue
                except TorBoxError:
                    pass  # TorBox answered (even a refusal or a 429 means it is up)
                ok = True
                break
            self.breaker.probed(ok=ok, now=time.time())
            if ok:
                log.info("TorBox answers again: polling resumes")
                for entry in candidates:
                    self._poll_soon(entry.auth_id, 0.0)

    async def scheduled_poll(self, auth_id: str) -> None:
        """A job fired: poll unless the breaker is open or this user is already being polled."""
        entry = self.directory.users.get(auth_id)
        if entry is None or entry.status != pb.USER_STATUS_ACTIVE:
            self._unschedule(auth_id)
            return
        if self.breaker.open or entry.lock.locked():
            self.stats.skipped += 1
            return
        shard = self.directory.shard_index(auth_id)
        if not self.directory.shards[shard].connected:
            # Its snapshot could not be delivered: don't spend TorBox quota on a fetch that would
            # be thrown away; poll as soon as the stream is back.
            self.stats.skipped += 1
            self._missed.setdefault(shard, set()).add(auth_id)
            return
        await self.poll(entry)

    # The poll ---------------------------------------------------------------------------------

    async def poll(self, entry: UserEntry, *, run_rule_id: int | None = None) -> PollResult:
        """Fetch, snapshot, plan, execute, report: one poll of one user (never two at once)."""
        async with entry.lock, self._slots:
            # Random hex as uuid4().hex gave (16 and 32 characters), without a UUID object:
            # the two ids were about 4 % of a poll's fixed CPU.
            token = request_id.set(secrets.token_hex(8))
            self.stats.in_flight += 1
            try:
                return await self._poll(entry, run_rule_id)
            finally:
                self.stats.in_flight -= 1
                request_id.reset(token)

    async def _poll(self, entry: UserEntry, run_rule_id: int | None) -> PollResult:
        if self.breaker.open:
            # TorBox is down: no fetch, no snapshot, no actions (a manual run fails fast).
            self.stats.skipped += 1
            return PollResult(error=OUTAGE_CODE)
        self.stats.polls += 1
        try:
            api_key = self.directory.api_key(entry)
        except KeyDecryptError:
            log.error("a stored API key does not decrypt with this ENCRYPTION_KEY")
            entry.health.failure(time.time(), "KEY_DECRYPT_FAILED", auth=False)
            self.stats.failed += 1
            return PollResult(error="KEY_DECRYPT_FAILED")
        started = time.monotonic()
        try:
            torrents = await self._fetch(entry, api_key)
        except TorBoxError as error:
            await self._fetch_failed(entry, error)
            return PollResult(error=error.code)
        entry.last_listed = sum(1 for t in torrents if not t[QUEUED])
        # A manual run may evaluate a rule of any type: every list is read for it.
        kinds = frozenset(OTHER_KINDS) if run_rule_id is not None else entry.kinds
        listed = await self._fetch_others(entry, api_key, kinds, torrents)
        observed_at = time.time()
        entry.health.success(observed_at, time.monotonic() - started)
        self.breaker.record(unreachable=False, now=observed_at)
        stream = self.directory.shard_for(entry.auth_id)
        snapshot: dict[str, Any] = {
            "poll_id": secrets.token_hex(16),
            "auth_id": entry.auth_id,
            "observed_at": observed_at,
            "complete": True,
            "poll_interval_seconds": self.interval_for(entry),
            "listed_types": [tpb.ASSET_TYPE_TORRENT, *(_ASSET_TYPES[k] for k in listed)],
            **stream.items(torrents),
        }
        if run_rule_id is not None:
            snapshot["run_rule_id"] = run_rule_id
        # Built from the fields in one call, in place: no message is built apart and copied
        # (protobuf takes a dict for a message field; its stubs only say a message).
        request = pb.IngestRequest(snapshot=cast(pb.Snapshot, snapshot))
        try:
            plan = await stream.send_request(request)
        except AutomationError as error:
            self.stats.failed += 1
            log.warning("snapshot not applied", extra={"code": error.code, "reason": error.message})
            return PollResult(error=error.code)
        self.stats.torrents += len(torrents)
        outcomes: list[tpb.ActionOutcome] = []
        if plan.actions:
            outcomes = await self._execute(entry, api_key, plan, stream)
        self._after_plan(entry, plan, listed)
        return PollResult(plan=plan, outcomes=outcomes)

    async def _fetch(self, entry: UserEntry, api_key: str) -> list[Row]:
        """The whole list; an empty one where torrents were listed before is fetched again."""
        torrents = await self.client.list_all_rows(entry.auth_id, api_key)
        if entry.last_listed and all(t[QUEUED] for t in torrents):
            # TorBox's "no torrents" answer (404 ITEM_NOT_FOUND) is sometimes a glitch: one
            # more fetch costs little and keeps a bogus empty list away from the userstore.
            log.info("empty list where torrents were listed before: fetching again")
            torrents = await self.client.list_all_rows(entry.auth_id, api_key)
        return torrents

    async def _fetch_others(
        self, entry: UserEntry, api_key: str, kinds: frozenset[str], into: list[Row]
    ) -> list[str]:
        """Add the usenet and web-download lists the user's rules need; the types listed whole.

        A type whose list fails is left out of the snapshot: the userstore then neither sees
        nor misses its items and no rule acts on them this poll (fail closed for that type).
        """
        listed: list[str] = []
        for kind in OTHER_KINDS:
            if kind not in kinds:
                continue
            try:
                into.extend(await self.client.list_downloads(entry.auth_id, api_key, kind))
            except TorBoxError as error:
                log.warning("list failed", extra={"asset_type": kind, "code": error.code})
                continue
            listed.append(kind)
        return listed

    async def _execute(
        self, entry: UserEntry, api_key: str, plan: pb.Plan, stream: IngestStream
    ) -> list[tpb.ActionOutcome]:
        """Send the plan's actions, streaming each outcome to the shard as soon as it is known."""
        sent: list[asyncio.Task[bool]] = []

        async def report(outcome: tpb.ActionOutcome) -> None:
            # Not awaited here: a slow acknowledgement must not hold the next action's slot.
            sent.append(
                asyncio.create_task(stream.send_outcomes(plan.poll_id, entry.auth_id, [outcome]))
            )

        outcomes = await self.executor.run(
            entry.auth_id,
            api_key,
            plan.actions,
            report=report,
            halted=lambda: self.breaker.open,
        )
        if sent:
            await asyncio.gather(*sent)
        return outcomes

    async def _fetch_failed(self, entry: UserEntry, error: TorBoxError) -> None:
        now = time.time()
        auth = isinstance(error, TorBoxAuthError)
        self.stats.failed += 1
        if isinstance(error, TorBoxRateLimited):
            # Not the key's fault; poll again once TorBox allows it (never sooner than the
            # minimum interval), not a whole interval later.
            self._poll_soon(
                entry.auth_id,
                max(error.retry_at - now, self.settings.min_poll_interval_seconds),
            )
        else:
            entry.health.failure(now, error.code, auth=auth)
        if self.breaker.record(unreachable=isinstance(error, TorBoxUnavailable), now=now):
            log.error("most polls cannot reach TorBox: pausing polls and actions, probing")
        log.warning("poll failed", extra={"code": error.code, "health": entry.health.state(now)})
        if (
            auth
            and entry.health.consecutive_auth_failures >= self.settings.auth_failures_before_stop
        ):
            await self._stop_user(entry)

    async def _stop_user(self, entry: UserEntry) -> None:
        """Three refusals of the key: stop polling until ensure-db validates it again."""
        entry.status = AUTH_FAILED
        self._unschedule(entry.auth_id)
        log.warning("API key refused repeatedly: user stopped until ensure-db")
        stream = self.directory.shard_for(entry.auth_id)
        try:
            await stream.stub.SetUserStatus(
                pb.SetUserStatusRequest(auth_id=entry.auth_id, status=AUTH_FAILED),
                timeout=self.settings.userstore_timeout_seconds,
                metadata=grpc_client.metadata(),
            )
        except Exception as error:
            log.warning("could not record the stop in the registry", extra={"error": str(error)})

    def _after_plan(self, entry: UserEntry, plan: pb.Plan, listed: list[str]) -> None:
        if plan.has_enabled_rules != entry.has_enabled_rules:
            entry.has_enabled_rules = plan.has_enabled_rules
            self.apply_changes([Change("updated", entry)], startup=False)
        kinds = _other_kinds(tuple(plan.asset_types))
        if not (kinds - entry.kinds).issubset(listed):
            # A rule now needs a list this poll did not read: read it soon, not an interval on.
            self._poll_soon(entry.auth_id, self.settings.min_poll_interval_seconds)
        entry.kinds = kinds
        if plan.HasField("next_poll_in_seconds"):
            hint = max(plan.next_poll_in_seconds, self.settings.min_poll_interval_seconds)
            if hint < self.interval_for(entry):
                self._poll_soon(entry.auth_id, hint)

    def user_polling(self, auth_id: str) -> UserPolling:
        """One user's next poll and key health, as this replica knows them now."""
        entry = self.directory.users.get(auth_id)
        job = self._scheduler.get_job(auth_id)
        next_run = job.next_run_time if job is not None else None
        if entry is None:
            health = UNKNOWN
        elif entry.status == AUTH_FAILED:
            health = AUTH_FAILED_STATE
        elif not entry.health.tried:
            health = UNKNOWN
        else:
            health = entry.health.state(time.time())
        record = entry.health if entry is not None else None
        return UserPolling(
            scheduled=job is not None,
            next_poll_at=next_run.timestamp() if next_run is not None else None,
            interval_seconds=self._intervals.get(auth_id) if job is not None else None,
            key_health=health,
            consecutive_failures=record.consecutive_failures if record else 0,
            last_error_code=record.last_error_code if record else None,
            last_success_at=record.last_success_at if record else None,
            last_failure_at=record.last_failure_at if record else None,
            paused=self.breaker.open,
        )

    def health_totals(self) -> HealthTotals:
        """Key health over this replica's users: states, 24 h requests and failures, timings."""
        return HealthTotals.build(
            [(e.health, e.status == AUTH_FAILED) for e in self.directory.users.values()],
            time.time(),
        )


@functools.lru_cache(maxsize=64)
def _other_kinds(asset_types: tuple[tpb.AssetType.ValueType, ...]) -> frozenset[str]:
    """The other types (usenet, webdl) among a plan's asset types (few combinations: cached)."""
    return frozenset(_KIND_NAMES[t] for t in asset_types if t in _KIND_NAMES)


async def _run_job(poller: Poller, auth_id: str) -> None:
    """APScheduler's entry point (a module-level function, as its job store prefers)."""
    task = asyncio.current_task()
    if task is not None:
        poller._running.add(task)
    try:
        await poller.scheduled_poll(auth_id)
    except asyncio.CancelledError:
        # Shutdown ran out of grace; nothing awaits this task, so just end it quietly.
        return
    except Exception:
        log.exception("poll crashed")
    finally:
        if task is not None:
            poller._running.discard(task)
