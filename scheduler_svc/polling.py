"""Per-user polling: one APScheduler job per user, the poll itself, and what follows from it.

A poll fetches the whole list (or fails and stops there: no snapshot, no actions), streams the
snapshot to the user's shard, executes the plan's actions and streams their outcomes back. Jobs
coalesce and never overlap; users without an enabled rule are polled at the idle interval; a plan
may ask for an earlier poll, never sooner than the minimum interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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
from scheduler_svc.health import FAILING, OutageBreaker
from scheduler_svc.keys import KeyDecryptError
from scheduler_svc.torbox.client import TorBoxClient
from scheduler_svc.torbox.errors import (
    TorBoxAuthError,
    TorBoxError,
    TorBoxRateLimited,
    TorBoxUnavailable,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollResult:
    """What one poll did (manual runs report it to the user)."""

    plan: pb.Plan | None = None
    outcomes: list[tpb.ActionOutcome] = field(default_factory=list)
    error: str | None = None


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
        self._tasks: list[asyncio.Task[None]] = []

    # Lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the job scheduler and the registry-sync and breaker-probe loops."""
        self._scheduler.start()
        self._tasks = [
            asyncio.create_task(self._sync_loop()),
            asyncio.create_task(self._probe_loop()),
        ]

    async def stop(self) -> None:
        """Stop scheduling (running polls are left to finish by the caller's grace period)."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

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
        self._scheduler.add_job(
            _run_job,
            IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 30.0)),
            args=[self, entry.auth_id],
            id=entry.auth_id,
            name="poll",
            replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=first_in),
        )

    def _unschedule(self, auth_id: str) -> None:
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
                # At startup spread users over their interval; a new user is polled at once.
                self._schedule(entry, random.uniform(0, interval) if startup else 0.0)
            elif job.trigger.interval.total_seconds() != interval:
                remaining = (job.next_run_time - datetime.now(UTC)).total_seconds()
                self._schedule(entry, max(0.0, min(remaining, interval)))

    async def _sync_loop(self) -> None:
        startup = True
        while True:
            changes = await self.directory.sync()
            self.apply_changes(changes, startup=startup)
            startup = False
            await asyncio.sleep(self.settings.registry_sync_seconds)

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
            ok = False
            for entry in candidates:
                try:
                    await self.client.user_me(entry.auth_id, self.directory.api_key(entry))
                    ok = True
                    break
                except (TorBoxError, KeyDecryptError):
                    continue
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
        await self.poll(entry)

    # The poll ---------------------------------------------------------------------------------

    async def poll(self, entry: UserEntry, *, run_rule_id: int | None = None) -> PollResult:
        """Fetch, snapshot, plan, execute, report: one poll of one user (never two at once)."""
        async with entry.lock, self._slots:
            token = request_id.set(uuid.uuid4().hex[:16])
            self.stats.in_flight += 1
            try:
                return await self._poll(entry, run_rule_id)
            finally:
                self.stats.in_flight -= 1
                request_id.reset(token)

    async def _poll(self, entry: UserEntry, run_rule_id: int | None) -> PollResult:
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
            torrents = await self.client.list_all(entry.auth_id, api_key)
        except TorBoxError as error:
            await self._fetch_failed(entry, error)
            return PollResult(error=error.code)
        observed_at = time.time()
        entry.health.success(observed_at, time.monotonic() - started)
        self.breaker.record(unreachable=False, now=observed_at)
        snapshot = pb.Snapshot(
            poll_id=uuid.uuid4().hex,
            auth_id=entry.auth_id,
            observed_at=observed_at,
            complete=True,
            torrents=torrents,
            poll_interval_seconds=self.interval_for(entry),
        )
        if run_rule_id is not None:
            snapshot.run_rule_id = run_rule_id
        stream = self.directory.shard_for(entry.auth_id)
        try:
            plan = await stream.send_snapshot(snapshot)
        except AutomationError as error:
            self.stats.failed += 1
            log.warning("snapshot not applied", extra={"code": error.code, "reason": error.message})
            return PollResult(error=error.code)
        self.stats.torrents += len(torrents)
        outcomes: list[tpb.ActionOutcome] = []
        if plan.actions:
            outcomes = await self.executor.run(entry.auth_id, api_key, plan.actions)
            await stream.send_outcomes(plan.poll_id, entry.auth_id, outcomes)
        self._after_plan(entry, plan)
        return PollResult(plan=plan, outcomes=outcomes)

    async def _fetch_failed(self, entry: UserEntry, error: TorBoxError) -> None:
        now = time.time()
        auth = isinstance(error, TorBoxAuthError)
        self.stats.failed += 1
        if not isinstance(error, TorBoxRateLimited):
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

    def _after_plan(self, entry: UserEntry, plan: pb.Plan) -> None:
        if plan.has_enabled_rules != entry.has_enabled_rules:
            entry.has_enabled_rules = plan.has_enabled_rules
            self.apply_changes([Change("updated", entry)], startup=False)
        if plan.HasField("next_poll_in_seconds"):
            hint = max(plan.next_poll_in_seconds, self.settings.min_poll_interval_seconds)
            if hint < self.interval_for(entry):
                self._poll_soon(entry.auth_id, hint)

    def health_counts(self) -> dict[str, int]:
        """How many keys are in each health state (auth_failed users counted apart)."""
        now = time.time()
        counts = {"healthy": 0, "degraded": 0, "failing": 0, "auth_failed": 0}
        for entry in self.directory.users.values():
            if entry.status == AUTH_FAILED:
                counts["auth_failed"] += 1
            else:
                state = entry.health.state(now)
                counts[state if state != FAILING else "failing"] += 1
        return counts


async def _run_job(poller: Poller, auth_id: str) -> None:
    """APScheduler's entry point (a module-level function, as its job store prefers)."""
    try:
        await poller.scheduled_poll(auth_id)
    except Exception:
        log.exception("poll crashed")
