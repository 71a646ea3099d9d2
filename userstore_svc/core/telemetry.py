"""Derived telemetry for one torrent: activity, stalls, time in each state, and implied events.

Conventions (each one is tested):
- Bytes that grow mark activity at the poll that saw them grow.
- An interval between two polls counts toward a state only when the torrent was in that state at
  both ends, so accumulated times never exceed the wall time observed.
- A gap between observations longer than ``max_gap`` (an outage) counts toward nothing: runs are
  closed at the last sighting, and stall time excludes it.
- A torrent stalls when it is trying to download and no bytes moved for ``stall_after`` seconds (or
  TorBox says it is stalled); ``stalled_since`` is the last activity, not the poll that noticed.
"""

from __future__ import annotations

from userstore_svc.core import speeds
from userstore_svc.core.models import Event, PipelineConfig, TorrentSnapshot, TorrentState
from userstore_svc.core.status import DOWNLOADING, SEEDING, derive_status

# Two states equal in every field but the sighting time need no write.
_SEEN = TorrentState._fields.index("last_seen_at")


def status_of(snap: TorrentSnapshot) -> str:
    """The normalised status of a snapshot."""
    return derive_status(
        queued=snap.queued,
        active=snap.active,
        download_state=snap.download_state,
        finished=snap.download_finished,
        present=snap.download_present,
    )


def first_sight(
    snap: TorrentSnapshot,
    now: float,
    *,
    baseline: bool,
    returning: TorrentState | None,
) -> tuple[TorrentState, list[Event]]:
    """The state of a torrent seen for the first time (or again after it was removed).

    On a user's first poll (`baseline`) nothing is known about what happened before, so no events
    are emitted and no ``*_started_at`` is invented.
    """
    status = status_of(snap)
    downloading = status in DOWNLOADING
    seeding = status in SEEDING
    key = snap.key
    stalled = status == "stalled"
    events: list[Event] = []
    if not baseline:
        events.append(
            Event(
                "TORRENT_ADDED",
                key,
                now,
                {"name": snap.name, "status": status, "returned": returning is not None},
            )
        )
        if downloading:
            events.append(Event("TORRENT_DOWNLOADING_STARTED", key, now, {"status": status}))
        if seeding:
            events.append(Event("TORRENT_SEEDING_STARTED", key, now, {"ratio": snap.ratio}))
        if snap.download_finished:
            events.append(Event("TORRENT_COMPLETED", key, now, {"size": snap.size}))
        if stalled:
            events.append(
                Event(
                    "TORRENT_STALLED",
                    key,
                    now,
                    {"reason": "torbox_state", "state": snap.download_state},
                )
            )
    started_download = None if baseline or not downloading else now
    started_seeding = None if baseline or not seeding else now
    state = TorrentState(
        snap=snap,
        status=status,
        first_seen_at=returning.first_seen_at if returning else now,
        last_seen_at=now,
        present=True,
        removed_at=None,
        missing_since=None,
        observed_since=now,
        last_download_activity_at=returning.last_download_activity_at if returning else None,
        last_upload_activity_at=returning.last_upload_activity_at if returning else None,
        # Last activity unknown: the stall is only known from now on.
        stalled_since=now if stalled else None,
        idle_excluded_seconds=0.0,
        stall_count=(returning.stall_count if returning else 0) + (1 if stalled else 0),
        downloading_started_at=started_download,
        seeding_started_at=started_seeding,
        seeding_seconds=returning.seeding_seconds if returning else 0.0,
        seeding_run_since=now if seeding else None,
        downloading_seconds=returning.downloading_seconds if returning else 0.0,
        downloading_run_since=now if downloading else None,
        active_seconds=returning.active_seconds if returning else 0.0,
        active_run_since=now if snap.active else None,
        max_download_speed=float(snap.download_speed),
        samples=speeds.start(now, snap.total_downloaded, snap.total_uploaded),
    )
    return state, events


def _accrue(
    seconds: float,
    run_since: float | None,
    *,
    was: bool,
    now_in: bool,
    gap: bool,
    prev_seen: float,
    now: float,
) -> tuple[float, float | None]:
    """Close or open a run of one state; an open run accrues implicitly until it is closed."""
    if was and run_since is not None:
        if now_in and not gap:
            return seconds, run_since
        seconds += max(0.0, prev_seen - run_since)
        return seconds, (now if now_in else None)
    return seconds, (now if now_in else None)


def advance(
    prev: TorrentState,
    snap: TorrentSnapshot,
    now: float,
    *,
    max_gap: float,
    cfg: PipelineConfig,
) -> tuple[TorrentState, list[Event], bool]:
    """The state after one more sighting of a torrent that was present at the previous poll.

    The flag is False when nothing but the sighting time changed: the store need not write it.
    """
    old = prev.snap
    prev_seen = prev.last_seen_at
    if now <= prev_seen:
        # Not newer than the last sighting (a replay): no time passed, nothing can have moved.
        return prev, [], False
    gap = now - prev_seen > max_gap
    status = status_of(snap)
    if (
        snap == old
        and not gap
        and prev.missing_since is None
        and (status not in DOWNLOADING or prev.stalled_since is not None)
    ):
        # Nothing moved and no timer can cross a threshold: the remembered state stands as is.
        if prev.last_seen_at == now:
            return prev, [], False
        return _sighted(prev, now), [], False

    key = snap.key
    events: list[Event] = []
    prev_status = prev.status
    dl_moved = snap.total_downloaded > old.total_downloaded
    ul_moved = snap.total_uploaded > old.total_uploaded
    counters_reset = (
        snap.total_downloaded < old.total_downloaded or snap.total_uploaded < old.total_uploaded
    )
    last_dl = now if dl_moved else prev.last_download_activity_at
    last_ul = now if ul_moved else prev.last_upload_activity_at

    was_downloading = prev_status in DOWNLOADING
    is_downloading = status in DOWNLOADING
    was_seeding = prev_status in SEEDING
    is_seeding = status in SEEDING

    downloading_started_at = prev.downloading_started_at
    if is_downloading and not was_downloading:
        downloading_started_at = now
        events.append(Event("TORRENT_DOWNLOADING_STARTED", key, now, {"from": prev_status}))
    seeding_started_at = prev.seeding_started_at
    if is_seeding and not was_seeding:
        seeding_started_at = now
        events.append(
            Event("TORRENT_SEEDING_STARTED", key, now, {"from": prev_status, "ratio": snap.ratio})
        )
    if snap.download_finished and not old.download_finished:
        events.append(
            Event(
                "TORRENT_COMPLETED",
                key,
                now,
                {"size": snap.size, "downloading_started_at": downloading_started_at},
            )
        )
    threshold = cfg.ratio_event_threshold
    if old.ratio < threshold <= snap.ratio:
        events.append(
            Event(
                "TORRENT_RATIO_REACHED",
                key,
                now,
                {"ratio": snap.ratio, "threshold": threshold, "previous_ratio": old.ratio},
            )
        )

    # Stalls: measured from the last time bytes moved, or from when downloading (re)started.
    stalled_since = prev.stalled_since
    idle_excluded = prev.idle_excluded_seconds
    stall_count = prev.stall_count
    if not is_downloading:
        stalled_since, idle_excluded = None, 0.0
    elif dl_moved:
        if stalled_since is not None:
            events.append(
                Event(
                    "TORRENT_RESUMED",
                    key,
                    now,
                    {
                        "stalled_since": stalled_since,
                        "stalled_seconds": max(0.0, prev_seen - stalled_since - idle_excluded),
                        "downloaded": snap.total_downloaded - old.total_downloaded,
                    },
                )
            )
        stalled_since, idle_excluded = None, 0.0
    else:
        reference = _latest(last_dl, downloading_started_at, prev.observed_since)
        if not was_downloading:
            idle_excluded = 0.0
        elif gap:
            idle_excluded += now - prev_seen
        if stalled_since is None:
            idle = now - reference - idle_excluded
            torbox_says = status == "stalled"
            if torbox_says or idle >= cfg.stall_after_seconds:
                stalled_since = reference
                stall_count += 1
                events.append(
                    Event(
                        "TORRENT_STALLED",
                        key,
                        now,
                        {
                            "reason": "torbox_state" if torbox_says else "no_progress",
                            "state": snap.download_state,
                            "last_activity_at": last_dl,
                            "idle_seconds": max(0.0, idle),
                            "progress": snap.progress,
                        },
                    )
                )

    seeding_seconds, seeding_run = _accrue(
        prev.seeding_seconds,
        prev.seeding_run_since,
        was=was_seeding,
        now_in=is_seeding,
        gap=gap,
        prev_seen=prev_seen,
        now=now,
    )
    downloading_seconds, downloading_run = _accrue(
        prev.downloading_seconds,
        prev.downloading_run_since,
        was=was_downloading,
        now_in=is_downloading,
        gap=gap,
        prev_seen=prev_seen,
        now=now,
    )
    active_seconds, active_run = _accrue(
        prev.active_seconds,
        prev.active_run_since,
        was=old.active,
        now_in=snap.active,
        gap=gap,
        prev_seen=prev_seen,
        now=now,
    )

    observed_since = now if gap or counters_reset else prev.observed_since
    if gap or counters_reset:
        samples = speeds.start(now, snap.total_downloaded, snap.total_uploaded)
    elif dl_moved or ul_moved:
        samples = speeds.record(
            prev.samples,
            prev_seen=prev_seen,
            prev_downloaded=old.total_downloaded,
            prev_uploaded=old.total_uploaded,
            now=now,
            downloaded=snap.total_downloaded,
            uploaded=snap.total_uploaded,
            window=cfg.sample_window_seconds,
            max_samples=cfg.max_samples,
        )
    else:
        samples = prev.samples
    max_speed = prev.max_download_speed
    if max_speed is None or snap.download_speed > max_speed:
        max_speed = float(snap.download_speed)

    state = TorrentState(
        snap=snap,
        status=status,
        first_seen_at=prev.first_seen_at,
        last_seen_at=now,
        present=True,
        removed_at=None,
        missing_since=None,
        observed_since=observed_since,
        last_download_activity_at=last_dl,
        last_upload_activity_at=last_ul,
        stalled_since=stalled_since,
        idle_excluded_seconds=idle_excluded,
        stall_count=stall_count,
        downloading_started_at=downloading_started_at,
        seeding_started_at=seeding_started_at,
        seeding_seconds=seeding_seconds,
        seeding_run_since=seeding_run,
        downloading_seconds=downloading_seconds,
        downloading_run_since=downloading_run,
        active_seconds=active_seconds,
        active_run_since=active_run,
        max_download_speed=max_speed,
        samples=samples,
    )
    moved = bool(events) or state[:_SEEN] != prev[:_SEEN] or state[_SEEN + 1 :] != prev[_SEEN + 1 :]
    return state, events, moved


def _sighted(state: TorrentState, now: float) -> TorrentState:
    """The same state sighted again at `now` (built directly: NamedTuple._replace is slow)."""
    return tuple.__new__(TorrentState, (*state[:_SEEN], now, *state[_SEEN + 1 :]))


def _latest(*times: float | None) -> float:
    """The latest of the known times (at least one is always known)."""
    return max(t for t in times if t is not None)


def mark_missing(prev: TorrentState, now: float) -> TorrentState:
    """A torrent absent from a suspicious snapshot: kept, flagged, not derived further."""
    if prev.missing_since is not None:
        return prev
    return prev._replace(missing_since=now)


def mark_removed(prev: TorrentState, now: float) -> tuple[TorrentState, Event]:
    """A torrent confirmed gone from TorBox: its shadow stays for the log, flagged as removed."""
    state = prev._replace(
        present=False,
        removed_at=now,
        missing_since=None,
        stalled_since=None,
        idle_excluded_seconds=0.0,
        seeding_seconds=seeding_time(prev, prev.last_seen_at),
        seeding_run_since=None,
        downloading_seconds=downloading_time(prev, prev.last_seen_at),
        downloading_run_since=None,
        active_seconds=active_time(prev, prev.last_seen_at),
        active_run_since=None,
    )
    event = Event(
        "TORRENT_REMOVED",
        prev.key,
        now,
        {
            "name": prev.snap.name,
            "last_status": prev.status,
            "last_seen_at": prev.last_seen_at,
            "ratio": prev.snap.ratio,
            "progress": prev.snap.progress,
        },
    )
    return state, event


def seeding_time(state: TorrentState, now: float) -> float:
    """Seconds of observed seeding up to `now` (closed runs plus the open one)."""
    run = state.seeding_run_since
    return state.seeding_seconds + (max(0.0, now - run) if run is not None else 0.0)


def downloading_time(state: TorrentState, now: float) -> float:
    """Seconds of observed downloading (stalls included) up to `now`."""
    run = state.downloading_run_since
    return state.downloading_seconds + (max(0.0, now - run) if run is not None else 0.0)


def active_time(state: TorrentState, now: float) -> float:
    """Seconds TorBox reported the torrent active, as observed, up to `now`."""
    run = state.active_run_since
    return state.active_seconds + (max(0.0, now - run) if run is not None else 0.0)


def stalled_time(state: TorrentState, now: float) -> float | None:
    """Seconds the current stall has lasted (outages excluded); None when not stalled."""
    if state.stalled_since is None:
        return None
    return max(0.0, now - state.stalled_since - state.idle_excluded_seconds)
