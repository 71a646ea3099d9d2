"""Speed aggregates from a tiered ring of counters: values, coverage, tiers, bounds."""

from __future__ import annotations

from bisect import bisect_right
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.userstore.factory import T0, Feed, snap
from userstore_svc.core import speeds
from userstore_svc.core.models import PipelineConfig, TorrentState

MiB = 1024 * 1024
HOUR = 3600.0
WEEK = 168 * HOUR  # a literal, not speeds.HISTORY: these tests must also run against older code
# Explicit configurations: the defaults in PipelineConfig are not what these tests are about.
LONG = PipelineConfig(stall_after_seconds=600.0, sample_window_seconds=WEEK, max_samples=240)
OLD = PipelineConfig(stall_after_seconds=600.0, sample_window_seconds=HOUR, max_samples=240)


def _avg(feed: Feed, at: float, window: float, column: int = 1) -> float | None:
    state = feed.state()
    return speeds.average(
        state.samples,
        now=T0 + at,
        window=window,
        observed_since=state.observed_since,
        column=column,
    )


def test_average_over_a_covered_window() -> None:
    """Bytes over the window divided by the window, from polls every minute."""
    feed = Feed(interval=60)
    for minute in range(11):
        feed.poll(minute * 60, snap(total_downloaded=minute * 6_000_000))
    assert _avg(feed, 600, 300) == pytest.approx(100_000.0)
    assert _avg(feed, 600, 600) == pytest.approx(100_000.0)


def test_average_without_coverage_is_unknown_not_zero() -> None:
    """A window longer than what was observed has no average (None), even with flat bytes."""
    feed = Feed(interval=60)
    feed.poll(0, snap(total_downloaded=0))
    feed.poll(120, snap(total_downloaded=0))
    assert _avg(feed, 120, 300) is None
    assert _avg(feed, 120, 120) == 0.0


def test_flat_stretch_then_burst_is_interpolated_at_poll_resolution() -> None:
    """Flat polls need no samples; a later burst is placed after the last flat poll."""
    feed = Feed(interval=60)
    feed.poll(0, snap(total_downloaded=1000))
    for minute in range(1, 10):
        feed.poll(minute * 60, snap(total_downloaded=1000))
    feed.poll(600, snap(total_downloaded=61_000))
    # Nothing moved until 540 s, 60,000 bytes between 540 s and 600 s.
    assert _avg(feed, 600, 60) == pytest.approx(1000.0)
    assert _avg(feed, 600, 300) == pytest.approx(200.0)
    assert len(speeds.decode(feed.state().samples)) == 3


def test_outage_restarts_coverage() -> None:
    """After a gap the window must be observed again before an average exists."""
    feed = Feed(interval=60)
    for minute in range(6):
        feed.poll(minute * 60, snap(total_downloaded=minute * 1000))
    feed.poll(3000, snap(total_downloaded=100_000))
    assert _avg(feed, 3000, 300) is None


def test_ring_is_bounded_and_keeps_the_window() -> None:
    """Samples are thinned by tiers to the stated bound and still answer the window."""
    cfg = PipelineConfig(sample_window_seconds=3600.0, max_samples=50)
    feed = Feed(cfg, interval=10)
    for tick in range(800):
        feed.poll(tick * 10, snap(total_downloaded=tick * 500))
    samples = speeds.decode(feed.state().samples)
    assert len(samples) <= speeds.capacity(3600.0, 50)
    # The first sample, one per 10 minutes until 4200 s (the last 10-minute bucket older than an
    # hour) and one per fine step of 100 s after it.
    assert len(samples) == 1 + 7 + 38
    assert samples[0][0] == T0
    assert _avg(feed, 7990, 3600) == pytest.approx(50.0, rel=0.01)


def test_upload_average_uses_the_upload_counter() -> None:
    """The upload average reads the uploaded-bytes column."""
    feed = Feed(interval=60)
    for minute in range(6):
        feed.poll(minute * 60, snap("seeding", total_uploaded=minute * 3000))
    assert _avg(feed, 300, 300, column=2) == pytest.approx(50.0)
    assert _avg(feed, 300, 300, column=1) == 0.0


def test_counter_reset_never_gives_a_negative_average() -> None:
    """Counters going backwards restart the run; averages stay non-negative."""
    feed = Feed(interval=60)
    for minute in range(6):
        feed.poll(minute * 60, snap(total_downloaded=10_000 - minute))
    for minute in range(6, 12):
        feed.poll(minute * 60, snap(total_downloaded=5))
    value = _avg(feed, 660, 300)
    assert value == 0.0


@cache
def _steady_upload(window: float, hours: float, interval: float = 300.0) -> TorrentState:
    """A torrent seeding at a steady 1 MiB/s, polled every `interval` seconds for `hours`."""
    cfg = PipelineConfig(stall_after_seconds=600.0, sample_window_seconds=window, max_samples=240)
    feed = Feed(cfg, interval=interval)
    for i in range(int(hours * HOUR / interval) + 1):
        feed.poll(i * interval, snap("seeding", total_uploaded=int(i * interval) * MiB))
    return feed.state()


def _upload_avg(state: TorrentState, now: float, window: float) -> float | None:
    return speeds.average(
        state.samples, now=now, window=window, observed_since=state.observed_since, column=2
    )


@pytest.mark.parametrize("window", [WEEK, HOUR], ids=["week-window", "old-1h-window"])
@pytest.mark.parametrize("hours", [1, 6, 24])
def test_steady_upload_reads_its_rate_over_long_windows(window: float, hours: float) -> None:
    """Issue 14: 1 MiB/s for 30 h reads 1 MiB/s over 1, 6 and 24 h, whatever the configured
    sample window (the ring always covers the longest window a rule may ask for). The old one-hour
    ring divided an hour's bytes by 24 h: 0.04 MiB/s, and "avg upload < 0.1 MB/s" deleted it."""
    state = _steady_upload(window, 30)
    value = _upload_avg(state, T0 + 30 * HOUR, hours * HOUR)
    assert value == pytest.approx(MiB, rel=0.01)


def test_a_week_is_unknown_until_observed_then_reads_the_rate() -> None:
    """Over 168 h the average is None until 168 h have been observed, then the steady rate."""
    feed = Feed(LONG, interval=300)
    upload = snap("seeding").total_uploaded or 0
    for i in range(int(170 * HOUR / 300) + 1):
        at = i * 300
        feed.poll(at, snap("seeding", total_uploaded=upload + at * MiB))
        value = _avg(feed, at, WEEK, column=2)
        if at < WEEK:
            assert value is None
        else:
            assert value == pytest.approx(MiB, rel=0.01)
    assert len(speeds.decode(feed.state().samples)) <= speeds.capacity(WEEK, 240)


def test_a_ring_with_a_shorter_history_cannot_answer_a_longer_window() -> None:
    """A ring that does not reach back to the window's start (one written with a one-hour
    history by an older version) is unknown over the longer window, not slow."""
    now = T0 + 48 * HOUR
    blob = speeds.encode([(now - HOUR - 60, 0.0, 0.0), (now - 60, 0.0, HOUR * MiB)])
    kw: dict[str, Any] = {"now": now, "observed_since": T0, "column": 2}
    assert speeds.average(blob, window=24 * HOUR, **kw) is None
    assert speeds.change(blob, window=24 * HOUR, total=HOUR * MiB, **kw) is None
    assert speeds.average(blob, window=HOUR, **kw) == pytest.approx(MiB * 3540 / 3600)


@pytest.mark.parametrize(
    ("interval", "max_samples", "hours", "fine", "mid", "coarse"),
    [
        # Fast polls: one sample per fine step (20 s for 240) in the last hour (plus its end).
        (2.5, 240, 26, 181, 138, 2),
        (20.0, 240, 170, 181, 138, 144),
        (20.0, 50, 170, 37, 138, 144),
        # Production polls (30 s to 30 min) keep every fine sample; older tiers one per bucket.
        (60.0, 240, 170, 61, 138, 144),
        (300.0, 240, 170, 13, 138, 144),
        (1800.0, 240, 170, 3, 46, 144),
    ],
)
def test_tiers_hold_one_sample_per_bucket_within_the_bound(
    interval: float, max_samples: int, hours: float, fine: int, mid: int, coarse: int
) -> None:
    """Steady polls for `hours`, ending on the hour: the last hour keeps one sample per fine
    step, 1-24 h one per 10 minutes (23 h: 138), 24-168 h one per hour (144); the week and its
    anchor stay, and the ring never exceeds capacity(), 500 samples (12,000 bytes) for 240."""
    blob, t, largest = speeds.start(T0, 0, 0), T0, 0
    limit = speeds.capacity(WEEK, max_samples)
    while t < T0 + hours * HOUR:
        blob = speeds.record(
            blob,
            prev_seen=t,
            prev_downloaded=int(t - T0),
            prev_uploaded=0,
            now=t + interval,
            downloaded=int(t + interval - T0),
            uploaded=0,
            window=WEEK,
            max_samples=max_samples,
        )
        t += interval
        largest = max(largest, len(blob) // 24)
    samples = speeds.decode(blob)
    counts: dict[float, int] = {}
    for sample in samples[1:]:  # the first sample is the anchor
        step = speeds.step_at(sample[0], t, max_samples)
        counts[step] = counts.get(step, 0) + 1
    fine_step = speeds.fine_step(max_samples)
    assert counts == {fine_step: fine, speeds.MID_STEP: mid, speeds.COARSE_STEP: coarse}
    assert samples[0][0] <= max(T0, t - WEEK) < samples[1][0]
    assert largest <= limit
    assert speeds.capacity(WEEK, 240) * 24 == 12_000
    if interval <= fine_step and hours > 168:
        # Polls at least as fast as the fine step fill every bucket: the bound is reached.
        assert largest >= limit - 3


def _reference_record(samples: list[speeds.Sample], **kw: Any) -> list[speeds.Sample]:
    """record() as its docstring states it: append the flat-stretch end and the change, then
    prune (the list form, kept as the spec)."""
    if not samples or samples[-1][0] < kw["prev_seen"]:
        samples.append((kw["prev_seen"], float(kw["prev_downloaded"]), float(kw["prev_uploaded"])))
    samples.append((kw["now"], float(kw["downloaded"]), float(kw["uploaded"])))
    return speeds.prune(samples, now=kw["now"], window=kw["window"], max_samples=kw["max_samples"])


_STEPS = st.lists(
    st.tuples(
        st.sampled_from([1.0, 2.5, 7.0, 30.0, 300.0, 1799.0, 3 * HOUR, 13 * HOUR, 50 * HOUR]),
        st.booleans(),
        st.integers(0, 10**9),
        st.integers(0, 10**8),
    ),
    min_size=1,
    max_size=150,
)


def _unthinned(steps: list[tuple[float, bool, int, int]]) -> list[speeds.Sample]:
    """Every sample the record calls append, without thinning: the exact history."""
    now, downloaded, uploaded = T0, 0.0, 0.0
    samples: list[speeds.Sample] = [(now, downloaded, uploaded)]
    prev_seen = now
    for elapsed, moved, more_down, more_up in steps:
        now += elapsed
        if moved:
            if samples[-1][0] < prev_seen:
                samples.append((prev_seen, downloaded, uploaded))
            downloaded, uploaded = downloaded + more_down, uploaded + more_up
            samples.append((now, downloaded, uploaded))
        prev_seen = now
    return samples


def _feed(
    steps: list[tuple[float, bool, int, int]], window: float, max_samples: int
) -> tuple[bytes, float]:
    """Record a random monotone sequence on the packed floats and in list form (the spec),
    checking at every change that they agree and that the ring stays within capacity()."""
    now, downloaded, uploaded = T0, 0, 0
    fast = speeds.start(now, downloaded, uploaded)
    spec = speeds.decode(fast)
    prev_seen = now
    limit = speeds.capacity(window, max_samples)
    for elapsed, moved, more_down, more_up in steps:
        now += elapsed
        if moved:
            kw: dict[str, Any] = {
                "prev_seen": prev_seen,
                "prev_downloaded": downloaded,
                "prev_uploaded": uploaded,
                "now": now,
                "downloaded": downloaded + more_down,
                "uploaded": uploaded + more_up,
                "window": window,
                "max_samples": max_samples,
            }
            fast = speeds.record(fast, **kw)
            spec = _reference_record(spec, **kw)
            assert speeds.decode(fast) == spec
            assert len(spec) <= limit
            downloaded, uploaded = kw["downloaded"], kw["uploaded"]
        prev_seen = now
    return fast, now


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from([HOUR, WEEK, 200 * HOUR]),
    max_samples=st.sampled_from([1, 8, 13, 50, 240]),
    steps=_STEPS,
    windows=st.lists(st.floats(1.0, WEEK), max_size=5),
)
def test_ring_is_bounded_and_within_the_documented_error(
    window: float,
    max_samples: int,
    steps: list[tuple[float, bool, int, int]],
    windows: list[float],
) -> None:
    """Random monotone counters polled at random times: record() equals its list form, the ring
    never exceeds capacity(), and the average over any covered window (up to 168 h) differs from
    the exact one (interpolated from every sample recorded) by at most the bytes moved between
    the two stored samples around the window's start, over the window; removed samples between
    them lie within one bucket of the tier at the window's start."""
    ring, now = _feed(steps, window, max_samples)
    exact = speeds.encode(_unthinned(steps))
    stored = speeds.decode(ring)
    times = [sample[0] for sample in stored]
    history = [sample[0] for sample in speeds.decode(exact)]
    for length in [*windows, 300.0, HOUR, 6 * HOUR, 24 * HOUR, WEEK]:
        for column in (1, 2):
            kw: dict[str, Any] = {"now": now, "window": length, "observed_since": T0}
            value = speeds.average(ring, column=column, **kw)
            truth = speeds.average(exact, column=column, **kw)
            assert (value is None) == (truth is None)
            if value is None or truth is None:
                continue
            begin = now - length
            at = max(0, bisect_right(times, begin) - 1)
            before, after = stored[at], stored[min(at + 1, len(stored) - 1)]
            moved = after[column] - before[column]
            assert abs(value - truth) * length <= moved + 1e-6 * max(1.0, after[column])
            # The sample after `before` in the exact history begins the thinned stretch.
            follower = history[min(bisect_right(history, before[0]), len(history) - 1)]
            if after[0] > follower:
                assert after[0] - follower < speeds.step_at(begin, now, max_samples)
