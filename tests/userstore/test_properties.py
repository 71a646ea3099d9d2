"""Property tests of the pipeline: invariants that hold for any sequence of snapshots."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.userstore.factory import T0, Feed, snap
from userstore_svc.core import speeds, telemetry
from userstore_svc.core.models import TorrentSnapshot

PROFILES = ("downloading", "stalled", "seeding", "completed", "paused")


@dataclass(frozen=True)
class Step:
    """One poll of one torrent: time since the last poll and what TorBox said."""

    gap: float
    profile: str
    downloaded: int
    uploaded: int
    present: bool


steps = st.lists(
    st.builds(
        Step,
        gap=st.one_of(st.floats(1, 120), st.floats(120, 5000)),
        profile=st.sampled_from(PROFILES),
        downloaded=st.integers(-1000, 10_000_000),
        uploaded=st.integers(-1000, 10_000_000),
        present=st.booleans() | st.just(True),
    ),
    min_size=1,
    max_size=40,
)


def _run(sequence: list[Step]) -> tuple[Feed, list[float]]:
    feed, times, _ = _run_keeping_last(sequence)
    return feed, times


def _run_keeping_last(sequence: list[Step]) -> tuple[Feed, list[float], list[TorrentSnapshot]]:
    feed = Feed(interval=60)
    at = 0.0
    times = []
    torrents: list[TorrentSnapshot] = []
    downloaded = uploaded = 0
    for step in sequence:
        at += step.gap
        downloaded = (
            max(0, downloaded + step.downloaded) if step.downloaded >= 0 else max(0, downloaded - 5)
        )
        uploaded = max(0, uploaded + step.uploaded)
        torrents = [snap(step.profile, total_downloaded=downloaded, total_uploaded=uploaded)]
        # A second, steady torrent keeps a removal from looking like an empty list.
        torrents.append(snap("completed", id=2))
        if not step.present:
            torrents = torrents[1:]
        feed.poll(at, *torrents)
        times.append(T0 + at)
    return feed, times, torrents


@settings(max_examples=300, deadline=None)
@given(steps)
def test_times_never_decrease_and_stay_within_observation(sequence: list[Step]) -> None:
    """Every derived time is within [first sighting, now] and never moves backwards."""
    feed = Feed(interval=60)
    at = 0.0
    previous: dict[str, float | None] = {}
    downloaded = 0
    for step in sequence:
        at += step.gap
        downloaded = max(downloaded, downloaded + step.downloaded)
        feed.poll(at, snap(step.profile, total_downloaded=downloaded), snap("completed", id=2))
        state = feed.state()
        now = T0 + at
        assert state.first_seen_at <= state.last_seen_at <= now
        for name in ("last_download_activity_at", "last_upload_activity_at"):
            value = getattr(state, name)
            if value is not None:
                assert state.first_seen_at <= value <= now
                before = previous.get(name)
                assert before is None or value >= before
            previous[name] = value
        for name in ("downloading_started_at", "seeding_started_at", "stalled_since"):
            value = getattr(state, name)
            assert value is None or state.first_seen_at <= value <= now


@settings(max_examples=300, deadline=None)
@given(steps)
def test_time_in_state_never_exceeds_wall_time(sequence: list[Step]) -> None:
    """Seeding, downloading and active time never exceed the wall time since first sighting."""
    feed, times = _run(sequence)
    state = feed.state(2)
    now = times[-1]
    wall = now - state.first_seen_at + 1e-6
    for key in feed.states:
        s = feed.states[key]
        assert 0 <= telemetry.seeding_time(s, now) <= wall
        assert 0 <= telemetry.downloading_time(s, now) <= wall
        assert 0 <= telemetry.active_time(s, now) <= wall
        assert telemetry.seeding_time(s, now) + telemetry.downloading_time(s, now) <= wall
        stalled = telemetry.stalled_time(s, now)
        assert stalled is None or 0 <= stalled <= wall


@settings(max_examples=300, deadline=None)
@given(steps)
def test_activity_moves_only_when_bytes_grow(sequence: list[Step]) -> None:
    """The download activity stamp changes exactly at polls where the downloaded bytes changed."""
    feed = Feed(interval=60)
    at = 0.0
    downloaded = 0
    last_bytes: int | None = None
    for step in sequence:
        at += step.gap
        downloaded = max(0, downloaded + step.downloaded)
        before = feed.states.get(1)
        feed.poll(at, snap(step.profile, total_downloaded=downloaded), snap("completed", id=2))
        after = feed.state(1)
        if before is not None and before.present and last_bytes is not None:
            # Bytes that grew are activity; counters that went down (TorBox restarted the
            # torrent) count as activity too, so no "idle for N minutes" rule sees through it.
            changed = downloaded != last_bytes
            moved = after.last_download_activity_at != before.last_download_activity_at
            assert moved == changed
            if changed:
                assert after.last_download_activity_at == T0 + at
        last_bytes = downloaded


@settings(max_examples=200, deadline=None)
@given(steps)
def test_replaying_the_last_snapshot_is_a_no_op(sequence: list[Step]) -> None:
    """Applying the last snapshot again, at the same time, changes nothing and emits nothing."""
    feed, times, last = _run_keeping_last(sequence)
    states = dict(feed.states)
    result = feed.poll(times[-1] - T0, *last)
    assert result.changed == []
    assert result.events == []
    assert feed.states == states


@settings(max_examples=300, deadline=None)
@given(steps, st.floats(1, 7200))
def test_averages_are_unknown_without_coverage_and_never_negative(
    sequence: list[Step], window: float
) -> None:
    """An average exists only for a window inside observation, and is never negative."""
    feed, times = _run(sequence)
    now = times[-1]
    for state in feed.states.values():
        for column in (1, 2):
            value = speeds.average(
                state.samples,
                now=now,
                window=window,
                observed_since=state.observed_since,
                column=column,
            )
            if now - window < state.observed_since - 1e-6:
                assert value is None
            else:
                assert value is not None
                assert value >= 0
