"""Every error answer of the REST API, from one table: gRPC status -> HTTP status.

Domain errors raised in the gateway itself carry the same status names, so one table serves both
them and errors coming back from the services. Bodies are ``{"success": false, "error": message,
"code": MACHINE_CODE}`` plus ``field`` for validation errors; never a traceback.
"""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from common import errors

HTTP_STATUS: dict[str, int] = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
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


def domain_response(error: errors.AutomationError) -> web.Response:
    """The answer for a domain error (raised here or rebuilt from a service's status)."""
    status = http_status(error.status)
    message = error.message if status < 500 else _public_message(status)
    response = web.json_response(error_body(message, error.code, error.field), status=status)
    if isinstance(error, errors.RateLimited):
        response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return response


def rpc_response(error: grpc.aio.AioRpcError) -> web.Response:
    """The answer for a failed gRPC call."""
    from common.grpc_client import error_from_rpc

    mapped = error_from_rpc(error)
    status = http_status(error.code().name)
    message = mapped.message if status < 500 else _public_message(status)
    if mapped.status == "UNAVAILABLE" and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        status = 504
    response = web.json_response(error_body(message, mapped.code, mapped.field), status=status)
    if isinstance(mapped, errors.RateLimited):
        response.headers["Retry-After"] = str(max(1, round(mapped.retry_after)))
    return response


def _public_message(status: int) -> str:
    if status == 503:
        return "A backend service is unavailable; try again shortly"
    if status == 504:
        return "A backend service did not answer in time"
    return "Internal error"
