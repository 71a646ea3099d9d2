"""Turns a torrent spec (admin API) or an add request (createtorrent) into content and a life."""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field, fields
from typing import TypeVar

from simulator.catalog import FileEntry, files_for, random_hash, random_name, random_size
from simulator.model import FINISHED_PROFILES, Life, Profile
from simulator.render import TORRENT_FIELDS
from simulator.torrents import Content, Overrides, magnet_for

_KIB = 1024
_MIB = 1024 * _KIB
_HOUR = 3600.0
_DAY = 86_400.0
_HEX = frozenset(string.hexdigits.lower())
# The spec (and PATCH) keys that become a torrent's Overrides.
OVERRIDE_FIELDS = frozenset({"download_state", "active", "nulls"})
T = TypeVar("T")


class SpecError(ValueError):
    """A torrent spec the admin API cannot honour; the message names the field."""


@dataclass(frozen=True, slots=True)
class TorrentSpec:
    """What a test asks for; every field but the profile is drawn at random when absent."""

    profile: Profile
    hash: str | None = None
    name: str | None = None
    size: int | None = None
    download_rate: int | None = None
    upload_rate: int | None = None
    ratio: float | None = None
    progress: float | None = None
    stall_after: float | None = None
    private: bool | None = None
    tracker: str | None = None
    # Distinguishes an explicit "tracker": null (hidden tracker) from no tracker key at all.
    tracker_given: bool = False
    seeds: int | None = None
    peers: int | None = None
    age_seconds: float | None = None
    # metadl only: the metadata arrives after this many simulated seconds, then it downloads.
    metadata_after: float | None = None
    # download_state, active and nulls: forced into the rendered JSON whatever the life says.
    overrides: Overrides = field(default_factory=Overrides)

    @classmethod
    def parse(cls, raw: object) -> TorrentSpec:
        """Validate a JSON spec strictly: unknown keys and wrong types are errors."""
        if not isinstance(raw, dict):
            raise SpecError("a torrent spec must be an object")
        known = {f.name for f in fields(cls)} - {"tracker_given", "overrides"} | OVERRIDE_FIELDS
        unknown = set(raw) - known
        if unknown:
            raise SpecError(f"unknown torrent spec fields: {sorted(unknown)}")
        try:
            profile = Profile(str(raw.get("profile")))
        except ValueError:
            names = [p.value for p in Profile]
            raise SpecError(f"profile must be one of {names}") from None
        spec = cls(
            profile=profile,
            hash=_hash(raw.get("hash")),
            name=_text(raw, "name"),
            size=_integer(raw, "size", 1),
            download_rate=_integer(raw, "download_rate", 1),
            upload_rate=_integer(raw, "upload_rate", 0),
            ratio=_number(raw, "ratio", 0.0, math.inf),
            progress=_number(raw, "progress", 0.0, 1.0),
            stall_after=_number(raw, "stall_after", 0.0, math.inf),
            private=_flag(raw, "private"),
            tracker=_text(raw, "tracker"),
            tracker_given="tracker" in raw,
            seeds=_integer(raw, "seeds", 0),
            peers=_integer(raw, "peers", 0),
            age_seconds=_number(raw, "age_seconds", 0.0, math.inf),
            metadata_after=_number(raw, "metadata_after", 0.0, math.inf),
            overrides=parse_overrides(raw),
        )
        spec._check_profile_fit()
        return spec

    def _check_profile_fit(self) -> None:
        """Refuse fields that mean nothing for the chosen profile."""
        stuck = self.profile in (Profile.STALLED, Profile.STALLS_LATER)
        if stuck and self.progress is not None and self.progress >= 1.0:
            raise SpecError("a stalled torrent's progress must stay below 1")
        metadl = self.profile is Profile.METADL
        if self.metadata_after is not None and not metadl:
            raise SpecError("metadata_after applies to the metadl profile only")
        if metadl and self.progress is not None:
            # Nothing is downloaded before the metadata; a metadl download starts from zero.
            raise SpecError("progress does not apply to the metadl profile")
        if self.profile is Profile.QUEUED and self.overrides:
            raise SpecError("download_state, active and nulls do not apply to queued items")


def parse_overrides(raw: dict[str, object], base: Overrides | None = None) -> Overrides:
    """download_state, active and nulls from JSON; a key left out keeps `base`'s value."""
    base = base or Overrides()
    return Overrides(
        download_state=_state_text(raw) if "download_state" in raw else base.download_state,
        active=_flag(raw, "active") if "active" in raw else base.active,
        nulls=_nulls(raw) if "nulls" in raw else base.nulls,
    )


def _state_text(raw: dict[str, object]) -> str | None:
    # Any string at all, since TorBox sends free text here; null drops the override.
    value = raw.get("download_state")
    if value is None or isinstance(value, str):
        return value
    raise SpecError("download_state must be a string")


def _nulls(raw: dict[str, object]) -> frozenset[str]:
    # Every name must be a field mylist renders, so a typo fails loudly instead of doing nothing.
    value = raw.get("nulls")
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise SpecError("nulls must be a list of field names")
    unknown = sorted(set(value) - TORRENT_FIELDS)
    if unknown:
        raise SpecError(f"nulls names unknown torrent fields: {unknown}")
    return frozenset(value)


@dataclass(frozen=True, slots=True)
class Blueprint:
    """Everything needed to add a torrent: content, life, and how long ago it was added."""

    content: Content
    life: Life
    age_seconds: float
    overrides: Overrides | None = None


def content_rng(seed: int, info_hash: str) -> random.Random:
    """Content follows from the hash, so re-adding an archived magnet gives the same files."""
    return random.Random(f"{seed}:{info_hash}")


def _content_draws(
    seed: int, info_hash: str, name: str | None, size: int | None
) -> tuple[str, int, list[FileEntry]]:
    """Name, size and files for a hash; every draw happens even when a value is given."""
    crng = content_rng(seed, info_hash)
    drawn_name = random_name(crng)
    title = name or drawn_name
    drawn_size = random_size(crng, title)
    total = size or drawn_size
    return title, total, files_for(crng, title, total)


def draw(spec: TorrentSpec, rng: random.Random, seed: int) -> Blueprint:
    """Fill the spec's gaps from `rng`; the draws happen in a fixed order whatever is given."""
    drawn_hash = random_hash(rng)
    download_rate = _log_uniform(rng, 512 * _KIB, 40 * _MIB)
    upload_rate = _log_uniform(rng, 64 * _KIB, 8 * _MIB)
    ratio_r, progress_r, stall_r, seeds_r, peers_r, private_r, tracker_r, age_r = (
        rng.random() for _ in range(8)
    )
    tracker_id = rng.getrandbits(64)

    profile = spec.profile
    info_hash = spec.hash or drawn_hash
    name, size, files = _content_draws(seed, info_hash, spec.name, spec.size)
    if profile is Profile.METADL and spec.metadata_after is None:
        # Metadata that never arrives: the content is as empty as TorBox shows it.
        size, files = 0, []
    private = spec.private if spec.private is not None else private_r < 0.15
    if spec.tracker_given:
        tracker = spec.tracker
    elif private or tracker_r < 0.3:
        tracker = _tracker_url(private, tracker_id)
    else:
        # TorBox hides trackers unless the user opts in, so most items report null.
        tracker = None
    content = Content(
        hash=info_hash,
        name=name,
        size=size,
        files=tuple(files),
        magnet=magnet_for(info_hash, name),
        torrent_file=None,
        private=private,
        tracker=tracker,
        seed_torrent=True,
        allow_zipped=True,
    )

    finished = profile in FINISHED_PROFILES
    progress = 1.0 if finished else _pick(spec.progress, _default_progress(profile, progress_r))
    start_downloaded = int(progress * size)
    if not finished and size:
        start_downloaded = min(start_downloaded, size - 1)
    ratio = _pick(spec.ratio, _default_ratio(profile, ratio_r))
    rate = _pick(spec.download_rate, download_rate)
    stall_after = None
    if profile is Profile.STALLS_LATER:
        # Stall somewhere between 20% and 80% of the way to the finish.
        default_stall = (0.2 + 0.6 * stall_r) * (size - start_downloaded) / rate
        stall_after = _pick(spec.stall_after, default_stall)
    life = Life(
        profile=Profile.DOWNLOADING if profile is Profile.QUEUED else profile,
        size=size,
        download_rate=rate,
        upload_rate=_pick(spec.upload_rate, upload_rate),
        start_downloaded=start_downloaded,
        start_uploaded=int(ratio * start_downloaded),
        stall_after=stall_after,
        seeds=_pick(spec.seeds, _default_seeds(profile, seeds_r)),
        peers=_pick(spec.peers, _default_peers(profile, peers_r)),
        metadata_after=spec.metadata_after,
    )
    age = _pick(spec.age_seconds, _default_age(profile, age_r))
    return Blueprint(content, life, age, spec.overrides or None)


def added(
    *,
    seed: int,
    info_hash: str,
    name: str | None,
    magnet: str | None,
    torrent_file: bytes | None,
    seed_pref: int,
    allow_zip: bool,
    cached: bool,
) -> Blueprint:
    """A torrent added through createtorrent: a cache hit is complete at once, else it downloads."""
    title, size, files = _content_draws(seed, info_hash, name, None)
    # Its own stream, so the rates do not repeat the numbers that shaped the content.
    crng = random.Random(f"{seed}:{info_hash}:life")
    seeds = seed_pref != 3
    content = Content(
        hash=info_hash,
        name=title,
        size=size,
        files=tuple(files),
        magnet=magnet,
        torrent_file=torrent_file,
        private=False,
        tracker=None,
        seed_torrent=seeds,
        allow_zipped=allow_zip,
    )
    download_rate = _log_uniform(crng, 2 * _MIB, 40 * _MIB)
    upload_rate = _log_uniform(crng, 64 * _KIB, 4 * _MIB)
    if cached:
        profile = Profile.SEEDING if seeds else Profile.FINISHED_INACTIVE
    else:
        profile = Profile.DOWNLOADING
    life = Life(
        profile=profile,
        size=size,
        download_rate=download_rate,
        upload_rate=upload_rate if seeds else 0,
        start_downloaded=size if cached else 0,
        start_uploaded=0,
        stall_after=None,
        seeds=crng.randint(1, 40),
        peers=crng.randint(0, 60),
    )
    return Blueprint(content, life, 0.0)


def _pick(given: T | None, default: T) -> T:
    return default if given is None else given


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _tracker_url(private: bool, tracker_id: int) -> str:
    if private:
        return f"https://tracker.private.example/{tracker_id:016x}/announce"
    return "udp://tracker.public.example:1337/announce"


def _default_progress(profile: Profile, r: float) -> float:
    if profile is Profile.DOWNLOADING:
        return 0.9 * r
    if profile is Profile.STALLED:
        return 0.05 + 0.9 * r
    if profile is Profile.STALLS_LATER:
        return 0.5 * r
    return 0.0


def _default_ratio(profile: Profile, r: float) -> float:
    if profile is Profile.DEAD_SEED:
        return 2.0 * r
    if profile in FINISHED_PROFILES:
        return 3.0 * r
    return 0.0


def _default_seeds(profile: Profile, r: float) -> int:
    # A metadl torrent shows no seeds until its metadata arrives; these are for the download.
    if profile in (Profile.DOWNLOADING, Profile.STALLS_LATER, Profile.QUEUED, Profile.METADL):
        return 1 + int(r * 60)
    if profile is Profile.SEEDING:
        return int(r * 25)
    return 0


def _default_peers(profile: Profile, r: float) -> int:
    if profile in (Profile.DOWNLOADING, Profile.STALLS_LATER, Profile.QUEUED):
        return int(r * 80)
    if profile is Profile.SEEDING:
        return 1 + int(r * 40)
    if profile in (Profile.STALLED, Profile.METADL):
        return int(r * 4)
    return 0


def _default_age(profile: Profile, r: float) -> float:
    if profile in FINISHED_PROFILES:
        return _HOUR + r * 29 * _DAY
    if profile is Profile.STALLED:
        return r * 7 * _DAY
    return r * 6 * _HOUR


def _hash(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) != 40 or not set(raw.lower()) <= _HEX:
        raise SpecError("hash must be 40 hexadecimal characters")
    return raw.lower()


def _text(raw: dict[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SpecError(f"{key} must be a non-empty string")
    return value


def _flag(raw: dict[str, object], key: str) -> bool | None:
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise SpecError(f"{key} must be a boolean")


def _integer(raw: dict[str, object], key: str, minimum: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    # bool is an int subclass; `true` as a size is a mistake worth reporting.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{key} must be an integer >= {minimum}")
    return value


def _number(raw: dict[str, object], key: str, low: float, high: float) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{key} must be a number")
    number = float(value)
    if not low <= number <= high:
        raise SpecError(f"{key} must be between {low} and {high}")
    return number
