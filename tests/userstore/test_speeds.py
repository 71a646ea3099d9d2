"""Speed aggregates from a small ring of counters: values, coverage, pruning."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.userstore.factory import T0, Feed, snap
from userstore_svc.core import speeds
from userstore_svc.core.models import PipelineConfig


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
    """Samples are pruned to the window plus an anchor and thinned to the cap."""
    feed = Feed(PipelineConfig(sample_window_seconds=3600.0, max_samples=50), interval=10)
    for tick in range(800):
        feed.poll(tick * 10, snap(total_downloaded=tick * 500))
    samples = speeds.decode(feed.state().samples)
    assert len(samples) <= 50
    assert samples[0][0] <= T0 + 7990 - 3600
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


def _reference_record(blob: bytes, **kw: Any) -> bytes:
    """record() as the module docstring states it: append the flat-stretch end and the change,
    then keep the window plus one anchor, thinning the oldest (the list form, kept as the spec)."""
    samples = speeds.decode(blob)
    if not samples or samples[-1][0] < kw["prev_seen"]:
        samples.append((kw["prev_seen"], float(kw["prev_downloaded"]), float(kw["prev_uploaded"])))
    samples.append((kw["now"], float(kw["downloaded"]), float(kw["uploaded"])))
    return speeds.encode(
        speeds.prune(samples, now=kw["now"], window=kw["window"], max_samples=kw["max_samples"])
    )


@settings(max_examples=200, deadline=None)
@given(
    window=st.sampled_from([60.0, 300.0, 3600.0]),
    max_samples=st.integers(1, 12),
    steps=st.lists(
        st.tuples(
            st.sampled_from([1.0, 2.5, 30.0, 300.0]),
            st.booleans(),
            st.integers(0, 10**9),
            st.integers(0, 10**8),
        ),
        min_size=1,
        max_size=80,
    ),
)
def test_record_on_packed_floats_matches_the_list_form(
    window: float, max_samples: int, steps: list[tuple[float, bool, int, int]]
) -> None:
    """The packed-float fast path of record() gives the same ring as the tuple formulation, and
    the ring never exceeds max_samples (thinning always makes progress, even for tiny rings)."""
    now, downloaded, uploaded = 0.0, 0, 0
    fast = spec = speeds.start(now, downloaded, uploaded)
    prev_seen = now
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
            assert fast == spec
            assert len(speeds.decode(fast)) <= max(max_samples, 1)
            downloaded, uploaded = kw["downloaded"], kw["uploaded"]
        prev_seen = now
