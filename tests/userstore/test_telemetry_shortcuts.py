"""The pipeline's short-cuts never skip work that would have changed a result."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.userstore.factory import CFG, T0, Feed, snap
from userstore_svc.core import telemetry
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.core.status import STATE_TABLE, derive_status

PROFILES = ("downloading", "stalled", "seeding", "completed", "paused", "queued")
ratios = st.sampled_from((None, 0.0, 0.5, 0.99, 1.0, 1.5))
finished = st.sampled_from((None, False, True))


@st.composite
def sightings(draw: Any) -> tuple[TorrentSnapshot, TorrentSnapshot]:
    """Two successive sightings of one torrent, in any profiles, ratios and finished flags."""
    pair = []
    for _ in range(2):
        pair.append(
            snap(
                draw(st.sampled_from(PROFILES)),
                ratio=draw(ratios),
                download_finished=draw(finished),
                created_at=T0,
            )
        )
    return pair[0], pair[1]


@settings(max_examples=400, deadline=None)
@given(sightings(), st.sampled_from((0.5, 1.0, 2.0)))
def test_transitions_are_skipped_only_when_they_find_nothing(
    pair: tuple[TorrentSnapshot, TorrentSnapshot], threshold: float
) -> None:
    first, second = pair
    feed = Feed()
    feed.poll(-60)
    feed.poll(0, first)
    prev = feed.state(first.key)
    status = telemetry.status_of(second)
    cfg = CFG.__class__(ratio_event_threshold=threshold)
    found = telemetry._transition_events(prev, second, status, T0 + 60, cfg)
    if not telemetry._may_transition(prev, second, status, threshold):
        assert found == ([], prev.downloading_started_at, prev.seeding_started_at)


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.sampled_from((None, False, True)),
    st.sampled_from((*sorted(STATE_TABLE), "", "Stalled (No Seeds)", "new state")),
    st.sampled_from((None, False, True)),
    st.sampled_from((None, False, True)),
)
def test_status_of_reads_the_flags_it_derives_from(
    queued: bool,
    active: bool | None,
    state: str,
    done: bool | None,
    present: bool | None,
) -> None:
    item = snap(
        queued=queued,
        active=active,
        download_state=state,
        download_finished=done,
        download_present=present,
    )
    expected = derive_status(
        queued=queued, active=active, download_state=state, finished=done, present=present
    )
    assert telemetry.status_of(item) == expected
