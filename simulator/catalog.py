"""Plausible torrent content (names, sizes, file lists) drawn from a seeded random generator."""

from __future__ import annotations

import math
import random
from typing import NamedTuple

_TITLES = (
    "Big.Buck.Bunny", "Sintel", "Tears.of.Steel", "Elephants.Dream", "Cosmos.Laundromat",
    "Spring", "Agent.327", "Caminandes", "Glass.Half", "Hero", "Coffee.Run", "Charge",
    "Wing.It", "Sprite.Fright", "Daily.Dweebs", "The.Last.Harbor", "Northern.Lights",
    "Quiet.Orbit", "Paper.Moons", "Iron.Meadow",
)  # fmt: skip
_SHOWS = (
    "Open.Movie.Chronicles", "Blender.Shorts", "Harbor.Patrol", "The.Long.Signal",
    "Night.Garden.Tales", "Copper.Valley", "Rail.Workers", "Deep.Field",
)  # fmt: skip
_RESOLUTIONS = ("720p", "1080p", "1080p", "2160p")
_SOURCES = ("BluRay", "WEB-DL", "WEBRip", "HDTV")
_CODECS = ("x264", "x265", "H.264", "HEVC", "AV1")
_GROUPS = ("SIMGRP", "OPENRLS", "FREEFILM", "CCBY", "PUBDOM")
_MIB = 1024 * 1024
_GIB = 1024 * _MIB


class FileEntry(NamedTuple):
    """One file inside a torrent: its path below the torrent's root folder, size and type."""

    name: str
    size: int
    mimetype: str


def random_hash(rng: random.Random) -> str:
    """A 40-character lowercase hex info-hash."""
    return f"{rng.getrandbits(160):040x}"


def random_name(rng: random.Random) -> str:
    """A scene-style release name: a film or a season pack."""
    tail = f"{rng.choice(_RESOLUTIONS)}.{rng.choice(_SOURCES)}.{rng.choice(_CODECS)}"
    group = rng.choice(_GROUPS)
    if rng.random() < 0.25:
        return f"{rng.choice(_SHOWS)}.S{rng.randint(1, 9):02d}.{tail}-{group}"
    return f"{rng.choice(_TITLES)}.{rng.randint(1960, 2025)}.{tail}-{group}"


def random_size(rng: random.Random, name: str) -> int:
    """A size that suits the name: season packs are larger than films (log-uniform)."""
    low, high = (2 * _GIB, 30 * _GIB) if _is_season(name) else (700 * _MIB, 12 * _GIB)
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def files_for(rng: random.Random, name: str, size: int) -> list[FileEntry]:
    """The file list of a torrent: one episode per file for season packs, else one video."""
    if size <= 0:
        return []
    if _is_season(name):
        episodes = rng.randint(3, 8)
        share = size // episodes
        entries = [
            FileEntry(_episode_name(name, number), share, "video/x-matroska")
            for number in range(1, episodes)
        ]
        last = size - share * (episodes - 1)
        entries.append(FileEntry(_episode_name(name, episodes), last, "video/x-matroska"))
        return entries
    if "." in name[-5:]:
        # The name already carries an extension (an ISO, say): the torrent is that one file.
        return [FileEntry(name, size, "application/octet-stream")]
    return [FileEntry(f"{name}.mkv", size, "video/x-matroska")]


def _is_season(name: str) -> bool:
    parts = name.split(".")
    return any(len(p) == 3 and p[0] == "S" and p[1:].isdigit() for p in parts)


def _episode_name(season_name: str, number: int) -> str:
    parts = season_name.split(".")
    for index, part in enumerate(parts):
        if len(part) == 3 and part[0] == "S" and part[1:].isdigit():
            parts[index] = f"{part}E{number:02d}"
            break
    return ".".join(parts) + ".mkv"
