"""Speed aggregates without per-second samples: a small ring of byte counters, written on change.

A sample ``(t, downloaded, uploaded)`` is stored only when the counters move. Between two polls
that saw the same counters nothing moved, so when they move we also store the last poll that still
saw the old values: the ring then describes the counters at poll resolution and the bytes at any
instant since observation began can be interpolated. An average over a window that observation
does not cover is ``None`` (unknown), never 0.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

Sample = tuple[float, float, float]

EMPTY = b""


def decode(blob: bytes) -> list[Sample]:
    """The samples packed in a blob (three float64 per sample, oldest first)."""
    if not blob:
        return []
    values = array("d")
    values.frombytes(blob)
    return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3)]


def encode(samples: Sequence[Sample]) -> bytes:
    """Pack samples into a blob for storage (float64 is exact for byte counts up to 9 PB)."""
    return array("d", [value for sample in samples for value in sample]).tobytes()


def start(now: float, downloaded: int, uploaded: int) -> bytes:
    """A ring that begins a new observation run."""
    return encode([(now, float(downloaded), float(uploaded))])


def record(
    blob: bytes,
    *,
    prev_seen: float,
    prev_downloaded: int,
    prev_uploaded: int,
    now: float,
    downloaded: int,
    uploaded: int,
    window: float,
    max_samples: int,
) -> bytes:
    """Append a change of counters observed at `now`; prune what the window no longer needs.

    Works on the packed floats (three per sample) rather than on tuples: with short poll intervals
    a ring holds up to `max_samples` samples, and unpacking them into tuples and back on every
    change was ~4 % of a shard's Python in the 2.5 s-interval stack benchmark.
    """
    values = array("d")
    values.frombytes(blob)
    if not values or values[-3] < prev_seen:
        # Close the flat stretch: at prev_seen the counters still had their old values.
        values.extend((prev_seen, float(prev_downloaded), float(prev_uploaded)))
    values.extend((now, float(downloaded), float(uploaded)))
    horizon = now - window
    first = 0
    last = len(values) - 3
    while first < last and values[first + 3] <= horizon:
        first += 3
    if first:
        del values[:first]
    if len(values) > 3 * max_samples:
        return encode(_thin(decode(values.tobytes()), max_samples))
    return values.tobytes()


def prune(samples: list[Sample], *, now: float, window: float, max_samples: int) -> list[Sample]:
    """Keep the samples in the window plus one anchor before it; thin the oldest when too many."""
    horizon = now - window
    first = 0
    while first + 1 < len(samples) and samples[first + 1][0] <= horizon:
        first += 1
    return _thin(samples[first:], max_samples)


def _thin(kept: list[Sample], max_samples: int) -> list[Sample]:
    """At most `max_samples` samples: the oldest lose resolution first."""
    while len(kept) > max_samples:
        # Drop every other sample of the older half: old points need less resolution (at
        # least one per pass, or a tiny ring would never shrink).
        half = max(2, len(kept) // 2)
        kept = kept[:half:2] + kept[half:]
    return kept


def _counters_at(samples: Sequence[Sample], when: float, column: int) -> float:
    """A counter's value at `when`, interpolated linearly between the samples around it."""
    previous = samples[0]
    if when <= previous[0]:
        return previous[column]
    for sample in samples[1:]:
        if sample[0] >= when:
            span = sample[0] - previous[0]
            if span <= 0:
                return sample[column]
            share = (when - previous[0]) / span
            return previous[column] + (sample[column] - previous[column]) * share
        previous = sample
    return previous[column]


def average(
    blob: bytes, *, now: float, window: float, observed_since: float, column: int
) -> float | None:
    """Bytes per second over ``[now - window, now]``; None when observation does not cover it.

    `column` is 1 for downloaded bytes, 2 for uploaded bytes.
    """
    if window <= 0 or now - window < observed_since - 1e-6:
        return None
    samples = decode(blob)
    if not samples:
        return None
    begin = _counters_at(samples, now - window, column)
    end = samples[-1][column]
    return max(0.0, (end - begin) / window)


def change(
    blob: bytes, *, now: float, window: float, observed_since: float, total: float, column: int
) -> float | None:
    """How much a counter grew over the window (the same coverage rule as :func:`average`)."""
    if window <= 0 or now - window < observed_since - 1e-6:
        return None
    samples = decode(blob)
    if not samples:
        return None
    return max(0.0, total - _counters_at(samples, now - window, column))


def last(blob: bytes) -> Sample:
    """The newest sample of a non-empty ring: the counters last known and when."""
    values = array("d")
    values.frombytes(blob[-24:])
    return (values[0], values[1], values[2])
