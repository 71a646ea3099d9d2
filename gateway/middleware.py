"""Middlewares: request ids and access logs, error mapping, body cap, security headers, CORS."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

import grpc
from aiohttp import web
from aiohttp.typedefs import Middleware

from common import errors
from common.grpc_client import error_from_rpc
from common.logs import new_request_id, request_id
from gateway.errors import domain_response, error_body, rpc_response, too_large
from gateway.limiter import ERROR_CODE

log = logging.getLogger("gateway.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID = "request_id"  # where the id is kept on the request, for the response hook
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-site",
}
ALLOWED_HEADERS = "Content-Type, x-api-key, Authorization, x-auth-id, x-request-id"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (kept from X-Request-Id when sane) and log one line for it."""
    incoming = request.headers.get("X-Request-Id", "")
    rid = incoming if _REQUEST_ID.fullmatch(incoming) else new_request_id()
    request[REQUEST_ID] = rid
    token = request_id.set(rid)
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        # The route's template, never the raw path or query: those are the caller's text and
        # may carry a key (and an unmatched path is not worth echoing into the logs).
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(no route)"
        log.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={"status": status, "ms": round((time.monotonic() - started) * 1000, 1)},
        )
        request_id.reset(token)


BODY_LIMIT = "body_limit"  # the cap of this request's route, for the error mapping


def body_limit(max_bytes: int, routes: Mapping[tuple[str, str], int] | None = None) -> Middleware:
    """Refuse a declared body over the cap before reading it (read() enforces it when chunked).

    `routes` gives some routes, by (method, path template), a cap of their own.
    """
    larger = dict(routes or {})

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else ""
        limit = larger.get((request.method, path), max_bytes)
        request[BODY_LIMIT] = limit
        length = request.content_length
        if length is not None and length > limit:
            return too_large(limit)
        if limit != max_bytes:
            # The app's client_max_size is what read() enforces: give this request its own.
            request = request.clone(client_max_size=limit)
            request[BODY_LIMIT] = limit
        return await handler(request)

    return middleware


# TBM features this backend does not provide yet: their routes answer 503, which TBM's frontend
# reads as "feature disabled" (those pages then show nothing, quietly).
NOT_PROVIDED: tuple[tuple[str, str], ...] = (
    ("/api/stremio", "Stremio addons are"),
    ("/api/tmdb", "TMDB credentials are"),
    ("/api/admin", "Administration is"),
)


def not_provided(path: str) -> str | None:
    """The feature a path belongs to when this backend does not provide it, else None."""
    for prefix, feature in NOT_PROVIDED:
        if path == prefix or path.startswith(prefix + "/"):
            return feature
    return None


class BodyTimeout(TimeoutError):
    """The request body did not arrive within the body read timeout.

    A TimeoutError, so aiohttp's lingering read after the answer treats it as its own timeout
    (closes the connection quietly) instead of logging an unhandled exception.
    """


def body_deadline(seconds: float) -> Middleware:
    """Fail the body's reads once `seconds` have passed since the request head arrived.

    A timer, not a wrapped read, so it holds however a route reads its body (whole, streamed or
    multipart): an unfinished body gets BodyTimeout on its pending and later reads.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        content = request.content
        if content.is_eof():
            return await handler(request)

        def expire() -> None:
            if not content.is_eof():
                content.set_exception(BodyTimeout())

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    return middleware


def failure_response(
    request: web.Request, error: errors.AutomationError | grpc.aio.AioRpcError
) -> web.Response:
    """The contract's JSON error for a domain error or a failed backend call (its code logged)."""
    if isinstance(error, errors.AutomationError):
        request[ERROR_CODE] = error.code
        return domain_response(error)
    request[ERROR_CODE] = error_from_rpc(error).code
    return rpc_response(error)


@web.middleware
async def error_mapping(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the contract's JSON error; nothing else ever reaches the client."""
    try:
        return await handler(request)
    except (errors.AutomationError, grpc.aio.AioRpcError) as error:
        return failure_response(request, error)
    except web.HTTPRequestEntityTooLarge:
        return too_large(request.get(BODY_LIMIT))
    except web.HTTPException as error:
        if error.status == 404:
            feature = not_provided(request.path)
            if feature is not None:
                # TBM's pages read a 503 as "feature disabled" and degrade quietly.
                return web.json_response(
                    error_body(f"{feature} not provided by this backend", "FEATURE_NOT_PROVIDED"),
                    status=503,
                )
            # Never the path itself: a key pasted into a URL would come straight back.
            return web.json_response(
                error_body("Endpoint not found", "ENDPOINT_NOT_FOUND"), status=404
            )
        if error.status == 405:
            return web.json_response(
                error_body(f"Method {request.method} not allowed here", "METHOD_NOT_ALLOWED"),
                status=405,
                headers={"Allow": error.headers.get("Allow", "")},
            )
        return web.json_response(
            error_body(error.reason, f"HTTP_{error.status}"), status=error.status
        )
    except BodyTimeout:
        response = web.json_response(
            error_body("The request body did not arrive in time", "BODY_TIMEOUT", "body"),
            status=408,
        )
        response.force_close()
        return response
    except ConnectionError:
        # The client hung up (mid-body, usually): nobody reads this answer, and the access line
        # (499) is all the log needs; a traceback per hang-up would let anyone flood it.
        return web.json_response(
            error_body("Client closed the connection", "CLIENT_CLOSED"), status=499
        )
    except Exception:
        logging.getLogger("gateway").exception("unhandled error")
        return web.json_response(error_body("Internal error", "INTERNAL"), status=500)


def cors_preflight(origins: tuple[str, ...]) -> Middleware:
    """Answer CORS preflight requests for the configured frontend origins (``*``: any)."""
    allow_any = "*" in origins
    allowed = frozenset(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            origin = request.headers.get("Origin")
            if origin is not None and (allow_any or origin in allowed):
                return web.Response(status=204)
            return web.json_response(
                error_body("Origin not allowed", "CORS_ORIGIN_DENIED"), status=403
            )
        return await handler(request)

    return middleware


def response_headers(
    origins: tuple[str, ...],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare hook: security and CORS headers on every answer, streams included."""
    allow_any = "*" in origins
    allowed = frozenset(origins)

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        rid = request.get(REQUEST_ID)
        if isinstance(rid, str):
            response.headers["X-Request-Id"] = rid
            response.headers["X-Correlation-Id"] = rid
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        origin = request.headers.get("Origin")
        if origin is not None and (allow_any or origin in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
            response.headers["Access-Control-Max-Age"] = "600"

    return hook
