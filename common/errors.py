"""The one error vocabulary of the project, and its single mapping to gRPC status codes.

Every expected failure is raised as one of these and turned into a gRPC status by the server
interceptor (:mod:`common.grpc_server`); a client rebuilds it with :mod:`common.grpc_client`, and
the gateway turns the status into HTTP through one table. This module imports no transport, so the
pure core raises these too.
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
        └── StorageUnavailable           UNAVAILABLE        the disk is full, read-only or failing
"""

from __future__ import annotations

CODE_KEY = "error-code"
FIELD_KEY = "error-field"
RETRY_KEY = "retry-after"


class AutomationError(Exception):
    """Base of every expected failure; `code` is a stable machine-readable name."""

    status = "INTERNAL"
    default_code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field


class InvalidArgument(AutomationError):
    """The request is malformed; `field` says which part and the message says why."""

    status = "INVALID_ARGUMENT"
    default_code = "VALIDATION_ERROR"


class NotFound(AutomationError):
    """The thing asked for does not exist for this user."""

    status = "NOT_FOUND"
    default_code = "NOT_FOUND"


class UserNotRegistered(NotFound):
    """The key's user never called ensure-db (or removed their key)."""

    default_code = "USER_NOT_REGISTERED"

    def __init__(self) -> None:
        super().__init__("User not registered")


class AlreadyExists(AutomationError):
    """Creating something that is already there."""

    status = "ALREADY_EXISTS"
    default_code = "ALREADY_EXISTS"


class PermissionDenied(AutomationError):
    """The caller may not do this (a protected torrent, another user's data)."""

    status = "PERMISSION_DENIED"
    default_code = "PERMISSION_DENIED"


class FailedPrecondition(AutomationError):
    """The system is not in a state that allows this now (a damaged database, a held user)."""

    status = "FAILED_PRECONDITION"
    default_code = "FAILED_PRECONDITION"


class RateLimited(AutomationError):
    """Too many requests; retry after `retry_after` seconds."""

    status = "RESOURCE_EXHAUSTED"
    default_code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(AutomationError):
    """A dependency (TorBox, a userstore shard, the disk) cannot answer right now."""

    status = "UNAVAILABLE"
    default_code = "UNAVAILABLE"


class StorageUnavailable(Unavailable):
    """The disk refuses (full, read-only, I/O errors): nothing was written; retry later."""

    default_code = "STORAGE_UNAVAILABLE"


def trailing_metadata(error: AutomationError) -> tuple[tuple[str, str], ...]:
    """The metadata that carries an error's machine code (and field, and retry delay)."""
    items = [(CODE_KEY, error.code)]
    if error.field:
        items.append((FIELD_KEY, error.field))
    if isinstance(error, RateLimited):
        items.append((RETRY_KEY, f"{error.retry_after:.3f}"))
    return tuple(items)


BY_STATUS: dict[str, type[AutomationError]] = {
    kind.status: kind
    for kind in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        FailedPrecondition,
        Unavailable,
    )
}
