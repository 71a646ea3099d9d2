"""What can go wrong talking to TorBox, as a small tree the scheduler can act on.

::

    TorBoxError                     any failure; `code` is TorBox's or ours, `retryable` says
    ├── TorBoxUnavailable           no usable answer: connection refused or reset, timeout,
    │                               502/503/504, an HTML page, JSON that does not parse
    ├── TorBoxRateLimited           HTTP 429; `retry_at` is when the key may be used again
    ├── TorBoxAuthError             the key is refused (401, or 403 NO_AUTH / BAD_TOKEN)
    └── TorBoxApiError              TorBox answered with an error code (ACTIVE_LIMIT,
                                    ITEM_NOT_FOUND, ...), even when it sent it as a 500

Only :class:`TorBoxUnavailable` counts toward the platform-outage breaker; a business error sent
as HTTP 500 is TorBox working, not TorBox down.
"""

from __future__ import annotations


class TorBoxError(Exception):
    """Base of every TorBox failure."""

    retryable = False

    def __init__(self, code: str, message: str = "", *, status: int = 0) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message or code
        self.status = status


class TorBoxUnavailable(TorBoxError):
    """TorBox (or the network to it) gave no usable answer."""

    retryable = True


class TorBoxRateLimited(TorBoxError):
    """TorBox said 429: nothing may be sent with this key before `retry_at` (epoch seconds)."""

    retryable = False

    def __init__(self, retry_at: float, message: str = "") -> None:
        super().__init__("RATE_LIMITED", message, status=429)
        self.retry_at = retry_at


class TorBoxAuthError(TorBoxError):
    """The API key was refused."""


class TorBoxApiError(TorBoxError):
    """TorBox answered with an error code; codes ending in ERROR are its fault and retryable.

    Codes we make up ourselves (VALIDATION_ERROR for a bare 422) pass `retryable` explicitly, so
    TorBox's naming rule is applied only to TorBox's own codes.
    """

    def __init__(
        self, code: str, message: str = "", *, status: int = 0, retryable: bool | None = None
    ) -> None:
        super().__init__(code, message, status=status)
        self.retryable = code.endswith("ERROR") if retryable is None else retryable
