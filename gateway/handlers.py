"""REST handlers: authenticate, convert the request, make one call, shape TBM's JSON answer."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common.errors import InvalidArgument, RateLimited, UserNotRegistered
from common.token_bucket import TokenBucket
from gateway import bodies
from gateway.auth import Caller, caller_of
from gateway.clients import Backends
from gateway.config import GatewaySettings
from gateway.inputs import (
    bool_query,
    int_query,
    positive_id,
)
from gateway.jsonview import iso, to_json

VERSION = "0.1.0"
MAX_IDS = 1000
# Per-user buckets of users not seen for this long are dropped.
BUCKET_IDLE_SECONDS = 600.0
STATUS_TIMEOUT = 3.0


def ok(payload: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    """A success answer in TBM's shape."""
    return web.json_response({"success": True, **(payload or {})}, status=status)


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

    def __init__(self, settings: GatewaySettings, backends: Backends) -> None:
        self.settings = settings
        self.b = backends
        self.started = time.time()
        self._buckets: dict[str, TokenBucket] = {}
        self._last_sweep = time.monotonic()
        # The tasks serving open event streams (shutdown ends them; status counts them).
        self.streams: set[asyncio.Task[Any]] = set()

    async def caller(self, request: web.Request) -> Caller:
        """Authenticate and apply the caller's rate limit."""
        caller = await caller_of(request)
        now = time.monotonic()
        bucket = self._buckets.get(caller.auth_id)
        if bucket is None:
            bucket = self._buckets[caller.auth_id] = TokenBucket.full(
                self.settings.rate_limit_per_minute / 60.0,
                float(self.settings.rate_limit_burst),
                now,
            )
        wait = bucket.wait_time(now)
        if now - self._last_sweep > BUCKET_IDLE_SECONDS:
            self._sweep(now)
        if wait > 0:
            raise RateLimited("Too many requests; slow down", retry_after=wait)
        return caller

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for auth_id in [
            a for a, b in self._buckets.items() if now - b.updated > BUCKET_IDLE_SECONDS
        ]:
            del self._buckets[auth_id]

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

    # Health and status --------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        """Liveness: the gateway answers."""
        return web.json_response({"status": "healthy", "timestamp": iso(time.time())})

    async def status(self, request: web.Request) -> web.Response:
        """TBM's availability probe, with our scheduler and pool figures."""
        # Asked concurrently: TBM's proxy gives this probe five seconds in all.
        schedulers, shards = await asyncio.gather(self.probe_schedulers(), self.probe_shards())
        return web.json_response(
            {
                # TBM reads only this, once per page load, and on false keeps that session in
                # local mode where rule edits are lost: it means "this gateway serves and reaches
                # user data", not "every shard and replica answered" (those are listed below).
                "available": any(f is not None for f in shards),
                "mode": "selfhosted",
                "version": VERSION,
                "uptime": time.time() - self.started,
                "scheduler": scheduler_totals(schedulers),
                "schedulers": schedulers,
                "userstores": shards,
                "gateway": {"sse_streams": len(self.streams)},
            }
        )

    # Keys -----------------------------------------------------------------------------------------

    async def ensure_db(self, request: web.Request) -> web.Response:
        """Validate the key with TorBox, register the user, create their database."""
        caller = await self.caller(request)
        result = await self.b.scheduler(caller.auth_id).EnsureUser(
            spb.EnsureUserRequest(api_key=caller.api_key), **self.b.opts(30.0)
        )
        return ok(
            {
                "authId": result.auth_id,
                "dbExists": result.db_exists,
                "wasCreated": result.was_created,
                "message": result.message,
                "reactivated": result.reactivated,
            }
        )

    async def remove_key(self, request: web.Request) -> web.Response:
        """The user removes their key: registry row and database deleted, polling stops."""
        caller = await self.caller(request)
        result = await self.b.scheduler(caller.auth_id).RemoveKey(
            spb.RemoveKeyRequest(auth_id=caller.auth_id), **self.b.opts()
        )
        if not result.removed:
            raise UserNotRegistered()
        return ok({"removed": True})

    async def activity(self, request: web.Request) -> web.Response:
        """The web app says the user is around."""
        caller = await self.caller(request)
        await self.b.userstore(caller.auth_id).MarkActivity(
            pb.MarkActivityRequest(auth_id=caller.auth_id), **self.b.opts()
        )
        return ok()

    # Rules ----------------------------------------------------------------------------------------

    async def list_rules(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        response = await self.b.userstore(caller.auth_id).ListRules(
            pb.ListRulesRequest(auth_id=caller.auth_id), **self.b.opts()
        )
        return ok({"rules": [json.loads(r) for r in response.rules_json]})

    async def save_rules(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        body = await bodies.read(request, bodies.SaveRules)
        response = await self.b.userstore(caller.auth_id).SaveRules(
            pb.SaveRulesRequest(auth_id=caller.auth_id, rules_json=json.dumps(body.rules)),
            **self.b.opts(),
        )
        rules = [json.loads(r) for r in response.rules_json]
        return ok(
            {
                "message": "Rules saved successfully",
                "rules": rules,
                # Saved as written, but only the torrent part acts for now (docs/rules.md).
                "warnings": [
                    f"Rule {r['id']} ({r['name']}): {', '.join(r['unsupported_asset_types'])} "
                    "downloads are not acted on yet; only its torrent part runs"
                    for r in rules
                    if r.get("unsupported_asset_types")
                ],
            }
        )

    async def get_rule(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule_id = positive_id(request.match_info.get("id"), "id")
        response = await self.b.userstore(caller.auth_id).GetRule(
            pb.GetRuleRequest(auth_id=caller.auth_id, rule_id=rule_id), **self.b.opts()
        )
        return ok({"rule": json.loads(response.rule_json)})

    async def update_rule(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule_id = positive_id(request.match_info.get("id"), "id")
        patch = (await bodies.read(request, bodies.UpdateRule)).patch()
        if not patch:
            raise InvalidArgument(
                "nothing to change (send enabled: true or false)", field="enabled"
            )
        response = await self.b.userstore(caller.auth_id).UpdateRule(
            pb.UpdateRuleRequest(
                auth_id=caller.auth_id, rule_id=rule_id, patch_json=json.dumps(patch)
            ),
            **self.b.opts(),
        )
        return ok({"message": "Rule updated successfully", "rule": json.loads(response.rule_json)})

    async def delete_rule(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule_id = positive_id(request.match_info.get("id"), "id")
        await self.b.userstore(caller.auth_id).DeleteRule(
            pb.DeleteRuleRequest(auth_id=caller.auth_id, rule_id=rule_id), **self.b.opts()
        )
        return ok({"message": "Rule deleted successfully"})

    async def rule_logs(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule_id = positive_id(request.match_info.get("id"), "id")
        limit = int_query(request, "limit", 100, 1, 1000)
        response = await self.b.userstore(caller.auth_id).ListRuleLogs(
            pb.ListRuleLogsRequest(auth_id=caller.auth_id, rule_id=rule_id, limit=limit),
            **self.b.opts(),
        )
        logs = []
        for log in response.logs:
            row = to_json(log)
            row["success"] = 1 if log.success else 0  # TBM's frontend reads 0/1
            logs.append(row)
        return ok({"logs": logs})

    async def clear_rule_logs(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule_id = positive_id(request.match_info.get("id"), "id")
        await self.b.userstore(caller.auth_id).ClearRuleLogs(
            pb.ClearRuleLogsRequest(auth_id=caller.auth_id, rule_id=rule_id), **self.b.opts()
        )
        return ok({"message": "Rule logs cleared successfully"})

    async def run_rule(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule_id = positive_id(request.match_info.get("id"), "id")
        started = time.monotonic()
        result = await self.b.scheduler(caller.auth_id).RunRule(
            spb.RunRuleRequest(auth_id=caller.auth_id, rule_id=rule_id),
            **self.b.opts(self.settings.run_timeout_seconds),
        )
        payload = to_json(result, camel=True)
        payload["executionTime"] = f"{time.monotonic() - started:.2f}"
        if not payload.get("reason"):
            payload.pop("reason", None)
        return ok({"result": payload})

    async def preview_rule(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        rule = (await bodies.read(request, bodies.PreviewRule)).document()
        response = await self.b.userstore(caller.auth_id).PreviewRule(
            pb.PreviewRuleRequest(auth_id=caller.auth_id, rule_json=json.dumps(rule)),
            **self.b.opts(),
        )
        return ok(to_json(response))

    async def presets(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        response = await self.b.userstore(caller.auth_id).ListPresets(
            pb.ListPresetsRequest(), **self.b.opts()
        )
        return ok({"presets": [json.loads(p) for p in response.presets_json]})

    # Torrents -----------------------------------------------------------------------------------

    async def torrents(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        include_removed = bool_query(request, "include_removed")
        response = await self.b.userstore(caller.auth_id).ListTorrents(
            pb.ListTorrentsRequest(auth_id=caller.auth_id, include_removed=include_removed),
            **self.b.opts(),
        )
        body = to_json(response)
        return ok({"torrents": body["torrents"], "observed_at": body["observed_at"]})

    async def torrent_events(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        torrent_id = positive_id(request.match_info.get("torrent_id"), "torrent_id")
        limit = int_query(request, "limit", 100, 1, 1000)
        response = await self.b.userstore(caller.auth_id).ListTorrentEvents(
            pb.ListTorrentEventsRequest(auth_id=caller.auth_id, torrent_id=torrent_id, limit=limit),
            **self.b.opts(),
        )
        return ok({"events": to_json(response)["events"]})

    async def get_limits(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        torrent_id = positive_id(request.match_info.get("torrent_id"), "torrent_id")
        response = await self.b.userstore(caller.auth_id).GetTorrentLimits(
            pb.GetTorrentLimitsRequest(auth_id=caller.auth_id, torrent_id=torrent_id),
            **self.b.opts(),
        )
        return ok({"limits": to_json(response)["limits"]})

    async def set_limits(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        torrent_id = positive_id(request.match_info.get("torrent_id"), "torrent_id")
        body = await bodies.read(request, bodies.SetLimits)
        message = pb.SetTorrentLimitsRequest(auth_id=caller.auth_id, torrent_id=torrent_id)
        if body.seed_ratio is not None:
            message.seed_ratio = body.seed_ratio
        if body.seed_time_hours is not None:
            message.seed_time_hours = body.seed_time_hours
        response = await self.b.userstore(caller.auth_id).SetTorrentLimits(message, **self.b.opts())
        return ok({"limits": to_json(response)["limits"]})

    async def clear_limits(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        torrent_id = positive_id(request.match_info.get("torrent_id"), "torrent_id")
        await self.b.userstore(caller.auth_id).SetTorrentLimits(
            pb.SetTorrentLimitsRequest(auth_id=caller.auth_id, torrent_id=torrent_id, clear=True),
            **self.b.opts(),
        )
        return ok({"limits": None})
