"""Disk faults (full, read-only, I/O errors) mapped once to StorageUnavailable, and their health."""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from collections.abc import Callable

from common.errors import StorageUnavailable

log = logging.getLogger(__name__)

# SQLite's primary result codes (extended codes keep these names as prefixes) that mean the disk,
# not the request, is at fault.
DISK_CODES = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EIO})


def is_disk_error(exc: BaseException) -> bool:
    """Whether `exc` is the disk refusing (full, read-only, failing), not a bad request."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(DISK_CODES)
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


class StorageHealth:
    """Whether writes work: failing from a disk error until the next write succeeds.

    `changed(ok)` is called on each flip, so readiness follows (a shard whose writes fail is not
    ready: its polls are refused and nothing is recorded).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.error = ""
        self.failing_since: float | None = None
        self.failures = 0
        self.changed: Callable[[bool], None] | None = None

    @property
    def ok(self) -> bool:
        """No disk error since the last successful write."""
        return self.failing_since is None

    def translate(self, exc: BaseException) -> StorageUnavailable | None:
        """The domain error for a disk fault (logged with the original), or None."""
        if isinstance(exc, StorageUnavailable):
            return exc
        if not is_disk_error(exc):
            return None
        original = str(exc) or type(exc).__name__
        log.error("storage failed: %s", original, exc_info=exc, extra={"reason": original})
        self.failures += 1
        self.error = original
        if self.failing_since is None:
            self.failing_since = self.clock()
            if self.changed is not None:
                self.changed(False)
        return StorageUnavailable(
            f"storage unavailable ({original}): free disk space or make the data directory "
            "writable; nothing was recorded, retry later"
        )

    def write_succeeded(self) -> None:
        """A write committed: the disk takes writes again."""
        if self.failing_since is None:
            return
        log.warning(
            "storage recovered: writes succeed again",
            extra={"failed_for": round(self.clock() - self.failing_since, 1)},
        )
        self.failing_since = None
        self.error = ""
        if self.changed is not None:
            self.changed(True)
