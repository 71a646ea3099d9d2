"""The pure life functions: each profile's state as a function of age."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simulator.model import INFINITE_ETA, Life, Profile, paused, state_at, stopped

GIB = 1024**3


BASE = Life(
    profile=Profile.DOWNLOADING,
    size=GIB,
    download_rate=1024**2,
    upload_rate=512 * 1024,
    start_downloaded=GIB // 4,
    start_uploaded=0,
    stall_after=None,
    seeds=5,
    peers=9,
)


def life(profile: Profile, **overrides: Any) -> Life:
    return dataclasses.replace(BASE, profile=profile, **overrides)


def test_downloading_progresses_then_seeds() -> None:
    """A download moves at its rate, finishes, then seeds with a climbing upload counter."""
    spec = life(Profile.DOWNLOADING)
    start = state_at(spec, 0)
    later = state_at(spec, 100)
    assert (start.download_state, later.download_state) == ("downloading", "downloading")
    assert later.downloaded - start.downloaded == 100 * 1024**2
    assert later.eta == (GIB - later.downloaded) // (1024**2)
    finish_age = (GIB - GIB // 4) / 1024**2
    done = state_at(spec, finish_age + 10)
    assert done.finished
    assert done.download_state == "uploading"
    assert done.active
    assert done.finished_age == finish_age
    assert done.uploaded == 10 * 512 * 1024
    assert done.download_speed == 0
    assert done.upload_speed == 512 * 1024
    assert done.eta == 0


def test_stalled_is_frozen() -> None:
    """A stalled torrent has no seeds, no speed, an unknown ETA and constant counters."""
    spec = life(Profile.STALLED)
    first, much_later = state_at(spec, 0), state_at(spec, 10**6)
    assert first == much_later
    assert first.download_state == "stalled (no seeds)"
    assert first.active
    assert (first.seeds, first.download_speed, first.eta) == (0, 0, INFINITE_ETA)
    assert not first.moving


def test_stalls_later_stops_after_stall_after() -> None:
    """It downloads normally until stall_after, then freezes where it was."""
    spec = life(Profile.STALLS_LATER, stall_after=60.0)
    assert state_at(spec, 30).download_state == "downloading"
    stalled = state_at(spec, 61)
    assert stalled.download_state == "stalled (no seeds)"
    assert stalled.downloaded == GIB // 4 + 60 * 1024**2
    assert stalled.changed_age == 60.0
    assert state_at(spec, 5000) == stalled


def test_seeding_ratio_climbs_and_dead_seed_does_not() -> None:
    """Seeding uploads at its rate forever; a dead seed uploads nothing."""
    seeding = life(Profile.SEEDING, start_uploaded=GIB)
    assert state_at(seeding, 10).uploaded == GIB + 10 * 512 * 1024
    dead = life(Profile.DEAD_SEED, start_uploaded=GIB)
    first, later = state_at(dead, 0), state_at(dead, 10**5)
    assert first == later
    assert first.uploaded == GIB
    assert (first.peers, first.seeds, first.upload_speed) == (0, 0, 0)
    assert first.active
    assert first.download_state == "uploading"


def test_finished_inactive_and_metadl() -> None:
    """Finished-inactive is complete and idle; metaDL has nothing yet."""
    done = state_at(life(Profile.FINISHED_INACTIVE), 5)
    assert (done.active, done.download_state, done.finished) == (False, "completed", True)
    meta = state_at(life(Profile.METADL, size=0, start_downloaded=0), 5)
    assert (meta.download_state, meta.downloaded, meta.finished) == ("metaDL", 0, False)


def test_metadl_downloads_once_its_metadata_arrives() -> None:
    """Before metadata_after: metaDL and moving (time will change it); after: a download from 0."""
    spec = life(Profile.METADL, start_downloaded=0, metadata_after=100.0)
    waiting = state_at(spec, 99.9)
    assert (waiting.download_state, waiting.has_metadata, waiting.moving) == ("metaDL", False, True)
    assert (waiting.downloaded, waiting.seeds, waiting.eta) == (0, 0, INFINITE_ETA)
    started = state_at(spec, 110)
    assert (started.download_state, started.has_metadata) == ("downloading", True)
    assert started.downloaded == 10 * 1024**2
    finish_age = 100 + GIB / 1024**2
    done = state_at(spec, finish_age + 1)
    assert done.finished
    assert done.finished_age == finish_age
    assert state_at(life(Profile.METADL, size=0, start_downloaded=0), 10**9).moving is False


def test_pause_and_stop_transforms() -> None:
    """Paused and stopped states are inactive and idle but keep their counters."""
    moving = state_at(life(Profile.SEEDING, start_uploaded=7), 3)
    held = paused(moving)
    assert (held.active, held.download_state, held.upload_speed, held.moving) == (
        False,
        "paused",
        0,
        False,
    )
    assert held.uploaded == moving.uploaded
    done = stopped(moving)
    assert (done.active, done.download_state, done.finished) == (False, "completed", True)


@given(
    profile=st.sampled_from([Profile.DOWNLOADING, Profile.STALLS_LATER, Profile.SEEDING]),
    size=st.integers(1, 10**12),
    rate=st.integers(1, 10**9),
    upload=st.integers(0, 10**8),
    progress=st.floats(0, 0.999),
    stall=st.floats(0, 10**6),
    ages=st.lists(st.floats(0, 10**7), min_size=2, max_size=6),
)
def test_counters_never_go_backwards(
    profile: Profile,
    size: int,
    rate: int,
    upload: int,
    progress: float,
    stall: float,
    ages: list[float],
) -> None:
    """Over any increasing ages, downloaded and uploaded only grow and stay within bounds."""
    spec = life(
        profile,
        size=size,
        download_rate=rate,
        upload_rate=upload,
        start_downloaded=size
        if profile is Profile.SEEDING
        else min(int(progress * size), size - 1),
        stall_after=stall,
    )
    states = [state_at(spec, age) for age in sorted(ages)]
    for before, after in itertools.pairwise(states):
        assert after.downloaded >= before.downloaded
        assert after.uploaded >= before.uploaded
    for state in states:
        assert 0 <= state.downloaded <= size
        assert state.finished == (state.downloaded == size)
