"""Every error answer of the REST API, from one table: gRPC status -> HTTP status.

Domain errors raised in the gateway itself carry the same status names, so one table serves both
them and errors coming back from the services. Bodies are ``{"success": false, "error": message,
"code": MACHINE_CODE}`` plus ``field`` for validation errors; never a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import grpc
from aiohttp import web

from common import errors
from common.grpc_client import error_from_rpc

log = logging.getLogger("gateway.errors")
MAX_MESSAGE = 500

HTTP_STATUS: dict[str, int] = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    # A state that forbids this now (inactive key, missing database): not the caller's input,
    # so not a 400 (every 400 names a field of the request).
    "FAILED_PRECONDITION": 409,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
}


class Unauthenticated(errors.AutomationError):
    """No API key in the request."""

    status = "UNAUTHENTICATED"
    default_code = "API_KEY_REQUIRED"


def http_status(status_name: str) -> int:
    """The HTTP status for a gRPC status name."""
    return HTTP_STATUS.get(status_name, 500)


def error_body(message: str, code: str, field: str | None = None) -> dict[str, Any]:
    """The JSON body of every error answer."""
    body: dict[str, Any] = {"success": False, "error": message, "code": code}
    if field:
        body["field"] = field
    return body


def too_large(limit: int | None = None) -> web.Response:
    """The answer for a request body over its cap (1 MiB unless the route has its own)."""
    mib = (limit or 1024 * 1024) / (1024 * 1024)
    return web.json_response(
        error_body(f"Request body too large (limit {mib:g} MiB)", "PAYLOAD_TOO_LARGE", "body"),
        status=413,
    )


def domain_response(error: errors.AutomationError) -> web.Response:
    """The answer for a domain error raised in the gateway itself."""
    return _answer(error, http_status(error.status))


def rpc_response(error: grpc.aio.AioRpcError) -> web.Response:
    """The answer for a failed gRPC call: the service's domain error, through the same table."""
    mapped = error_from_rpc(error)
    code = error.code()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and not _from_service(error):
        # gRPC's own limits (a message or trailer too large) also say RESOURCE_EXHAUSTED; that
        # is no rate limit, and only an oversized request can cause it here.
        mapped = errors.InvalidArgument(
            "The request is too large for the backend to process",
            code="REQUEST_TOO_LARGE",
            field="body",
        )
        return _answer(mapped, http_status(mapped.status))
    status = http_status(code.name)
    if status >= 500:
        log.warning(
            "backend call failed", extra={"grpc_status": code.name, "error_code": mapped.code}
        )
    return _answer(mapped, status)


def _from_service(error: grpc.aio.AioRpcError) -> bool:
    """Whether a status was raised by one of our services (they always send a machine code)."""
    return any(key == errors.CODE_KEY for key, _ in error.trailing_metadata() or ())


def _answer(error: errors.AutomationError, status: int) -> web.Response:
    message = _clip(error.message) if status < 500 else _public_message(status)
    response = web.json_response(error_body(message, error.code, error.field), status=status)
    if isinstance(error, errors.RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return response


def _clip(message: str) -> str:
    """Messages may quote the caller's input; a human needs the start of it, not a megabyte."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _public_message(status: int) -> str:
    if status == 503:
        return "A backend service is unavailable; try again shortly"
    if status == 504:
        return "A backend service did not answer in time"
    return "Internal error"
