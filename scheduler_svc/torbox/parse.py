"""TorBox's torrent JSON normalised into the Torrent message, surviving every known quirk.

Dates come as ``...Z`` or (older) ``+00:00`` with microseconds; ``active`` may be a bool, 1 or
"true"; numbers may be null; ``download_state`` may be null or carry a parenthesised suffix;
items without an integer id are dropped rather than guessed at.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from torbox.automation.v1 import torrent_pb2 as tpb

log = logging.getLogger(__name__)

_DATE_CACHE: dict[str, float | None] = {}
_DATE_CACHE_MAX = 500_000
_TRUE_STRINGS = frozenset({"true", "1", "yes"})
_MISS = object()


def parse_date(value: Any) -> float | None:
    """Epoch seconds from a TorBox date (both formats), None for null or garbage."""
    if not isinstance(value, str) or not value:
        return None
    cached = _DATE_CACHE.get(value, _MISS)
    if cached is not _MISS:
        return cached  # type: ignore[return-value]
    result: float | None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # TorBox dates are UTC even when an older response leaves the offset out.
        result = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        result = None
    if len(_DATE_CACHE) >= _DATE_CACHE_MAX:
        _DATE_CACHE.clear()
    _DATE_CACHE[value] = result
    return result


def as_bool(value: Any) -> bool:
    """TorBox's booleans, which are not always booleans."""
    if value is True or value is False:
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return False


# Each converter first checks for the type a well-formed answer has (an exact type check, so a
# bool never passes as an int): a poll converts ~25 values per torrent.
def _int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def _float(value: Any) -> float:
    if type(value) is float and value == value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def torrent(item: Any) -> tpb.Torrent | None:
    """One mylist item as a Torrent message, or None when it has no usable id."""
    if not isinstance(item, dict):
        return None
    torrent_id = _id(item.get("id"))
    if torrent_id is None:
        return None
    files = item.get("files")
    return tpb.Torrent(
        id=torrent_id,
        hash=str(item.get("hash") or "").lower(),
        name=str(item.get("name") or ""),
        size=_int(item.get("size")),
        active=as_bool(item.get("active")),
        download_state=str(item.get("download_state") or ""),
        seeds=_int(item.get("seeds")),
        peers=_int(item.get("peers")),
        ratio=_float(item.get("ratio")),
        progress=min(1.0, max(0.0, _float(item.get("progress")))),
        download_speed=_int(item.get("download_speed")),
        upload_speed=_int(item.get("upload_speed")),
        eta=_int(item.get("eta")),
        download_present=as_bool(item.get("download_present")),
        download_finished=as_bool(item.get("download_finished")),
        file_count=len(files) if isinstance(files, list) else _int(item.get("file_count")),
        availability=_float(item.get("availability")),
        total_uploaded=_int(item.get("total_uploaded")),
        total_downloaded=_int(item.get("total_downloaded")),
        cached=as_bool(item.get("cached")),
        seed_torrent=as_bool(item.get("seed_torrent")),
        long_term_seeding=as_bool(item.get("long_term_seeding")),
        private=as_bool(item.get("private")),
        **_optional(item),
    )


def _optional(item: dict[str, Any]) -> dict[str, Any]:
    """The optional fields, as constructor arguments (None leaves a field unset: absent, not 0)."""
    return {
        "magnet": _str(item.get("magnet")),
        "tracker": _str(item.get("tracker")),
        "created_at": parse_date(item.get("created_at")),
        "updated_at": parse_date(item.get("updated_at")),
        "expires_at": parse_date(item.get("expires_at")),
        "cached_at": parse_date(item.get("cached_at")),
    }


def queued(item: Any) -> tpb.Torrent | None:
    """One getqueued item as a Torrent message flagged queued (its id is the queued id)."""
    if not isinstance(item, dict):
        return None
    queued_id = _id(item.get("id"))
    if queued_id is None:
        return None
    return tpb.Torrent(
        id=queued_id,
        hash=str(item.get("hash") or "").lower(),
        name=str(item.get("name") or ""),
        download_state="queued",
        queued=True,
        **_optional(item),
    )
