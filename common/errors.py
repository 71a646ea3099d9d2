"""The one error vocabulary of the project, and its single mapping to gRPC status codes.

Every expected failure is raised as one of these and turned into a gRPC status by the server
interceptor (:mod:`common.grpc_server`); the gateway turns that status into HTTP through one table.
The machine code and the offending field travel in trailing metadata (``error-code``,
``error-field``)::

    AutomationError                      INTERNAL
    ├── InvalidArgument                  INVALID_ARGUMENT   bad input; names the field
    ├── NotFound                         NOT_FOUND
    │   └── UserNotRegistered            NOT_FOUND          no ensure-db for this key yet
    ├── AlreadyExists                    ALREADY_EXISTS
    ├── PermissionDenied                 PERMISSION_DENIED
    ├── FailedPrecondition               FAILED_PRECONDITION
    ├── RateLimited                      RESOURCE_EXHAUSTED carries retry_after seconds
    └── Unavailable                      UNAVAILABLE        TorBox, a shard or a database is down
"""

from __future__ import annotations

import grpc

CODE_KEY = "error-code"
FIELD_KEY = "error-field"
RETRY_KEY = "retry-after"


class AutomationError(Exception):
    """Base of every expected failure; `code` is a stable machine-readable name."""

    status = grpc.StatusCode.INTERNAL
    default_code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field


class InvalidArgument(AutomationError):
    """The request is malformed; `field` says which part and the message says why."""

    status = grpc.StatusCode.INVALID_ARGUMENT
    default_code = "VALIDATION_ERROR"


class NotFound(AutomationError):
    """The thing asked for does not exist for this user."""

    status = grpc.StatusCode.NOT_FOUND
    default_code = "NOT_FOUND"


class UserNotRegistered(NotFound):
    """The key's user never called ensure-db (or removed their key)."""

    default_code = "USER_NOT_REGISTERED"

    def __init__(self) -> None:
        super().__init__("User not registered")


class AlreadyExists(AutomationError):
    """Creating something that is already there."""

    status = grpc.StatusCode.ALREADY_EXISTS
    default_code = "ALREADY_EXISTS"


class PermissionDenied(AutomationError):
    """The caller may not do this (a protected torrent, another user's data)."""

    status = grpc.StatusCode.PERMISSION_DENIED
    default_code = "PERMISSION_DENIED"


class FailedPrecondition(AutomationError):
    """The system is not in a state that allows this now (a damaged database, a held user)."""

    status = grpc.StatusCode.FAILED_PRECONDITION
    default_code = "FAILED_PRECONDITION"


class RateLimited(AutomationError):
    """Too many requests; retry after `retry_after` seconds."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(AutomationError):
    """A dependency (TorBox, a userstore shard, the disk) cannot answer right now."""

    status = grpc.StatusCode.UNAVAILABLE
    default_code = "UNAVAILABLE"


def trailing_metadata(error: AutomationError) -> tuple[tuple[str, str], ...]:
    """The metadata that carries an error's machine code (and field, and retry delay)."""
    items = [(CODE_KEY, error.code)]
    if error.field:
        items.append((FIELD_KEY, error.field))
    if isinstance(error, RateLimited):
        items.append((RETRY_KEY, f"{error.retry_after:.3f}"))
    return tuple(items)


_BY_STATUS: dict[grpc.StatusCode, type[AutomationError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> AutomationError:
    """Rebuild the domain error a peer raised from its status and trailing metadata."""
    meta = {key: value for key, value in (error.trailing_metadata() or ()) if isinstance(value, str)}
    status = error.code()
    message = error.details() or status.name
    code = meta.get(CODE_KEY)
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimited(message, retry_after=float(meta.get(RETRY_KEY, "1")), code=code)
    if code == UserNotRegistered.default_code:
        return UserNotRegistered()
    kind = _BY_STATUS.get(status, AutomationError)
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        code = code or "TIMEOUT"
    return kind(message, code=code, field=meta.get(FIELD_KEY))
