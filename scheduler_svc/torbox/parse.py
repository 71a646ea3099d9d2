"""TorBox's torrent JSON normalised into the Torrent message, surviving every known quirk.

Dates come as ``...Z`` or (older) ``+00:00`` with microseconds; ``active`` may be a bool, 1 or
"true"; numbers and flags may be null and then stay unset (unknown, never 0 or false);
``download_state`` may be null or carry a parenthesised suffix; items without an integer id are
dropped rather than guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
# bool never passes as an int): a poll converts ~25 values per torrent. Null, NaN and garbage are
# None: unknown, never 0.
def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number == number and abs(number) != float("inf") else None
    return None


def _float(value: Any) -> float | None:
    if type(value) is float and value == value:
        return value
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number else None
    return None


def _bool(value: Any) -> bool | None:
    """A flag, or None when TorBox sent null or nothing."""
    return None if value is None else as_bool(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


# Ids at or past this would leave their type's key space in the userstore (8 digits in 2026).
MAX_ID = 1 << 40
_ASSET_TYPES = {
    "torrent": tpb.ASSET_TYPE_TORRENT,
    "usenet": tpb.ASSET_TYPE_USENET,
    "webdl": tpb.ASSET_TYPE_WEBDL,
}


def _id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 < value < MAX_ID:
        return value
    if isinstance(value, str) and value.isdigit() and 0 < int(value) < MAX_ID:
        return int(value)
    return None


# A Torrent message's constructor arguments. The poller adds them straight into the snapshot it
# streams (``snapshot.torrents.add(**fields)``): a message built apart would be copied into the
# snapshot and again into the stream's request, about a third of the cost of building it.
Fields = dict[str, Any]


def download_fields(item: Any, kind: str) -> Fields | None:
    """One usenet or web download (mylist of its type) as a Torrent of that type.

    Same fields and quirks as a torrent; the ones a download does not have (seeds, ratio, ...)
    are simply absent and stay unknown.
    """
    fields = torrent_fields(item)
    if fields is not None:
        fields["asset_type"] = _ASSET_TYPES[kind]
    return fields


def queued_download_fields(item: Any, kind: str) -> Fields | None:
    """One getqueued item of a usenet or web-download queue (its id is the queued id)."""
    fields = queued_fields(item)
    if fields is not None:
        fields["asset_type"] = _ASSET_TYPES[kind]
    return fields


def torrent(item: Any) -> tpb.Torrent | None:
    """One mylist item as a Torrent message, or None when it has no usable id."""
    fields = torrent_fields(item)
    return None if fields is None else tpb.Torrent(**fields)


def queued(item: Any) -> tpb.Torrent | None:
    """One getqueued item as a Torrent message flagged queued (its id is the queued id)."""
    fields = queued_fields(item)
    return None if fields is None else tpb.Torrent(**fields)


# The fields converted alike, by the type a well-formed answer carries. Each loop below takes the
# well-formed value as it is and calls its converter only for anything else: a poll converts
# about 25 values per torrent, and the calls were most of the conversion's cost.
_INTS = (
    "seeds",
    "peers",
    "download_speed",
    "upload_speed",
    "eta",
    "total_uploaded",
    "total_downloaded",
)
_FLOATS = ("ratio", "availability")
_BOOLS = (
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
_TEXTS = ("magnet", "tracker", "original_url")
_DATES = ("created_at", "updated_at", "expires_at", "cached_at")


def torrent_fields(item: Any) -> Fields | None:
    """One mylist item as a Torrent's fields, or None when it has no usable id.

    Every value TorBox sent as null (or not at all) stays unset. A size of 0 and an empty file
    list mean the metadata is not known yet (a magnet in metaDL): both stay unset too.
    """
    if not isinstance(item, dict):
        return None
    get = item.get
    torrent_id = get("id")
    if type(torrent_id) is not int or not 0 < torrent_id < MAX_ID:
        torrent_id = _id(torrent_id)
        if torrent_id is None:
            return None
    # Texts are "" for null (a well-formed str taken as it is); every other None leaves its field
    # unset: absent, not 0.
    hash_, name, state = get("hash"), get("name"), get("download_state")
    values: Fields = {
        "id": torrent_id,
        "hash": (hash_ if type(hash_) is str else str(hash_ or "")).lower(),
        "name": name if type(name) is str else str(name or ""),
        "download_state": state if type(state) is str else str(state or ""),
    }
    for name in _INTS:
        value = get(name)
        if type(value) is not int:
            value = _int(value)
            if value is None:
                continue
        values[name] = value
    for name in _BOOLS:
        value = get(name)
        if value is True or value is False:
            values[name] = value
        elif value is not None:
            values[name] = as_bool(value)
    for name in _FLOATS:
        value = get(name)
        if type(value) is not float or value != value:
            value = _float(value)
            if value is None:
                continue
        values[name] = value
    size = get("size")
    if type(size) is not int:
        size = _int(size)
    if size is not None and size > 0:
        values["size"] = size
    progress = get("progress")
    if type(progress) is not float or progress != progress:
        progress = _float(progress)
    if progress is not None:
        values["progress"] = min(1.0, max(0.0, progress))
    files = get("files")
    # An empty file list is "not known yet", never "no files".
    file_count = (len(files) or None) if isinstance(files, list) else _int(get("file_count"))
    if file_count is not None and file_count > 0:
        values["file_count"] = file_count
    _optional_into(get, values)
    return values


def _optional_into(get: Callable[[str], Any], values: Fields) -> None:
    """The optional text and date fields TorBox gave, added to the constructor arguments."""
    for name in _TEXTS:
        text = get(name)
        if isinstance(text, str) and text != "":
            values[name] = text
    cache = _DATE_CACHE
    for name in _DATES:
        text = get(name)
        if text is None:
            continue
        # Dates repeat from poll to poll: the cache answers most without a call.
        date = cache.get(text, _MISS) if type(text) is str else None
        if date is _MISS:
            date = parse_date(text)
        if date is not None:
            values[name] = date


def queued_fields(item: Any) -> Fields | None:
    """One getqueued item as a Torrent's fields, flagged queued (its id is the queued id)."""
    if not isinstance(item, dict):
        return None
    queued_id = _id(item.get("id"))
    if queued_id is None:
        return None
    # The queued list says nothing of size, seeds, flags or progress: they stay unknown.
    values: Fields = {
        "id": queued_id,
        "hash": str(item.get("hash") or "").lower(),
        "name": str(item.get("name") or ""),
        "download_state": "queued",
        "queued": True,
    }
    _optional_into(item.get, values)
    return values
