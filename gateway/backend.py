"""TBM's backend-management routes: key registration and count, and the detailed health probe.

TBM's own UI registers keys through ensure-db; these exist for its Next.js server and operators.
The detailed health probe answers without a key (it says nothing about any user).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from torbox.automation.v1 import scheduler_service_pb2 as spb

from common.auth import auth_id_for, is_valid_api_key
from common.errors import InvalidArgument
from gateway import bodies
from gateway.handlers import VERSION, Handlers, ok
from gateway.jsonview import iso


async def register_key(h: Handlers, request: web.Request) -> web.Response:
    """Validate the key with TorBox and register it (a known user is reactivated)."""
    body = await bodies.read(request, bodies.RegisterKey)
    if not is_valid_api_key(body.apiKey):
        raise InvalidArgument("Invalid API key format", code="INVALID_API_KEY", field="apiKey")
    auth_id = auth_id_for(body.apiKey)
    result = await h.b.scheduler(auth_id).EnsureUser(
        spb.EnsureUserRequest(api_key=body.apiKey), **h.b.opts(30.0)
    )
    return ok({"message": "API key registered successfully", "authId": result.auth_id})


async def key_status(h: Handlers, request: web.Request) -> web.Response:
    """How many users are active (every shard's count added up)."""
    shards = await h.probe_shards()
    return ok({"activeUsers": sum(int(s["users_active"]) for s in shards if s is not None)})


async def health_detailed(h: Handlers, request: web.Request) -> web.Response:
    """Healthy when every shard and scheduler answers; degraded when some do not."""
    schedulers, shards = await asyncio.gather(h.probe_schedulers(), h.probe_shards())
    stores_ok = all(s is not None for s in shards)
    polling_ok = all(s is not None for s in schedulers)
    return web.json_response(
        {
            "status": "healthy" if stores_ok and polling_ok else "degraded",
            "timestamp": iso(time.time()),
            "version": VERSION,
            "uptime": time.time() - h.started,
            "database": {
                "status": "healthy" if stores_ok else "unhealthy",
                "shards": len(shards),
                "answering": sum(1 for s in shards if s is not None),
            },
            "api": {"status": "configured" if polling_ok else "unhealthy"},
            "services": {
                "userstores": "healthy" if stores_ok else "degraded",
                "pollingScheduler": "running" if polling_ok else "not answering",
            },
        }
    )
