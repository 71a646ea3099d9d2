"""Speed aggregates without per-second samples: a tiered ring of byte counters covering a week.

A sample ``(t, downloaded, uploaded)`` is stored only when the counters move. Between two polls
that saw the same counters nothing moved, so when they move we also store the last poll that still
saw the old values: the ring then describes the counters at poll resolution and the bytes at any
instant since observation began can be interpolated. An average over a window that observation
(or the ring) does not cover is ``None`` (unknown), never 0.

History. Rules ask for averages over up to ``MAX_WINDOW_HOURS`` (168 h), so the ring keeps that much
(or the caller's `window` when longer) plus one anchor sample at or before the horizon. Old samples
lose resolution by tiers; a tier keeps the newest sample of each bucket (buckets are aligned on
absolute time and nest, so a sample moving to a coarser tier is thinned consistently):

- fine (the last hour, by whole 10-minute buckets): every sample the poller records, but at most
  one per `fine_step(max_samples)` seconds (20 s for the default 240; the scheduler's minimum
  poll interval defaults to 30 s, so nothing is thinned there), as exact as the old ring;
- mid (1 h to 24 h): one per 10 minutes, which is 0.7 % of a 24 h window but a sixth of a 1 h one:
  short windows start in the fine tier, long ones can afford coarser buckets;
- coarse (24 h to 168 h): one per hour, 0.6 % of a 168 h window.

The first sample (the start of observation, later the anchor) is never thinned. Bound: at most
``capacity(window, max_samples)`` samples of 24 bytes (three float64): 210 fine + 144 mid + 145
coarse + 1 = 500 samples, 12,000 bytes per torrent for the defaults (a week, 240), whatever the
poll interval; the old one-hour ring held at most 240 samples (5,760 bytes). A 5-minute poller
stores ~300 samples (7.1 KB) after a week.

Accuracy. Counters only grow, so at a window's start the counter interpolated from the ring and
the one interpolated from every sample ever recorded both lie between the two stored samples
around that instant: they differ by at most the bytes moved between those two samples (nothing
where no sample was thinned). Where samples were thinned, those bytes moved within less than one
bucket of the tier at the window's start (fine step / 10 min / 1 h) plus one poll interval (the
thinned samples and the later stored one share a bucket; before them, a flat stretch moves
nothing and a poll interval is one poll). At a peak rate r an average over W seconds is thus off
by at most r * (bucket + poll interval) / W, and a steady rate is exact. With 5-minute polls:
windows up to 1 h as exact as the polls (nothing thinned), 6 h at most 4.2 % of r, 24 h 1.0 %,
168 h 0.65 % (3,900 s of 604,800 s).

Cost. ``record`` works on the packed floats: it appends, drops what fell behind the horizon and
merges the new samples into their fine bucket (O(1)); only when a 10-minute (1-hour) bucket has
just become older than 1 h (24 h) does it bisect for those buckets and thin them, once per
bucket, so the thinning is amortised over the polls of a bucket and never rescans the ring.
Measured (CPython 3.11, a shared 2-core machine, best of 5 x 2000 calls; ranges are run-to-run
noise) on a week-old ring of 5-minute polls (296 samples, 7.1 KB): a poll that completes no
10-minute bucket 2.3-3.5 us (the old one-hour ring of 13 samples: 1.3-2.1 us), one that completes
a 10-minute bucket 4.9-7.4 us, an hour bucket 9.4-12.7 us; 6.0 us per poll over a day (old 2.2).
With 2.5 s polls 3.6 us per poll over an hour (old 4.1: it re-thinned its full ring every ~60
polls, ~115 us each). ``average`` 2.4-3.5 us on any ring (old 36-54 us on a full ring: it decoded
the whole ring into tuples). The largest blob seen, 1 s polls for 8 days, is 11,952 bytes.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise

Sample = tuple[float, float, float]

EMPTY = b""

HOUR = 3600.0
# The longest window a rule may ask for (the rule schema's limit): the ring always covers it.
MAX_WINDOW_HOURS = 168
HISTORY = MAX_WINDOW_HOURS * HOUR
FINE_SPAN = HOUR  # samples newer than this (by whole MID_STEP buckets) are fine
MID_STEP = 600.0
DAY_SPAN = 24 * HOUR  # samples older than this (by whole COARSE_STEP buckets) are coarse
COARSE_STEP = HOUR
# Fine steps divide MID_STEP so that fine buckets nest in mid buckets (which nest in coarse ones).
_FINE_STEPS = tuple(float(d) for d in range(1, int(MID_STEP) + 1) if MID_STEP % d == 0)


def decode(blob: bytes) -> list[Sample]:
    """The samples packed in a blob (three float64 per sample, oldest first)."""
    values = _load(blob)
    return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3)]


def encode(samples: Sequence[Sample]) -> bytes:
    """Pack samples into a blob for storage (float64 is exact for byte counts up to 9 PB)."""
    return array("d", [value for sample in samples for value in sample]).tobytes()


def start(now: float, downloaded: int, uploaded: int) -> bytes:
    """A ring that begins a new observation run."""
    return encode([(now, float(downloaded), float(uploaded))])


@lru_cache(maxsize=16)
def fine_step(max_samples: int) -> float:
    """The fine tier's bucket: the shortest that keeps it within `max_samples` samples.

    The fine tier spans less than FINE_SPAN + MID_STEP (its oldest 10-minute bucket may have
    begun up to 10 minutes before the hour), so it holds at most that span over the step samples.
    """
    for step in _FINE_STEPS:
        if (FINE_SPAN + MID_STEP) / step <= max_samples:
            return step
    return MID_STEP


def capacity(window: float, max_samples: int) -> int:
    """The most samples a ring can hold (see the module docstring)."""
    fine = int((FINE_SPAN + MID_STEP) / fine_step(max_samples))
    mid = int((DAY_SPAN + COARSE_STEP - FINE_SPAN) / MID_STEP)
    coarse = int((max(window, HISTORY) - DAY_SPAN) / COARSE_STEP) + 1
    return fine + mid + coarse + 1


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
    """Append a change of counters observed at `now`; drop and thin what the tiers no longer need.

    `window` is the longest window to answer (at least MAX_WINDOW_HOURS); `max_samples` bounds the
    fine tier. Works on the packed floats (three per sample) rather than on tuples: unpacking the
    ring into tuples and back on every change was ~4 % of a shard's Python in the 2.5 s-interval
    stack benchmark. On a ring it wrote, equals appending then :func:`prune` (the tests hold it to
    that); a ring written by the old one-hour code is brought within the bound as it ages.
    """
    values = _load(blob)
    # The newest sample is the previous record's time: buckets that were complete then are thinned.
    last = values[-3] if values else prev_seen
    added = 1
    if not values or last < prev_seen:
        # Close the flat stretch: at prev_seen the counters still had their old values.
        values.extend((prev_seen, float(prev_downloaded), float(prev_uploaded)))
        added = 2
    values.extend((now, float(downloaded), float(uploaded)))
    horizon = now - max(window, HISTORY)
    first = 0
    end = len(values) - 3
    while first < end and values[first + 3] <= horizon:
        first += 3
    if first:
        del values[:first]
    # The new samples replace older ones in their fine bucket (a fine bucket lies inside one mid
    # and one coarse bucket, so this is right whatever tier the bucket is in); the rest of the
    # ring already holds one sample per bucket, and the first sample always stays.
    step = fine_step(max_samples)
    at = len(values) - 6
    low = max(3, at - 3 * added + 3)
    while at >= low:
        if values[at] // step == values[at + 3] // step:
            del values[at : at + 3]
        at -= 3
    # The tiers start (1 h, 24 h) and step by whole 10-minute buckets, so a bucket can only have
    # become older than a tier's start if `now` is in a new 10-minute bucket (mostly it is not).
    if now // MID_STEP != last // MID_STEP:
        for span, size in ((FINE_SPAN, MID_STEP), (DAY_SPAN, COARSE_STEP)):
            done_before, done_now = (last - span) // size, (now - span) // size
            if done_now > done_before:
                # Buckets done_before .. done_now - 1 have just become older than `span`.
                _thin(values, size, done_before, done_now)
    return values.tobytes()


def prune(samples: list[Sample], *, now: float, window: float, max_samples: int) -> list[Sample]:
    """The ring's rule in list form: the window plus one anchor, each tier one sample per bucket.

    Keeps the samples newer than the horizon plus the newest at or before it; then, the first
    sample aside, drops every sample followed by another in the same bucket of its tier.
    """
    horizon = now - max(window, HISTORY)
    first = 0
    while first + 1 < len(samples) and samples[first + 1][0] <= horizon:
        first += 1
    kept = samples[first:]
    out = kept[:1]
    for sample, after in pairwise(kept[1:]):
        step = step_at(sample[0], now, max_samples)
        if after[0] // step != sample[0] // step:
            out.append(sample)
    if len(kept) > 1:
        out.append(kept[-1])
    return out


def step_at(t: float, now: float, max_samples: int) -> float:
    """The bucket width of the tier that a sample taken at `t` is in at `now`.

    A bucket changes tier only as a whole, once all of it is older than the tier's start.
    """
    if t // COARSE_STEP < (now - DAY_SPAN) // COARSE_STEP:
        return COARSE_STEP
    if t // MID_STEP < (now - FINE_SPAN) // MID_STEP:
        return MID_STEP
    return fine_step(max_samples)


def _load(blob: bytes) -> array[float]:
    values = array("d")
    values.frombytes(blob)
    return values


def _thin(values: array[float], step: float, first_bucket: float, end_bucket: float) -> None:
    """Keep the newest sample of each `step` bucket from first_bucket up to (not) end_bucket."""
    # t // step < k exactly when t < k * step (an integer, exact in float64).
    at = max(3, _search(values, first_bucket * step))  # the first sample always stays
    limit = end_bucket * step
    while at + 3 < len(values) and values[at] < limit:
        if values[at] // step == values[at + 3] // step:
            del values[at : at + 3]
        else:
            at += 3


def _search(values: array[float], when: float) -> int:
    """The offset of the first sample taken at or after `when`.

    A Python loop: bisect on a strided memoryview of a few hundred samples took twice as long.
    """
    low, high = 0, len(values) // 3
    while low < high:
        middle = (low + high) // 2
        if values[3 * middle] < when:
            low = middle + 1
        else:
            high = middle
    return 3 * low


def _counter_at(values: array[float], when: float, column: int) -> float:
    """A counter's value at `when`, interpolated linearly between the samples around it."""
    after = _search(values, when)
    if after == 0:
        return values[column]
    if after == len(values):
        return values[-3 + column]
    before = after - 3
    span = values[after] - values[before]
    if span <= 0:
        return values[after + column]
    share = (when - values[before]) / span
    return values[before + column] + (values[after + column] - values[before + column]) * share


def _covered(values: array[float], now: float, window: float, observed_since: float) -> bool:
    """Observation and the ring both reach back to the window's start.

    A ring written with a shorter history (by an older version) cannot answer a longer window.
    """
    begin = now - window + 1e-6
    return window > 0 and begin >= observed_since and bool(values) and values[0] <= begin


def average(
    blob: bytes, *, now: float, window: float, observed_since: float, column: int
) -> float | None:
    """Bytes per second over ``[now - window, now]``; None when observation does not cover it.

    `column` is 1 for downloaded bytes, 2 for uploaded bytes.
    """
    values = _load(blob)
    if not _covered(values, now, window, observed_since):
        return None
    begin = _counter_at(values, now - window, column)
    return max(0.0, (values[-3 + column] - begin) / window)


def change(
    blob: bytes, *, now: float, window: float, observed_since: float, total: float, column: int
) -> float | None:
    """How much a counter grew over the window (the same coverage rule as :func:`average`)."""
    values = _load(blob)
    if not _covered(values, now, window, observed_since):
        return None
    return max(0.0, total - _counter_at(values, now - window, column))


def last(blob: bytes) -> Sample:
    """The newest sample of a non-empty ring: the counters last known and when."""
    values = array("d")
    values.frombytes(blob[-24:])
    return (values[0], values[1], values[2])


Transfer = tuple[float, float, float, float | None, float | None]


def transfers(blob: bytes) -> list[Transfer]:
    """Each kept sample with the average speeds since the previous one (None for the first).

    ``(t, downloaded, uploaded, download_speed, upload_speed)``, oldest first; a counter that went
    down (TorBox restarted a torrent) shows a speed of 0, never a negative one.
    """
    samples = decode(blob)
    out: list[Transfer] = []
    previous: Sample | None = None
    for sample in samples:
        t, down, up = sample
        if previous is None or t <= previous[0]:
            out.append((t, down, up, None, None))
        else:
            span = t - previous[0]
            out.append(
                (
                    t,
                    down,
                    up,
                    max(0.0, down - previous[1]) / span,
                    max(0.0, up - previous[2]) / span,
                )
            )
        previous = sample
    return out
