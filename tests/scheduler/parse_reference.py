"""The oracle for parse's fast paths: TorBox JSON to a Torrent, one converter call per field.

The rules as parse.py states them, written the slow, obvious way (as the code was before its
fast paths); test_parse checks that the fast code gives the same message for any item.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from torbox.automation.v1 import torrent_pb2 as tpb

MAX_ID = 1 << 40
INTS = ("seeds", "peers", "download_speed", "upload_speed", "eta")
INTS_TOO = ("total_uploaded", "total_downloaded")
FLOATS = ("ratio", "availability")
BOOLS = (
    "active",
    "download_present",
    "download_finished",
    "cached",
    "seed_torrent",
    "long_term_seeding",
    "private",
    "airlocked",
    "allow_zipped",
)
TEXTS = ("magnet", "tracker", "original_url")
DATES = ("created_at", "updated_at", "expires_at", "cached_at")


def date(value: Any) -> float | None:
    """Epoch seconds from either date format, None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def flag(value: Any) -> bool | None:
    """A flag; None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return False


def number(value: Any) -> float | int | None:
    """A finite or infinite number from a number or a numeric string; None for NaN or garbage."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        return value  # kept exact for the integer fields
    if isinstance(value, float):
        return value if value == value else None
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
        return result if result == result else None
    return None


def integer(value: Any) -> int | None:
    """An integer (floats truncated); None for NaN, infinity or garbage."""
    result = number(value)
    if result is None or abs(result) == float("inf"):
        return None
    return int(result)


def bounded(value: Any, bits: int) -> int | None:
    """An integer within a signed field of `bits` bits; None past it (garbage, like the rest)."""
    result = integer(value)
    limit = 1 << (bits - 1)
    return result if result is not None and -limit <= result < limit else None


def real(value: Any) -> float | None:
    """A finite float; None for NaN, an infinity, a flag or garbage."""
    if isinstance(value, bool):
        return None
    result = number(value)
    if result is None:
        return None
    return float(result) if math.isfinite(float(result)) else None


def item_id(value: Any) -> int | None:
    """A positive id below MAX_ID, from an int or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 < value < MAX_ID:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < MAX_ID:
        return int(value)
    return None


def optional(item: dict[str, Any]) -> dict[str, Any]:
    """Texts (non-empty strings) and dates."""
    found: dict[str, Any] = {}
    for name in TEXTS:
        if isinstance(item.get(name), str) and item[name] != "":
            found[name] = item[name]
    for name in DATES:
        when = date(item.get(name))
        if when is not None:
            found[name] = when
    return found


def torrent(item: Any) -> tpb.Torrent | None:
    """A mylist item as a message, or None without a usable id."""
    identity = item_id(item.get("id")) if isinstance(item, dict) else None
    if identity is None:
        return None
    found: dict[str, Any] = {}
    for name in (*INTS, *INTS_TOO):
        bits = 32 if name in ("seeds", "peers") else 64
        if bounded(item.get(name), bits) is not None:
            found[name] = bounded(item.get(name), bits)
    for name in BOOLS:
        if flag(item.get(name)) is not None:
            found[name] = flag(item.get(name))
    for name in FLOATS:
        if real(item.get(name)) is not None:
            found[name] = real(item.get(name))
    size = bounded(item.get("size"), 64)
    if size is not None and size > 0:
        found["size"] = size
    progress = real(item.get("progress"))
    if progress is not None:
        found["progress"] = min(1.0, max(0.0, progress))
    files = item.get("files")
    count = (len(files) or None) if isinstance(files, list) else bounded(item.get("file_count"), 32)
    if count is not None and count > 0:
        found["file_count"] = count
    return tpb.Torrent(
        id=identity,
        hash=str(item.get("hash") or "").lower(),
        name=str(item.get("name") or ""),
        download_state=str(item.get("download_state") or ""),
        **found,
        **optional(item),
    )


def queued(item: Any) -> tpb.Torrent | None:
    """A getqueued item as a message flagged queued, or None without a usable id."""
    identity = item_id(item.get("id")) if isinstance(item, dict) else None
    if identity is None:
        return None
    return tpb.Torrent(
        id=identity,
        hash=str(item.get("hash") or "").lower(),
        name=str(item.get("name") or ""),
        download_state="queued",
        queued=True,
        **optional(item),
    )
