"""TBM's backend-management routes: health, status, key registration and removal, activity.

TBM's UI registers keys through ensure-db; the other key routes exist for its Next.js server and
operators. The health and status probes answer without a key (they say nothing about any user).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common.auth import auth_id_for, is_valid_api_key
from common.errors import InvalidArgument, UserNotRegistered
from gateway import bodies
from gateway.api import Answer, Ok, Route, answer
from gateway.handlers import VERSION, Handlers, scheduler_totals
from gateway.jsonview import iso


class Health(BaseModel):
    """Readiness (no envelope: TBM's own backend sends none here); 503 lists what is not ready."""

    model_config = ConfigDict(frozen=True)
    status: Literal["healthy", "unhealthy"] = "healthy"
    timestamp: str | None
    # The shards and scheduler replicas that do not report themselves ready.
    notReady: list[str] = []


class Live(BaseModel):
    """Liveness: the gateway process answers (whatever the services behind it do)."""

    model_config = ConfigDict(frozen=True)
    status: Literal["alive"] = "alive"
    timestamp: str | None


class Status(BaseModel):
    """TBM's availability probe (no envelope), with our scheduler and pool figures."""

    model_config = ConfigDict(frozen=True)
    available: bool
    mode: Literal["selfhosted"] = "selfhosted"
    version: str = VERSION
    uptime: float
    scheduler: dict[str, Any] | None
    schedulers: list[dict[str, Any] | None]
    userstores: list[dict[str, Any] | None]
    gateway: dict[str, Any]
    # "ok" when every answering shard's disk takes writes; "failing" when one's does not (its
    # polls are refused and nothing is recorded: see each shard's storage_error).
    storage: Literal["ok", "failing"]


class HealthDetailed(BaseModel):
    """Every shard and scheduler: healthy when all answer, degraded when some do not."""

    model_config = ConfigDict(frozen=True)
    status: Literal["healthy", "degraded"]
    timestamp: str | None
    version: str = VERSION
    uptime: float
    database: dict[str, Any]
    api: dict[str, Any]
    services: dict[str, Any]


class EnsureDb(Answer):
    """The key was validated with TorBox and the user's database exists."""

    authId: str
    dbExists: bool
    wasCreated: bool
    message: str
    reactivated: bool


class Registered(Answer):
    """A key registered (or re-registered)."""

    message: str = "API key registered successfully"
    authId: str


class Removed(Answer):
    """The key, the registry row and the user's database are gone."""

    removed: Literal[True] = True


class KeyStatus(Answer):
    """How many users are active."""

    activeUsers: int


async def health(h: Handlers, request: web.Request) -> web.Response:
    """Readiness: 200 only when every shard and scheduler replica reports itself ready.

    TBM, compose and Kubernetes read a 200 here as "requests will work": a gateway that merely
    runs is not enough (its first ensure-db would fail while the services start).
    """
    waiting = await h.b.not_ready()
    now = iso(time.time())
    if waiting:
        return answer(Health(status="unhealthy", timestamp=now, notReady=waiting), status=503)
    return answer(Health(timestamp=now))


async def live(h: Handlers, request: web.Request) -> web.Response:
    """Liveness: the gateway answers (restarting it would not bring a service back)."""
    return answer(Live(timestamp=iso(time.time())))


async def status(h: Handlers, request: web.Request) -> web.Response:
    """TBM's availability probe, with our scheduler and pool figures."""
    # Asked concurrently: TBM's proxy gives this probe five seconds in all.
    schedulers, shards = await asyncio.gather(h.probe_schedulers(), h.probe_shards())
    return answer(
        Status(
            # TBM reads only this, once per page load, and on false keeps that session in local
            # mode where rule edits are lost: it means "this gateway serves and reaches user
            # data", not "every shard and replica answered" (those are listed below).
            available=any(f is not None for f in shards),
            uptime=time.time() - h.started,
            scheduler=scheduler_totals(schedulers),
            schedulers=schedulers,
            userstores=shards,
            gateway={"sse_streams": len(h.streams)},
            storage="failing" if _storage_failing(shards) else "ok",
        )
    )


def _storage_failing(shards: list[dict[str, Any] | None]) -> bool:
    """Whether an answering shard reports that its disk refuses writes."""
    return any(s is not None and s.get("storage_error") for s in shards)


async def ensure_db(h: Handlers, request: web.Request) -> web.Response:
    """Validate the key with TorBox, register the user, create their database."""
    caller = await h.caller(request)
    result = await h.b.scheduler(caller.auth_id).EnsureUser(
        spb.EnsureUserRequest(api_key=caller.api_key), **h.b.opts(h.settings.ensure_timeout_seconds)
    )
    return answer(
        EnsureDb(
            authId=result.auth_id,
            dbExists=result.db_exists,
            wasCreated=result.was_created,
            message=result.message,
            reactivated=result.reactivated,
        )
    )


async def remove_key(h: Handlers, request: web.Request) -> web.Response:
    """The user removes their key: registry row and database deleted, polling stops."""
    caller = await h.caller(request)
    result = await h.b.scheduler(caller.auth_id).RemoveKey(
        spb.RemoveKeyRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    if not result.removed:
        raise UserNotRegistered()
    return answer(Removed())


async def activity(h: Handlers, request: web.Request) -> web.Response:
    """The web app says the user is around."""
    caller = await h.caller(request)
    await h.b.userstore(caller.auth_id).MarkActivity(
        pb.MarkActivityRequest(auth_id=caller.auth_id), **h.b.opts()
    )
    return answer(Ok())


async def register_key(h: Handlers, request: web.Request) -> web.Response:
    """Validate the key with TorBox and register it (a known user is reactivated)."""
    body = await bodies.read(request, bodies.RegisterKey)
    if not is_valid_api_key(body.apiKey):
        raise InvalidArgument("Invalid API key format", code="INVALID_API_KEY", field="apiKey")
    auth_id = auth_id_for(body.apiKey)
    result = await h.b.scheduler(auth_id).EnsureUser(
        spb.EnsureUserRequest(api_key=body.apiKey), **h.b.opts(h.settings.ensure_timeout_seconds)
    )
    return answer(Registered(authId=result.auth_id))


async def key_status(h: Handlers, request: web.Request) -> web.Response:
    """How many users are active (every shard's count added up)."""
    shards = await h.probe_shards()
    return answer(KeyStatus(activeUsers=sum(int(s["users_active"]) for s in shards if s)))


async def health_detailed(h: Handlers, request: web.Request) -> web.Response:
    """Healthy when every shard and scheduler answers; degraded when some do not."""
    schedulers, shards = await asyncio.gather(h.probe_schedulers(), h.probe_shards())
    stores_ok = all(s is not None for s in shards) and not _storage_failing(shards)
    polling_ok = all(s is not None for s in schedulers)
    return answer(
        HealthDetailed(
            status="healthy" if stores_ok and polling_ok else "degraded",
            timestamp=iso(time.time()),
            uptime=time.time() - h.started,
            database={
                "status": "healthy" if stores_ok else "unhealthy",
                "shards": len(shards),
                "answering": sum(1 for s in shards if s is not None),
                "storage": "failing" if _storage_failing(shards) else "ok",
            },
            api={"status": "configured" if polling_ok else "unhealthy"},
            services={
                "userstores": "healthy" if stores_ok else "degraded",
                "pollingScheduler": "running" if polling_ok else "not answering",
            },
        )
    )


_KEY = "/api/backend/api-key"

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/health",
        health,
        "Readiness: 200 when every service behind the gateway is ready, else 503 naming them",
        answer=Health,
        errors=(),
        auth=False,
        tag="system",
    ),
    Route("GET", "/live", live, "Liveness", answer=Live, errors=(), auth=False, tag="system"),
    Route(
        "GET",
        "/api/backend/status",
        status,
        "Availability and service figures (TBM reads `available`)",
        answer=Status,
        errors=(),
        auth=False,
        tag="system",
    ),
    Route(
        "POST",
        _KEY + "/ensure-db",
        ensure_db,
        "Validate the key with TorBox, register the user, create their database",
        answer=EnsureDb,
        errors=(400, 401, 403, 429, 503, 504),
        tag="keys",
    ),
    Route(
        "POST",
        _KEY,
        register_key,
        "Register (or re-register) a key: validated with TorBox, a known user reactivated",
        body=bodies.RegisterKey,
        answer=Registered,
        errors=(400, 429, 503, 504),
        auth=False,
        tag="keys",
    ),
    Route(
        "GET",
        _KEY + "/status",
        key_status,
        "How many users are active",
        answer=KeyStatus,
        errors=(503,),
        auth=False,
        tag="keys",
    ),
    Route(
        "GET",
        "/api/health/detailed",
        health_detailed,
        "Health of every shard and scheduler (degraded when some do not answer)",
        answer=HealthDetailed,
        errors=(),
        auth=False,
        tag="system",
    ),
    Route(
        "DELETE",
        _KEY,
        remove_key,
        "Remove the key: registry row and database deleted, polling stops",
        answer=Removed,
        tag="keys",
    ),
    Route(
        "POST", "/api/activity", activity, "Mark the user as recently seen", answer=Ok, tag="keys"
    ),
)
