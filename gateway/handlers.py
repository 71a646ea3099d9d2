"""The state every REST handler shares: settings, backends, per-user rate limits, probes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common.errors import AutomationError
from gateway.auth import Caller, caller_of
from gateway.clients import Backends
from gateway.config import GatewaySettings
from gateway.jsonview import to_json
from gateway.limiter import AUTH_ID, ClientLimiter

VERSION = "0.1.0"
MAX_IDS = 1000
STATUS_TIMEOUT = 3.0


_SUMMED = (
    "users_scheduled",
    "polls_in_flight",
    "polls_total",
    "polls_failed",
    "polls_skipped",
    "actions_sent",
    "actions_failed",
    "keys_healthy",
    "keys_degraded",
    "keys_failing",
    "keys_auth_failed",
    "key_requests_24h",
    "key_failures_24h",
)


def scheduler_totals(replicas: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The replicas' counters added up (key health over every user); None if none answer."""
    answering = [r for r in replicas if r is not None]
    if not answering:
        return None
    totals: dict[str, Any] = {
        name: sum(int(r.get(name) or 0) for r in answering) for name in _SUMMED
    }
    requests = totals["key_requests_24h"]
    totals["key_failure_rate_24h"] = totals["key_failures_24h"] / requests if requests else 0.0
    totals["breaker_state"] = (
        "open" if any(r.get("breaker_state") == "open" for r in answering) else "closed"
    )
    totals["replicas_answering"] = len(answering)
    totals["dry_run"] = any(r.get("dry_run") for r in answering)
    return totals


def _figures(answers: list[Any]) -> list[dict[str, Any] | None]:
    return [None if isinstance(a, BaseException) else to_json(a) for a in answers]


class Handlers:
    """Every REST endpoint; state is only the backends and the per-user rate limits."""

    def __init__(
        self, settings: GatewaySettings, backends: Backends, limiter: ClientLimiter | None = None
    ) -> None:
        self.settings = settings
        self.b = backends
        self.started = time.time()
        self.limiter = limiter if limiter is not None else ClientLimiter(settings)
        # The tasks serving open event streams (shutdown ends them; status counts them).
        self.streams: set[asyncio.Task[Any]] = set()

    async def caller(self, request: web.Request, *, per_user: bool = True) -> Caller:
        """Authenticate and apply the rate limits (the user's own unless `per_user` is False).

        A caller whose key has not worked here yet is refused up front while its address has
        spent its budget for failed authentications (see ClientLimiter).
        """
        try:
            caller = await caller_of(request)
        except AutomationError:
            self.limiter.admit_unknown(request, None)
            raise
        self.limiter.admit_unknown(request, caller.auth_id)
        request[AUTH_ID] = caller.auth_id
        if per_user:
            self.limiter.admit_user(caller.auth_id)
        return caller

    async def probe_schedulers(self) -> list[dict[str, Any] | None]:
        """Every scheduler replica's figures, None for one that did not answer in time."""
        return _figures(
            await asyncio.gather(
                *(
                    stub.GetStatus(spb.GetStatusRequest(), **self.b.opts(STATUS_TIMEOUT))
                    for stub in self.b.schedulers
                ),
                return_exceptions=True,
            )
        )

    async def probe_shards(self) -> list[dict[str, Any] | None]:
        """Every userstore shard's figures, None for one that did not answer in time."""
        return _figures(
            await asyncio.gather(
                *(
                    stub.GetStats(pb.GetStatsRequest(), **self.b.opts(STATUS_TIMEOUT))
                    for stub in self.b.shards
                ),
                return_exceptions=True,
            )
        )
