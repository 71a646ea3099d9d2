"""TorBox's item JSON normalised into rows of Torrent's fields, surviving every known quirk.

Dates come as ``...Z`` or (older) ``+00:00`` with microseconds; ``active`` may be a bool, 1 or
"true"; numbers and flags may be null and then stay unset (unknown, never 0 or false), and so
do NaN and infinite numbers; ``download_state`` may be null or carry a parenthesised suffix;
items without an integer id are dropped rather than guessed at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from torbox.automation.v1 import torrent_pb2 as tpb

from common import torrent_rows

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


# The ranges of Torrent's integer fields: a value past its field's range is garbage, unknown like
# any other (as a number it would fail the whole snapshot, every poll, for one bad item).
_MIN64, _MAX64 = torrent_rows.INT64
_MIN32, _MAX32 = torrent_rows.INT32


def _int64(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and _MIN64 <= number <= _MAX64 else None


def _int32(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and _MIN32 <= number <= _MAX32 else None


def _float(value: Any) -> float | None:
    """A finite double, or None: NaN and infinities too are unknown.

    They are garbage, not a ratio every threshold passes; ``x - x == 0.0`` is False for exactly
    those.
    """
    if type(value) is float and value - value == 0.0:
        return value
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if number - number == 0.0 else None


def _bool(value: Any) -> bool | None:
    """A flag, or None when TorBox sent null or nothing."""
    return None if value is None else as_bool(value)


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
    # ASCII only: a superscript two is a digit to isdigit() but not to int(), and fullwidth
    # digits would pass for another item's id.
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < MAX_ID:
        return int(value)
    return None


# One item as a row: a Torrent's values in torrent_rows.FIELDS order, None where a field is
# unset (unknown). The poller sends rows to the userstore as one JSON document (TorrentRows):
# a row is built here in one list display, without a dict or a message per item.
Row = list[Any]
_AT = {name: index for index, name in enumerate(torrent_rows.FIELDS)}
ID = _AT["id"]
QUEUED = _AT["queued"]
ASSET_TYPE = _AT["asset_type"]
# A row of nothing known: every field at its unset value (None, or a message's default).
_UNSET: Row = [c.default for c in torrent_rows.COLUMNS]


def download_row(item: Any, kind: str) -> Row | None:
    """One usenet or web download (mylist of its type) as a row of that type.

    Same fields and quirks as a torrent; the ones a download does not have (seeds, ratio, ...)
    are simply absent and stay unknown.
    """
    row = torrent_row(item)
    if row is not None:
        row[ASSET_TYPE] = _ASSET_TYPES[kind]
    return row


def queued_download_row(item: Any, kind: str) -> Row | None:
    """One getqueued item of a usenet or web-download queue (its id is the queued id)."""
    row = queued_row(item)
    if row is not None:
        row[ASSET_TYPE] = _ASSET_TYPES[kind]
    return row


def torrent(item: Any) -> tpb.Torrent | None:
    """One mylist item as a Torrent message, or None when it has no usable id."""
    row = torrent_row(item)
    return None if row is None else torrent_rows.message(row)


def queued(item: Any) -> tpb.Torrent | None:
    """One getqueued item as a Torrent message flagged queued (its id is the queued id)."""
    row = queued_row(item)
    return None if row is None else torrent_rows.message(row)


def _date(value: Any) -> float | None:
    """A date not already in the cache (or not a string) read the slow way."""
    return parse_date(value) if type(value) is str else None


def torrent_row(item: Any) -> Row | None:
    """One mylist item as a row, or None when it has no usable id.

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
    hash_, name, state = get("hash"), get("name"), get("download_state")
    size = get("size")
    if type(size) is not int or size > _MAX64:
        size = _int64(size)
    progress = get("progress")
    if type(progress) is not float or progress - progress != 0.0:
        progress = _float(progress)
    files = get("files")
    # An empty file list is "not known yet", never "no files".
    file_count = (len(files) or None) if isinstance(files, list) else _int32(get("file_count"))
    dates = _DATE_CACHE
    # Each value: the well-formed type taken as it is, its converter called for anything else
    # (null, text, wrong types: unset, never 0). Dates repeat from poll to poll: the cache
    # answers most. The order is torrent_rows.FIELDS (a test checks it against the message).
    # fmt: off
    return [
        torrent_id,
        (hash_ if type(hash_) is str else str(hash_ or "")).lower(),
        name if type(name) is str else str(name or ""),
        v if type(v := get("magnet")) is str and v else None,
        size if size is not None and size > 0 else None,
        v if (v := get("active")) is True or v is False else _bool(v),
        d if type(v := get("created_at")) is str and (d := dates.get(v, _MISS)) is not _MISS
        else _date(v),
        d if type(v := get("updated_at")) is str and (d := dates.get(v, _MISS)) is not _MISS
        else _date(v),
        state if type(state) is str else str(state or ""),
        v if type(v := get("seeds")) is int and -_MAX32 <= v <= _MAX32 else _int32(v),
        v if type(v := get("peers")) is int and -_MAX32 <= v <= _MAX32 else _int32(v),
        v if type(v := get("ratio")) is float and v - v == 0.0 else _float(v),
        None if progress is None else min(1.0, max(0.0, progress)),
        v if type(v := get("download_speed")) is int and -_MAX64 <= v <= _MAX64 else _int64(v),
        v if type(v := get("upload_speed")) is int and -_MAX64 <= v <= _MAX64 else _int64(v),
        v if type(v := get("eta")) is int and -_MAX64 <= v <= _MAX64 else _int64(v),
        d if type(v := get("expires_at")) is str and (d := dates.get(v, _MISS)) is not _MISS
        else _date(v),
        v if (v := get("download_present")) is True or v is False else _bool(v),
        v if (v := get("download_finished")) is True or v is False else _bool(v),
        file_count if file_count is not None and file_count > 0 else None,
        v if type(v := get("availability")) is float and v - v == 0.0 else _float(v),
        v if type(v := get("tracker")) is str and v else None,
        v if type(v := get("total_uploaded")) is int and -_MAX64 <= v <= _MAX64 else _int64(v),
        v if type(v := get("total_downloaded")) is int and -_MAX64 <= v <= _MAX64 else _int64(v),
        v if (v := get("cached")) is True or v is False else _bool(v),
        d if type(v := get("cached_at")) is str and (d := dates.get(v, _MISS)) is not _MISS
        else _date(v),
        v if (v := get("seed_torrent")) is True or v is False else _bool(v),
        v if (v := get("long_term_seeding")) is True or v is False else _bool(v),
        v if (v := get("private")) is True or v is False else _bool(v),
        False,
        v if (v := get("airlocked")) is True or v is False else _bool(v),
        v if (v := get("allow_zipped")) is True or v is False else _bool(v),
        v if type(v := get("original_url")) is str and v else None,
        tpb.ASSET_TYPE_UNSPECIFIED,
    ]
    # fmt: on


_TEXTS = ("magnet", "tracker", "original_url")
_DATES = ("created_at", "updated_at", "expires_at", "cached_at")


def queued_row(item: Any) -> Row | None:
    """One getqueued item as a row flagged queued (its id is the queued id)."""
    if not isinstance(item, dict):
        return None
    queued_id = _id(item.get("id"))
    if queued_id is None:
        return None
    # The queued list says nothing of size, seeds, flags or progress: they stay unknown.
    row = _UNSET.copy()
    row[ID] = queued_id
    row[_AT["hash"]] = str(item.get("hash") or "").lower()
    row[_AT["name"]] = str(item.get("name") or "")
    row[_AT["download_state"]] = "queued"
    row[QUEUED] = True
    for name in _TEXTS:
        text = item.get(name)
        if isinstance(text, str) and text != "":
            row[_AT[name]] = text
    for name in _DATES:
        row[_AT[name]] = parse_date(item.get(name))
    return row
