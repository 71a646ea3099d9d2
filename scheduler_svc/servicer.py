"""The SchedulerService gRPC servicer: convert, call one function, convert back."""

from __future__ import annotations

import time
from typing import Any

import grpc
from torbox.automation.v1 import scheduler_service_pb2 as pb
from torbox.automation.v1 import scheduler_service_pb2_grpc as pb_grpc

from common.auth import is_valid_auth_id
from common.errors import InvalidArgument
from scheduler_svc.accounts import Accounts
from scheduler_svc.executor import ActionExecutor
from scheduler_svc.health import OutageBreaker
from scheduler_svc.polling import Poller

Context = grpc.aio.ServicerContext[Any, Any]
# Answer this long before the caller's deadline so the answer, not a timeout, reaches it.
ANSWER_MARGIN_SECONDS = 1.0


def answer_within(context: Context) -> float | None:
    """Seconds left to do the work and still answer in time (None: the caller set no deadline)."""
    remaining = context.time_remaining()
    if remaining is None:
        return None
    return max(0.0, remaining - ANSWER_MARGIN_SECONDS)


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    """Thin adapter from gRPC to the scheduler's account operations and figures."""

    def __init__(
        self,
        accounts: Accounts,
        poller: Poller,
        executor: ActionExecutor,
        breaker: OutageBreaker,
        *,
        replica_index: int,
        replicas: int,
        dry_run: bool,
    ) -> None:
        self.accounts = accounts
        self.poller = poller
        self.executor = executor
        self.breaker = breaker
        self.replica_index = replica_index
        self.replicas = replicas
        self.dry_run = dry_run
        self.started = time.time()

    async def EnsureUser(
        self, request: pb.EnsureUserRequest, context: Context
    ) -> pb.EnsureUserResponse:
        result = await self.accounts.ensure(request.api_key, answer_within(context))
        return pb.EnsureUserResponse(
            auth_id=result.auth_id,
            db_exists=True,
            was_created=result.was_created,
            message="User database created"
            if result.was_created
            else "User database already exists",
            reactivated=result.reactivated,
        )

    async def RemoveKey(
        self, request: pb.RemoveKeyRequest, context: Context
    ) -> pb.RemoveKeyResponse:
        return pb.RemoveKeyResponse(removed=await self.accounts.remove(request.auth_id))

    async def RunRule(self, request: pb.RunRuleRequest, context: Context) -> pb.RunRuleResponse:
        run = await self.accounts.run_rule(request.auth_id, request.rule_id, answer_within(context))
        s = run.summary
        return pb.RunRuleResponse(
            rule_id=s.rule_id,
            rule_name=s.rule_name,
            total_torrents=s.total_torrents,
            matched_torrents=s.matched_torrents,
            processed_torrents=s.processed_torrents,
            success_count=run.success,
            error_count=run.errors,
            executed=run.executed,
            skipped=s.skipped,
            reason=s.reason,
            dry_run=s.dry_run,
            action_type=s.action_type,
        )

    async def RestoreArchived(
        self, request: pb.RestoreArchivedRequest, context: Context
    ) -> pb.RestoreArchivedResponse:
        # Through the upload queue: TorBox's ids are not known yet, so none are answered.
        created = await self.accounts.restore(request.auth_id, request.archive_id)
        return pb.RestoreArchivedResponse(hash=str(created.get("hash") or ""))

    async def SealUploadSecret(
        self, request: pb.SealUploadSecretRequest, context: Context
    ) -> pb.SealUploadSecretResponse:
        sealed = self.accounts.seal_secret(request.auth_id, request.secret)
        return pb.SealUploadSecretResponse(ciphertext=sealed)

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: Context
    ) -> pb.GetStatusResponse:
        stats = self.poller.stats
        totals = self.poller.health_totals()
        response = pb.GetStatusResponse(
            replica_index=self.replica_index,
            replicas=self.replicas,
            users_scheduled=self.poller.scheduled,
            polls_in_flight=stats.in_flight,
            polls_total=stats.polls,
            polls_failed=stats.failed,
            polls_skipped=stats.skipped,
            actions_sent=self.executor.sent,
            actions_failed=self.executor.failed,
            breaker_state=self.breaker.state,
            keys_healthy=totals.healthy,
            keys_degraded=totals.degraded,
            keys_failing=totals.failing,
            keys_auth_failed=totals.auth_failed,
            key_requests_24h=totals.requests_24h,
            key_failures_24h=totals.failures_24h,
            key_failure_rate_24h=totals.failure_rate_24h,
            uptime_seconds=time.time() - self.started,
            dry_run=self.dry_run,
        )
        for name, value in (
            ("key_avg_response_seconds", totals.avg_response_seconds),
            ("key_last_success_at", totals.last_success_at),
            ("key_last_failure_at", totals.last_failure_at),
        ):
            if value is not None:
                setattr(response, name, value)
        return response

    async def GetUserPolling(
        self, request: pb.GetUserPollingRequest, context: Context
    ) -> pb.GetUserPollingResponse:
        if not is_valid_auth_id(request.auth_id):
            raise InvalidArgument("auth_id must be 64 lowercase hex digits", field="auth_id")
        polling = self.poller.user_polling(request.auth_id)
        response = pb.GetUserPollingResponse(
            scheduled=polling.scheduled,
            key_health=polling.key_health,
            consecutive_failures=polling.consecutive_failures,
            polling_paused=polling.paused,
        )
        for name, value in (
            ("next_poll_at", polling.next_poll_at),
            ("poll_interval_seconds", polling.interval_seconds),
            ("last_error_code", polling.last_error_code),
            ("last_success_at", polling.last_success_at),
            ("last_failure_at", polling.last_failure_at),
        ):
            if value is not None:
                setattr(response, name, value)
        return response
