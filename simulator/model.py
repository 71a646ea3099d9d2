"""Torrent profiles and their life: the live state as a pure function of profile and age."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple

# qBittorrent's "unknown" ETA (100 days), which TorBox reports for torrents that cannot finish.
INFINITE_ETA = 8_640_000


class Profile(StrEnum):
    """How a torrent behaves over time; the names are part of the admin API."""

    DOWNLOADING = "downloading"
    STALLED = "stalled"
    STALLS_LATER = "stalls_later"
    SEEDING = "seeding"
    DEAD_SEED = "dead_seed"
    FINISHED_INACTIVE = "finished_inactive"
    QUEUED = "queued"
    METADL = "metadl"


FINISHED_PROFILES = frozenset({Profile.SEEDING, Profile.DEAD_SEED, Profile.FINISHED_INACTIVE})


@dataclass(frozen=True, slots=True)
class Life:
    """The fixed parameters of one torrent's life, measured from its birth (age 0)."""

    profile: Profile
    size: int
    download_rate: int
    upload_rate: int
    start_downloaded: int
    start_uploaded: int
    stall_after: float | None
    seeds: int
    peers: int
    # metadl only: simulated seconds until the metadata arrives and the download begins; None
    # keeps it in metaDL forever.
    metadata_after: float | None = None


class LiveState(NamedTuple):
    """What the torrent looks like at one age; `moving` says whether time alone still changes it."""

    active: bool
    download_state: str
    seeds: int
    peers: int
    downloaded: int
    uploaded: int
    download_speed: int
    upload_speed: int
    eta: int
    finished: bool
    # Age at which the download finished (0 when it was finished at birth), None while unfinished.
    finished_age: float | None
    # Age of the last change that time caused; 0 when nothing has changed since birth.
    changed_age: float
    moving: bool
    # False while a metadl torrent waits for its metadata: size and files are not known yet.
    has_metadata: bool = True


def state_at(life: Life, age: float) -> LiveState:
    """The state of a torrent with this life after `age` simulated seconds (age >= 0)."""
    profile = life.profile
    if profile is Profile.METADL:
        return _metadl(life, age)
    if profile in FINISHED_PROFILES:
        return _finished_at_birth(life, age)
    if profile is Profile.STALLED:
        return _stalled(life, life.start_downloaded, 0.0)

    rate = life.download_rate
    remaining = life.size - life.start_downloaded
    finish_age = remaining / rate if rate > 0 else math.inf
    stall_age = life.stall_after if profile is Profile.STALLS_LATER else None
    if stall_age is not None and stall_age < finish_age and age >= stall_age:
        return _stalled(life, life.start_downloaded + int(rate * stall_age), stall_age)
    if age < finish_age:
        # Float rounding must not report the last byte before the finish age is reached.
        downloaded = min(life.start_downloaded + int(rate * age), life.size - 1)
        eta = math.ceil((life.size - downloaded) / rate)
        return LiveState(
            True,
            "downloading",
            life.seeds,
            life.peers,
            downloaded,
            life.start_uploaded,
            rate,
            0,
            eta,
            False,
            None,
            0.0,
            True,
        )
    # Finished during its life: it seeds from then on, so the ratio climbs with time.
    uploaded = life.start_uploaded + int(life.upload_rate * (age - finish_age))
    return LiveState(
        True,
        "uploading",
        life.seeds,
        life.peers,
        life.size,
        uploaded,
        0,
        life.upload_rate,
        0,
        True,
        finish_age,
        finish_age,
        life.upload_rate > 0,
    )


def _metadl(life: Life, age: float) -> LiveState:
    """Fetching metadata; once it arrives, a download from zero that began at that age."""
    arrival = life.metadata_after
    if arrival is None or age < arrival:
        # Waiting for metadata moves only when it is due to arrive, so the memo must wait too.
        waiting = arrival is not None
        return LiveState(
            True,
            "metaDL",
            0,
            life.peers,
            0,
            0,
            0,
            0,
            INFINITE_ETA,
            False,
            None,
            0.0,
            waiting,
            False,
        )
    later = state_at(replace(life, profile=Profile.DOWNLOADING, metadata_after=None), age - arrival)
    finished_age = None if later.finished_age is None else later.finished_age + arrival
    return later._replace(finished_age=finished_age, changed_age=later.changed_age + arrival)


def _finished_at_birth(life: Life, age: float) -> LiveState:
    """Seeding, dead seeds and finished-inactive torrents: complete before their life began."""
    if life.profile is Profile.SEEDING:
        uploaded = life.start_uploaded + int(life.upload_rate * age)
        return LiveState(
            True,
            "uploading",
            life.seeds,
            life.peers,
            life.size,
            uploaded,
            0,
            life.upload_rate,
            0,
            True,
            0.0,
            0.0,
            life.upload_rate > 0,
        )
    active = life.profile is Profile.DEAD_SEED
    state = "uploading" if active else "completed"
    return LiveState(
        active, state, 0, 0, life.size, life.start_uploaded, 0, 0, 0, True, 0.0, 0.0, False
    )


def _stalled(life: Life, downloaded: int, since_age: float) -> LiveState:
    """Still trying to download, but no seed is connected, so nothing moves."""
    return LiveState(
        True,
        "stalled (no seeds)",
        0,
        life.peers,
        downloaded,
        life.start_uploaded,
        0,
        0,
        INFINITE_ETA,
        False,
        None,
        since_age,
        False,
    )


def paused(state: LiveState) -> LiveState:
    """A paused torrent keeps its counters but is inactive and transfers nothing."""
    return state._replace(
        active=False,
        download_state="paused",
        download_speed=0,
        upload_speed=0,
        eta=0 if state.finished else INFINITE_ETA,
        moving=False,
    )


def stopped(state: LiveState) -> LiveState:
    """After stop_seeding: inactive, "completed", counters frozen, files kept."""
    return state._replace(
        active=False,
        download_state="completed",
        seeds=0,
        peers=0,
        download_speed=0,
        upload_speed=0,
        eta=0,
        moving=False,
    )
