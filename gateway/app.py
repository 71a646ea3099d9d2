"""The gateway's app factory: routes, middlewares and the gRPC channels as a cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from gateway import backend, downloads, link_history, sse, views
from gateway.api import Route
from gateway.clients import Backends
from gateway.config import GatewaySettings
from gateway.handlers import Handlers
from gateway.middleware import (
    body_limit,
    cors_preflight,
    error_mapping,
    request_context,
    response_headers,
)
from gateway.openapi import document

MAX_BODY_BYTES = 1024 * 1024
HANDLERS: web.AppKey[Handlers] = web.AppKey("handlers")
# Resources declared with gateway.api.Route, in registration order.
DECLARED: tuple[Route, ...] = (*views.ROUTES, *link_history.ROUTES)


def declared(h: Handlers, declarations: tuple[Route, ...]) -> list[web.RouteDef]:
    """The aiohttp routes of some declarations, in their order."""
    return [web.route(r.method, r.path, partial(r.handler, h)) for r in declarations]


def body_limits(declarations: tuple[Route, ...]) -> dict[tuple[str, str], int]:
    """The routes that read more than MAX_BODY_BYTES: (method, path) -> their cap."""
    return {(r.method, r.path): r.max_body for r in declarations if r.max_body is not None}


def routes(h: Handlers) -> list[web.RouteDef]:
    """Every route of the REST API (the OpenAPI test compares this list with the document)."""
    spec = document()

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(spec)

    return [
        web.get("/health", h.health),
        web.get("/openapi.json", openapi),
        web.get("/api/backend/status", h.status),
        web.post("/api/backend/api-key/ensure-db", h.ensure_db),
        web.post("/api/backend/api-key", partial(backend.register_key, h)),
        web.get("/api/backend/api-key/status", partial(backend.key_status, h)),
        web.get("/api/health/detailed", partial(backend.health_detailed, h)),
        web.delete("/api/backend/api-key", h.remove_key),
        web.post("/api/activity", h.activity),
        web.get("/api/automation/rules", h.list_rules),
        web.post("/api/automation/rules", h.save_rules),
        web.post("/api/automation/rules/preview", h.preview_rule),
        web.get("/api/automation/rules/{id}", h.get_rule),
        web.put("/api/automation/rules/{id}", h.update_rule),
        web.delete("/api/automation/rules/{id}", h.delete_rule),
        web.get("/api/automation/rules/{id}/logs", h.rule_logs),
        web.delete("/api/automation/rules/{id}/logs", h.clear_rule_logs),
        web.post("/api/automation/rules/{id}/run", h.run_rule),
        web.get("/api/automation/presets", h.presets),
        web.get("/api/automation/events", partial(sse.events, h)),
        web.get("/api/automation/torrents", h.torrents),
        web.get("/api/automation/torrents/{torrent_id}/events", h.torrent_events),
        web.get("/api/automation/torrents/{torrent_id}/limits", h.get_limits),
        web.put("/api/automation/torrents/{torrent_id}/limits", h.set_limits),
        web.delete("/api/automation/torrents/{torrent_id}/limits", h.clear_limits),
        web.get("/api/archived-downloads", partial(downloads.list_archived, h)),
        web.post("/api/archived-downloads", partial(downloads.create_archived, h)),
        # The bulk paths before "{id}": aiohttp tries resources in the order they were added.
        web.post("/api/archived-downloads/bulk", partial(downloads.archive_bulk, h)),
        web.delete("/api/archived-downloads/bulk", partial(downloads.delete_archived_bulk, h)),
        web.delete("/api/archived-downloads/{id}", partial(downloads.delete_archived, h)),
        web.post("/api/archived-downloads/{id}/restore", partial(downloads.restore_archived, h)),
        web.get("/api/downloads/protect", partial(downloads.get_protected, h)),
        web.put("/api/downloads/protect", partial(downloads.set_protected, h)),
        web.post("/api/downloads/protect/assert", partial(downloads.assert_protection, h)),
        *declared(h, DECLARED),
    ]


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway application (channels open on startup, close on cleanup)."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            request_context,
            error_mapping,
            body_limit(MAX_BODY_BYTES, body_limits(DECLARED)),
            cors_preflight(settings.frontend_urls),
        ],
    )
    app.on_response_prepare.append(response_headers(settings.frontend_urls))

    async def backends(app: web.Application) -> AsyncIterator[None]:
        b = Backends(
            settings.userstore_addrs, settings.scheduler_addrs, settings.grpc_timeout_seconds
        )
        handlers = Handlers(settings, b)
        app[HANDLERS] = handlers
        app.router.add_routes(routes(handlers))
        yield
        await b.close()

    async def close_streams(app: web.Application) -> None:
        # Event streams never end by themselves; end them so shutdown need not wait for clients.
        handlers = app.get(HANDLERS)
        for task in list(handlers.streams if handlers is not None else ()):
            task.cancel()

    app.cleanup_ctx.append(backends)
    app.on_shutdown.append(close_streams)
    return app
