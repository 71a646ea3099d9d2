"""Private files and folders: data and keys readable by the service's own user only."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
# Files a service creates without saying how (SQLite's journals, a library's temporary files)
# get no group or other bits either.
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Make every file and folder this process creates from now on private to its user."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700 folders; an existing folder is left as is."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            with contextlib.suppress(FileExistsError):  # made meanwhile by someone else
                folder.mkdir(mode=DIR_MODE)


def private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 if it does not exist; True if it was created here.

    SQLite creates a database 0644 (less the umask) and gives its -wal and -shm files the
    database's own mode: an empty file created first makes all three private.
    """
    private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(descriptor)
    return True


def open_to_others(path: Path) -> int:
    """The group and other permission bits of `path` (0: private to its owner)."""
    return stat.S_IMODE(path.stat().st_mode) & 0o077
