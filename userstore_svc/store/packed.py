"""A torrent row's packed value: the fields no SQL reads, as one versioned JSON array."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

# The first element of every array. A later layout gets a new number, and rows written under an
# earlier one are still read (upgraded when decoded): migrations write layouts, too.
LAYOUT = 1
# The state's fields kept as real columns, for the SQL that reads them: pruning (present,
# removed_at and its index) and one torrent's history (samples, observed_since). Bytes have no
# JSON form anyway.
COLUMNS = ("present", "removed_at", "observed_since", "samples")
# Layout 1, by the models' field names (a test holds the models to them): every snapshot field,
# then every state field but the snapshot and the columns.
SNAPSHOT_FIELDS_1 = (
    "id",
    "hash",
    "name",
    "magnet",
    "size",
    "active",
    "created_at",
    "updated_at",
    "download_state",
    "seeds",
    "peers",
    "ratio",
    "progress",
    "download_speed",
    "upload_speed",
    "eta",
    "expires_at",
    "download_present",
    "download_finished",
    "file_count",
    "availability",
    "tracker",
    "total_uploaded",
    "total_downloaded",
    "cached",
    "cached_at",
    "seed_torrent",
    "long_term_seeding",
    "private",
    "queued",
    "airlocked",
    "allow_zipped",
    "original_url",
    "kind",
)
STATE_FIELDS_1 = (
    "status",
    "first_seen_at",
    "last_seen_at",
    "present",
    "removed_at",
    "missing_since",
    "observed_since",
    "last_download_activity_at",
    "last_upload_activity_at",
    "stalled_since",
    "idle_excluded_seconds",
    "stall_count",
    "downloading_started_at",
    "seeding_started_at",
    "seeding_seconds",
    "seeding_run_since",
    "downloading_seconds",
    "downloading_run_since",
    "active_seconds",
    "active_run_since",
    "max_download_speed",
    "samples",
    "tracked_since",
    "whole_life",
)
PACKED_1 = (*SNAPSHOT_FIELDS_1, *(f for f in STATE_FIELDS_1 if f not in COLUMNS))
# Written by the standard library's json, for a value orjson would not keep exactly.
_EXACT = b"S"


def pack(values: Sequence[Any]) -> bytes:
    """`values` (the layout number, then the layout's fields) as one stored value.

    orjson writes a non-finite float as null, where the value is not unknown, and refuses an
    integer wider than 64 bits: a value whose nulls are not exactly its Nones (or that orjson
    refuses) is written by the standard library instead, which keeps both. A text containing
    "null" takes that path too, harmlessly.
    """
    try:
        blob = orjson.dumps(values)
    except orjson.JSONEncodeError:
        blob = b""
    if not blob or blob.count(b"null") != values.count(None):
        blob = _EXACT + json.dumps(values, allow_nan=True).encode()
    return blob


def unpack(blob: bytes) -> list[Any]:
    """A stored value's fields in the current layout, the layout number first."""
    try:
        values: list[Any] = orjson.loads(blob)
    except orjson.JSONDecodeError:
        # Never parsed by orjson: it reads an integer wider than 64 bits as a float.
        if blob[:1] != _EXACT:
            raise
        values = json.loads(blob[1:])
    if values[0] != LAYOUT:
        raise ValueError(f"unknown torrent row layout {values[0]!r}")
    return values
