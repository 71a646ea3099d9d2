"""Derived telemetry, table by table: activity, stalls, time in state, events, removals."""

from __future__ import annotations

from typing import Any

import pytest

from tests.userstore.factory import T0, Feed, snap
from userstore_svc.core import telemetry
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.core.status import derive_status


@pytest.mark.parametrize(
    ("flags", "state", "expected"),
    [
        ({"queued": True, "active": False, "finished": False, "present": False}, "", "queued"),
        (
            {"queued": False, "active": True, "finished": False, "present": False},
            "downloading",
            "downloading",
        ),
        (
            {"queued": False, "active": True, "finished": False, "present": False},
            "stalled (no seeds)",
            "stalled",
        ),
        (
            {"queued": False, "active": True, "finished": False, "present": False},
            "stalledDL",
            "stalled",
        ),
        (
            {"queued": False, "active": True, "finished": True, "present": True},
            "stalledUP",
            "seeding",
        ),
        (
            {"queued": False, "active": True, "finished": True, "present": True},
            "uploading",
            "seeding",
        ),
        (
            {"queued": False, "active": True, "finished": True, "present": False},
            "uploading",
            "uploading",
        ),
        (
            {"queued": False, "active": False, "finished": True, "present": True},
            "completed",
            "completed",
        ),
        (
            {"queued": False, "active": False, "finished": False, "present": False},
            "completed",
            "inactive",
        ),
        (
            {"queued": False, "active": False, "finished": False, "present": False},
            "failed (bad torrent)",
            "failed",
        ),
        (
            {"queued": False, "active": False, "finished": False, "present": False},
            "pausedDL",
            "paused",
        ),
        (
            {"queued": False, "active": True, "finished": False, "present": False},
            "metaDL",
            "metadl",
        ),
        (
            {"queued": False, "active": True, "finished": False, "present": False},
            "checkingResumeData",
            "checking",
        ),
        ({"queued": False, "active": True, "finished": False, "present": False}, "", "downloading"),
    ],
)
def test_status_normalisation(flags: dict[str, bool], state: str, expected: str) -> None:
    """TorBox's flags and free-text state map to one status word, flags first."""
    assert derive_status(download_state=state, **flags) == expected


def test_download_activity_moves_only_when_bytes_grow() -> None:
    """Downloaded bytes growing stamps download activity; flat bytes leave it alone."""
    feed = Feed()
    feed.poll(0, snap(total_downloaded=100))
    assert feed.state().last_download_activity_at is None
    feed.poll(60, snap(total_downloaded=200))
    assert feed.state().last_download_activity_at == T0 + 60
    feed.poll(120, snap(total_downloaded=200))
    assert feed.state().last_download_activity_at == T0 + 60
    assert feed.state().last_upload_activity_at is None


def test_upload_activity_moves_only_when_uploaded_bytes_grow() -> None:
    """Uploaded bytes growing stamps upload activity."""
    feed = Feed()
    feed.poll(0, snap("seeding", total_uploaded=10))
    feed.poll(60, snap("seeding", total_uploaded=10))
    assert feed.state().last_upload_activity_at is None
    feed.poll(120, snap("seeding", total_uploaded=50))
    assert feed.state().last_upload_activity_at == T0 + 120


def test_transitions_stamp_started_times() -> None:
    """Entering downloading or seeding between polls sets downloading/seeding_started_at."""
    feed = Feed()
    feed.poll(0, snap("queued", id=5))
    feed.poll(60, snap("paused"))
    assert feed.state().downloading_started_at is None
    feed.poll(120, snap(total_downloaded=10))
    assert feed.state().downloading_started_at == T0 + 120
    assert "TORRENT_DOWNLOADING_STARTED" in feed.event_types()
    feed.poll(180, snap("seeding"))
    assert feed.state().seeding_started_at == T0 + 180
    assert {"TORRENT_SEEDING_STARTED", "TORRENT_COMPLETED"} <= set(feed.event_types())


def test_first_poll_is_a_baseline_without_events_or_invented_times() -> None:
    """On a user's first poll nothing before it is known: no events, no started times."""
    feed = Feed()
    result = feed.poll(0, snap(), snap("seeding", id=2), snap("stalled", id=3))
    assert result.events == []
    assert feed.state(1).downloading_started_at is None
    assert feed.state(2).seeding_started_at is None


def test_a_torrent_added_later_emits_added_and_its_phase() -> None:
    """A torrent first seen after the baseline is ADDED, and its phase started now."""
    feed = Feed()
    feed.poll(0, snap(id=9))
    feed.poll(60, snap(id=9), snap(id=2))
    assert feed.event_types() == ["TORRENT_ADDED", "TORRENT_DOWNLOADING_STARTED"]
    assert feed.state(2).downloading_started_at == T0 + 60


@pytest.mark.parametrize(
    ("polls", "stalled_since", "stalls"),
    [
        # bytes move until 120 s then stay flat: stalled once 600 s pass, since 120 s.
        ([(0, 100), (60, 110), (120, 120), (600, 120), (720, 120)], 120, 1),
        # never any progress: stalled from the first sighting once 600 s pass.
        ([(0, 0), (300, 0), (600, 0)], 0, 1),
        # slow but steady progress: never stalled.
        ([(0, 0), (300, 1), (600, 2), (900, 3)], None, 0),
        # flat for 540 s only: not yet.
        ([(0, 0), (540, 0)], None, 0),
    ],
)
def test_stall_detection_from_flat_bytes(
    polls: list[tuple[float, int]], stalled_since: float | None, stalls: int
) -> None:
    """A download with no progress for STALL_AFTER is stalled since its last activity."""
    feed = Feed(interval=600)
    for at, downloaded in polls:
        feed.poll(at, snap(total_downloaded=downloaded))
    state = feed.state()
    assert state.stalled_since == (None if stalled_since is None else T0 + stalled_since)
    assert state.stall_count == stalls


def test_torbox_stalled_state_stalls_at_once_and_progress_resumes() -> None:
    """TorBox saying stalled is a stall at once; bytes moving again clears it and emits RESUMED."""
    feed = Feed()
    feed.poll(0, snap(total_downloaded=100))
    feed.poll(60, snap(total_downloaded=200))
    feed.poll(120, snap("stalled", total_downloaded=200))
    assert feed.state().stalled_since == T0 + 60
    assert "TORRENT_STALLED" in feed.event_types()
    assert telemetry.stalled_time(feed.state(), T0 + 120) == 60
    feed.poll(180, snap(total_downloaded=300))
    assert feed.state().stalled_since is None
    assert feed.event_types() == ["TORRENT_RESUMED"]
    feed.poll(240, snap("stalled", total_downloaded=300))
    assert feed.state().stall_count == 2


def test_an_outage_is_not_counted_as_stalled_time() -> None:
    """A gap longer than twice the interval does not count toward stall time."""
    feed = Feed(interval=60)
    feed.poll(0, snap(total_downloaded=100))
    feed.poll(60, snap(total_downloaded=200))
    feed.poll(120, snap("stalled", total_downloaded=200))
    feed.poll(3720, snap("stalled", total_downloaded=200))  # an hour of outage
    stalled = telemetry.stalled_time(feed.state(), T0 + 3720)
    assert stalled == pytest.approx(60.0)


def test_seeding_time_counts_observed_intervals_only() -> None:
    """Seeding time grows by intervals seeding at both ends; outages count for nothing."""
    feed = Feed(interval=60)
    feed.poll(0, snap())
    feed.poll(60, snap("seeding"))
    for at in (120, 180, 240):
        feed.poll(at, snap("seeding"))
    assert telemetry.seeding_time(feed.state(), T0 + 240) == 180
    feed.poll(4000, snap("seeding"))  # an outage
    assert telemetry.seeding_time(feed.state(), T0 + 4000) == 180
    feed.poll(4060, snap("seeding"))
    assert telemetry.seeding_time(feed.state(), T0 + 4060) == 240
    feed.poll(4120, snap("completed"))
    assert telemetry.seeding_time(feed.state(), T0 + 4120) == 240
    assert telemetry.active_time(feed.state(), T0 + 4120) == 300


def test_downloading_time_includes_stalls() -> None:
    """Downloading time is time in the downloading phase, stalled or not."""
    feed = Feed(interval=600)
    feed.poll(0, snap())
    feed.poll(300, snap("stalled"))
    feed.poll(600, snap(total_downloaded=5))
    assert telemetry.downloading_time(feed.state(), T0 + 600) == 600


def test_ratio_reached_fires_on_the_crossing_only() -> None:
    """TORRENT_RATIO_REACHED fires when the ratio crosses the threshold, not while above it."""
    feed = Feed()
    feed.poll(0, snap("seeding", ratio=0.5))
    feed.poll(60, snap("seeding", ratio=0.99))
    assert "TORRENT_RATIO_REACHED" not in feed.event_types()
    feed.poll(120, snap("seeding", ratio=1.0))
    assert feed.event_types() == ["TORRENT_RATIO_REACHED"]
    assert feed.last is not None
    assert feed.last.events[0].data["ratio"] == 1.0
    feed.poll(180, snap("seeding", ratio=1.4))
    assert feed.event_types() == []


def test_completion_fires_once() -> None:
    """TORRENT_COMPLETED fires when the download finishes."""
    feed = Feed()
    feed.poll(0, snap(total_downloaded=10))
    feed.poll(60, snap("seeding"))
    assert "TORRENT_COMPLETED" in feed.event_types()
    feed.poll(120, snap("seeding", total_uploaded=5))
    assert "TORRENT_COMPLETED" not in feed.event_types()


def test_missing_torrent_is_removed_with_an_event_and_kept() -> None:
    """A torrent missing from two complete snapshots in a row is removed; its shadow stays."""
    feed = Feed()
    feed.poll(0, snap(id=1), snap(id=2), snap(id=3))
    feed.poll(60, snap(id=1), snap(id=3))
    assert feed.event_types() == []
    assert feed.state(2).present
    assert feed.state(2).missing_since == T0 + 60
    assert feed.last is not None
    assert feed.last.hold_reason is None  # one torrent gone is not a glitch to hold for
    feed.poll(120, snap(id=1), snap(id=3))
    assert feed.event_types() == ["TORRENT_REMOVED"]
    assert not feed.state(2).present
    assert feed.state(2).removed_at == T0 + 120


def test_a_torrent_missing_for_one_poll_keeps_its_history_and_replays_nothing() -> None:
    """A one-poll flap: no removal, no event, no restarted telemetry when it comes back."""
    feed = Feed()
    feed.poll(0, snap(id=1), snap("seeding", id=2))
    feed.poll(60, snap(id=1), snap("seeding", id=2, total_uploaded=100))
    before = feed.state(2)
    feed.poll(120, snap(id=1))
    assert feed.last is not None
    assert feed.last.removed == []
    feed.poll(180, snap(id=1), snap("seeding", id=2, total_uploaded=200))
    assert feed.event_types() == []
    after = feed.state(2)
    assert after.first_seen_at == before.first_seen_at
    assert after.last_upload_activity_at == T0 + 180
    assert after.missing_since is None


def test_empty_list_removes_nothing_until_confirmed() -> None:
    """A sudden empty list holds removals and destructive actions; the next list decides."""
    feed = Feed()
    torrents = [snap(id=i) for i in range(1, 4)]
    feed.poll(0, *torrents)
    result = feed.poll(60)
    assert result.removed == []
    assert result.hold_reason is not None
    assert all(feed.state(i).present for i in range(1, 4))
    result = feed.poll(120, *torrents)  # it was a glitch: all back
    assert result.removed == []
    assert result.hold_reason is None
    assert all(feed.state(i).missing_since is None for i in range(1, 4))


def test_an_empty_list_is_confirmed_only_over_several_polls_and_minutes() -> None:
    """An empty list twice is still a glitch; removal needs three polls over ten minutes."""
    feed = Feed()
    feed.poll(0, *[snap(id=i) for i in range(1, 4)])
    for at in (60, 120, 180):
        result = feed.poll(at)
        assert result.removed == []
        assert result.hold_reason is not None
    for at in range(240, 600, 60):
        assert feed.poll(at).removed == []
    result = feed.poll(660)
    assert sorted(result.removed) == [1, 2, 3]
    assert result.hold_reason is None


def test_collapsed_list_is_suspicious() -> None:
    """Far fewer torrents than known (from 20 to 5) waits for confirmation over time."""
    feed = Feed()
    feed.poll(0, *[snap(id=i) for i in range(1, 21)])
    result = feed.poll(60, *[snap(id=i) for i in range(1, 6)])
    assert result.suspicious
    assert result.removed == []
    assert result.hold_reason is not None
    result = feed.poll(120, *[snap(id=i) for i in range(1, 6)])
    assert result.removed == []
    result = feed.poll(700, *[snap(id=i) for i in range(1, 6)])
    assert len(result.removed) == 15


def test_a_partial_list_on_a_small_account_is_a_glitch_too() -> None:
    """Three of five torrents gone at once on a small account is held like a collapse."""
    feed = Feed()
    feed.poll(0, *[snap(id=i) for i in range(1, 6)])
    result = feed.poll(60, snap(id=1), snap(id=2))
    assert result.suspicious
    assert result.hold_reason is not None
    result = feed.poll(120, snap(id=1), snap(id=2))
    assert result.removed == []


def test_incomplete_snapshot_removes_nothing_and_holds() -> None:
    """A snapshot marked incomplete never removes anything."""
    feed = Feed()
    feed.poll(0, snap(id=1), snap(id=2))
    result = feed.poll(60, snap(id=1), complete=False)
    assert result.removed == []
    assert result.hold_reason is not None


def test_a_removed_torrent_that_returns_is_not_added_again() -> None:
    """A torrent listed again after removal emits no first-time event and keeps its history."""
    feed = Feed()
    feed.poll(0, snap("seeding", id=1), snap(id=2))
    feed.poll(60, snap(id=2))
    feed.poll(120, snap(id=2))
    assert not feed.state(1).present
    feed.poll(180, snap(id=2), snap("seeding", id=1))
    assert feed.event_types() == []
    assert feed.state(1).present
    assert feed.state(1).first_seen_at == T0


def test_a_known_hash_under_a_new_id_is_not_added() -> None:
    """A queued item that becomes a torrent (same hash, new id) is not a new torrent."""
    feed = Feed()
    feed.poll(0, snap(id=1))
    queued = snap("queued", id=7, hash="b" * 40)
    feed.poll(60, snap(id=1), queued)
    assert "TORRENT_ADDED" in feed.event_types()
    feed.poll(120, snap(id=1), snap(id=9, hash="b" * 40))
    assert "TORRENT_ADDED" not in feed.event_types()


def test_same_snapshot_twice_changes_nothing() -> None:
    """Feeding the very same snapshot at the very same time again changes no state."""
    feed = Feed()
    feed.poll(0, snap(total_downloaded=5))
    feed.poll(60, snap(total_downloaded=10))
    before = dict(feed.states)
    feed.polls = 2  # not a baseline
    result = feed.poll(60, snap(total_downloaded=10))
    assert result.changed == []
    assert result.events == []
    assert feed.states == before


def test_queued_and_torrent_ids_do_not_collide() -> None:
    """A queued item and a torrent with the same TorBox id are two different things."""
    feed = Feed()
    feed.poll(0, snap(id=7), snap("queued", id=7))
    assert set(feed.states) == {7, -7}
    assert feed.state(-7).status == "queued"


def test_dates_alone_moving_change_nothing_derived_and_no_row() -> None:
    """An active, idle torrent whose updated_at and expires_at moved (TorBox moves them on every
    list) is remembered with the new dates but is not a change to write; anything else moving
    with them is."""
    feed = Feed()
    idle = snap("completed", id=1, active=True, updated_at=T0, expires_at=T0 + 10.0)
    feed.poll(0, idle)
    feed.poll(60, idle)
    before = feed.state()
    dated = idle._replace(updated_at=T0 + 120, expires_at=T0 + 130.0)
    result = feed.poll(120, dated)
    assert result.changed == []
    assert result.dated == [feed.state()]
    assert feed.state().snap == dated
    assert feed.state()[1:] == (*before[1:3], T0 + 120, *before[4:])
    assert telemetry.only_dates_moved(idle, dated)
    assert not telemetry.only_dates_moved(idle, dated._replace(seeds=1))
    result = feed.poll(180, dated._replace(updated_at=T0 + 180, peers=4))
    assert [s.key for s in result.changed] == [1]
    assert result.dated == []


def _other(value: Any) -> Any:
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return f"{value}x"


@pytest.mark.parametrize("field", TorrentSnapshot._fields)
def test_only_dates_moved_sees_every_other_field(field: str) -> None:
    """Every field but the two dates counts: a change in any of them is a change."""
    base = snap("seeding", id=1, updated_at=T0, expires_at=T0 + 1.0, tracker="t", cached_at=T0)
    moved = base._replace(**{field: _other(getattr(base, field))})
    assert telemetry.only_dates_moved(base, moved) is (field in ("updated_at", "expires_at"))
