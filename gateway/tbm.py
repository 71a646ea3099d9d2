"""How TBM's JavaScript reads JSON values (truthiness, String(), dates), mirrored where we must.

TBM's routes test bodies with JavaScript's rules: ``{}`` and ``[]`` are truthy, ``0`` and ``""``
are not, and a number given for a text column is stored as its text. Keeping those rules keeps
every body TBM's frontend sends meaning what it meant there.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from gateway.inputs import INT64_MAX

_ID = re.compile(r"[0-9]{1,19}")  # ASCII only: "²".isdigit() is True


def falsy(value: Any) -> bool:
    """Whether JavaScript would read the JSON value as false (null, false, 0, "")."""
    if value is None or value is False or value == "":
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def number_text(value: float) -> str:
    """A JSON number as JavaScript's String() writes it (integers without ".0")."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e21):
        return str(int(value))
    return repr(value)


def text(value: Any) -> str | None:
    """A string, or a number as its text (what SQLite stores for TBM); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_text(value)
    return None


def positive_int(value: Any) -> int | None:
    """A positive 64-bit integer given as a number or as ASCII digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _ID.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and 0 < value <= INT64_MAX:
        return value
    return None


def parse_time(value: Any) -> float | None:
    """A time TBM's frontend could have sent, in seconds; None when it cannot be read.

    ISO 8601 (``2026-08-20T10:00:00.000Z``, what the frontend writes) or SQLite's
    ``2026-08-20 10:00:00``, read as UTC without a zone as the frontend reads them; a number is
    milliseconds since the epoch, as the frontend's date parser takes it.
    """
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = moment.timestamp()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000.0
        else:
            return None
        # Only times every reader can show (datetime's years 1..9999).
        datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return seconds if math.isfinite(seconds) else None
