"""The gateway's app factory: routes, middlewares and the gRPC channels as a cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from gateway import (
    backend,
    console,
    downloads,
    link_history,
    rules,
    sse,
    tags,
    torrents,
    uploads,
    views,
)
from gateway.api import Route
from gateway.clients import Backends
from gateway.config import GatewaySettings
from gateway.handlers import Handlers
from gateway.limiter import ClientLimiter
from gateway.middleware import (
    body_deadline,
    body_limit,
    cors_preflight,
    error_mapping,
    request_context,
    response_headers,
)
from gateway.openapi import document

MAX_BODY_BYTES = 1024 * 1024
HANDLERS: web.AppKey[Handlers] = web.AppKey("handlers")


async def _openapi(h: Handlers, request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


ROUTES: tuple[Route, ...] = (
    *backend.ROUTES,
    Route(
        "GET",
        "/openapi.json",
        _openapi,
        "This document",
        errors=(),
        auth=False,
        tag="system",
    ),
    *rules.ROUTES,
    *sse.ROUTES,
    *torrents.ROUTES,
    *downloads.ROUTES,
    *tags.ROUTES,
    *views.ROUTES,
    *link_history.ROUTES,
    *uploads.ROUTES,
)
"""Every route in the order aiohttp tries them (a literal path before a "{id}" one)."""

DOCUMENT = document(ROUTES)


def body_limits(declarations: tuple[Route, ...]) -> dict[tuple[str, str], int]:
    """The routes that read more than MAX_BODY_BYTES: (method, path) -> their own cap."""
    return {(r.method, r.path): r.max_body for r in declarations if r.max_body is not None}


def routes(h: Handlers) -> list[web.RouteDef]:
    """Every route of the REST API, bound to the shared handler state."""
    return [web.route(r.method, r.path, partial(r.handler, h)) for r in ROUTES]


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway application (channels open on startup, close on cleanup)."""
    limiter = ClientLimiter(settings)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            request_context,
            limiter.middleware(),
            error_mapping,
            body_limit(MAX_BODY_BYTES, body_limits(ROUTES)),
            body_deadline(settings.body_timeout_seconds),
            cors_preflight(settings.frontend_urls),
        ],
    )
    app.on_response_prepare.append(response_headers(settings.frontend_urls))

    async def backends(app: web.Application) -> AsyncIterator[None]:
        b = Backends(
            settings.userstore_addrs, settings.scheduler_addrs, settings.grpc_timeout_seconds
        )
        handlers = Handlers(settings, b, limiter)
        app[HANDLERS] = handlers
        app.router.add_routes(routes(handlers))
        app.router.add_routes(console.routes())
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
