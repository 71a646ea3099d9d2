"""TorBox's JSON for torrents and queued items, built from a fixed fragment plus the live fields."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from simulator.clock import SimClock
from simulator.torrents import Content, Overrides, QueuedItem, Torrent

ActiveAs = Literal["bool", "int", "string"]
_ACTIVE_TOKENS: dict[str, tuple[str, str]] = {
    "bool": ("true", "false"),
    "int": ("1", "0"),
    "string": ('"true"', '"false"'),
}
_EXPIRY_SECONDS = 30 * 86_400

# Every top-level field of a torrent object, which the `nulls` override may name.
FIXED_FIELDS = (
    "id",
    "auth_id",
    "server",
    "hash",
    "name",
    "magnet",
    "size",
    "created_at",
    "torrent_file",
    "files",
    "download_path",
    "inactive_check",
    "tracker",
    "owner",
    "seed_torrent",
    "allow_zipped",
    "long_term_seeding",
    "tracker_message",
    "private",
    "alternative_hashes",
    "tags",
    "airlocked",
)
LIVE_FIELDS = (
    "active",
    "updated_at",
    "download_state",
    "seeds",
    "peers",
    "ratio",
    "progress",
    "download_speed",
    "upload_speed",
    "eta",
    "expires_at",
    "download_present",
    "download_finished",
    "availability",
    "total_uploaded",
    "total_downloaded",
    "cached",
    "cached_at",
)
TORRENT_FIELDS = frozenset(FIXED_FIELDS + LIVE_FIELDS)


@dataclass(frozen=True, slots=True)
class Knobs:
    """Per-account rendering variants that real clients have met in the wild."""

    id_returns_list: bool = False
    legacy_dates: bool = False
    active_as: ActiveAs = "bool"
    # TorBox moves an active item's updated_at on every list, whether or not its bytes moved;
    # off, updated_at changes only when something about the torrent does.
    active_updated_at_now: bool = False

    @classmethod
    def parse(cls, raw: object) -> Knobs:
        """Validate the admin API's knobs object; unknown names are an error, not ignored."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("knobs must be an object")
        unknown = set(raw) - {
            "id_returns_list",
            "legacy_dates",
            "active_as",
            "active_updated_at_now",
        }
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        id_list = raw.get("id_returns_list", False)
        legacy = raw.get("legacy_dates", False)
        active_as = raw.get("active_as", "bool")
        active_now = raw.get("active_updated_at_now", False)
        if not all(isinstance(flag, bool) for flag in (id_list, legacy, active_now)):
            raise ValueError(
                "id_returns_list, legacy_dates and active_updated_at_now must be booleans"
            )
        if active_as not in get_args(ActiveAs):
            raise ValueError(f"active_as must be one of {list(get_args(ActiveAs))}")
        return cls(id_list, legacy, active_as, active_now)


def format_date(epoch: float, legacy: bool) -> str:
    """Today's `%Y-%m-%dT%H:%M:%SZ`, or the 2023 form with microseconds and +00:00."""
    if legacy:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def torrent_fragment(torrent: Torrent, *, auth_id: str, server: int, knobs: Knobs) -> str:
    """The opening brace and every field that never changes, as JSON text."""
    content = torrent.content
    bare = torrent.bare
    fields: dict[str, Any] = {
        "id": torrent.id,
        "auth_id": auth_id,
        "server": server,
        "hash": content.hash,
        "name": content.name,
        "magnet": content.magnet,
        "size": 0 if bare else content.size,
        "created_at": format_date(torrent.created_wall, knobs.legacy_dates),
        "torrent_file": content.torrent_file is not None,
        "files": [] if bare else _files(content),
        "download_path": content.hash,
        "inactive_check": 0,
        "tracker": content.tracker,
        "owner": auth_id,
        "seed_torrent": content.seed_torrent,
        "allow_zipped": content.allow_zipped,
        "long_term_seeding": False,
        "tracker_message": None,
        "private": content.private,
        "alternative_hashes": list(torrent.alternative_hashes),
        "tags": list(torrent.tags),
        "airlocked": torrent.airlocked,
    }
    if torrent.overrides is not None:
        for name in torrent.overrides.nulls & fields.keys():
            fields[name] = None
    return json.dumps(fields, separators=(",", ":"))[:-1]


def _files(content: Content) -> list[dict[str, Any]]:
    files = []
    for index, entry in enumerate(content.files):
        path = f"{content.name}/{entry.name}"
        files.append(
            {
                "id": index,
                "md5": None,
                "hash": content.hash,
                "name": path,
                "size": entry.size,
                "zipped": False,
                "s3_path": f"{content.hash}/{path}",
                "infected": False,
                "mimetype": entry.mimetype,
                "short_name": entry.name.rsplit("/", 1)[-1],
                "absolute_path": f"/downloads/{content.hash}/{path}",
                "opensubtitles_hash": None,
            }
        )
    return files


class Renderer:
    """Renders torrents for one request: the clock is read and "now" formatted only once."""

    def __init__(self, clock: SimClock, knobs: Knobs, *, auth_id: str, server: int) -> None:
        self._clock = clock
        self._knobs = knobs
        self._auth_id = auth_id
        self._server = server
        self._legacy = knobs.legacy_dates
        self._true, self._false = _ACTIVE_TOKENS[knobs.active_as]
        self._sim_now = clock.now()
        wall_now = time.time()
        self._now_date = format_date(wall_now, self._legacy)
        self._expires_date = format_date(wall_now + _EXPIRY_SECONDS, self._legacy)

    def torrent(self, torrent: Torrent) -> str:
        """One torrent object as JSON text."""
        if torrent.settled_tail is not None:
            return torrent.fragment + torrent.settled_tail
        state = torrent.state(self._sim_now)
        if torrent.bare and state.has_metadata:
            # The metadata arrived: size and files are known from now on.
            torrent.bare = False
            torrent.fragment = ""
        if not torrent.fragment:
            # Built at add time; only a metadata arrival or new overrides clear it.
            torrent.fragment = torrent_fragment(
                torrent, auth_id=self._auth_id, server=self._server, knobs=self._knobs
            )
        if state.finished:
            cached_at = torrent.cached_at_json
            if cached_at is None:
                finished = self._finish_wall(torrent, state.finished_age or 0.0)
                cached_at = torrent.cached_at_json = f'"{format_date(finished, self._legacy)}"'
            flag = "true"
        else:
            cached_at = "null"
            flag = "false"
        churn = self._knobs.active_updated_at_now and state.active
        if state.moving or churn:
            updated, expires = self._now_date, self._expires_date
        else:
            updated_wall = self._updated_wall(torrent, state.changed_age)
            updated = format_date(updated_wall, self._legacy)
            expires = format_date(updated_wall + _EXPIRY_SECONDS, self._legacy)
        size = torrent.life.size
        downloaded = state.downloaded
        progress = downloaded / size if size else 0.0
        ratio = state.uploaded / downloaded if downloaded else 0.0
        availability = max(float(state.seeds), progress)
        tail = (
            f',"active":{self._true if state.active else self._false},'
            f'"updated_at":"{updated}","download_state":"{state.download_state}",'
            f'"seeds":{state.seeds},"peers":{state.peers},"ratio":{ratio!r},'
            f'"progress":{progress!r},"download_speed":{state.download_speed},'
            f'"upload_speed":{state.upload_speed},"eta":{state.eta},"expires_at":"{expires}",'
            f'"download_present":{flag},"download_finished":{flag},'
            f'"availability":{availability!r},"total_uploaded":{state.uploaded},'
            f'"total_downloaded":{downloaded},"cached":{flag},"cached_at":{cached_at}}}'
        )
        if torrent.overrides is not None:
            tail = self._overridden(tail, torrent.overrides)
        if not (state.moving or churn):
            # Time alone cannot change these fields any more; actions clear the memo.
            torrent.settled_tail = tail
        return torrent.fragment + tail

    def _overridden(self, tail: str, overrides: Overrides) -> str:
        """The live fields with a test's overrides applied; rare, so a JSON round trip will do."""
        values = json.loads("{" + tail[1:])
        if overrides.download_state is not None:
            values["download_state"] = overrides.download_state
        if overrides.active is not None:
            values["active"] = json.loads(self._true if overrides.active else self._false)
        for name in overrides.nulls & values.keys():
            values[name] = None
        return "," + json.dumps(values, separators=(",", ":"))[1:]

    def _finish_wall(self, torrent: Torrent, finished_age: float) -> float:
        if finished_age <= 0:
            # Finished at birth: an instant cache hit, cached when it was added.
            return torrent.created_wall
        finish_sim = torrent.birth_sim + torrent.held_total + finished_age
        return self._clock.wall_at(finish_sim, not_before=torrent.last_event_wall)

    def _updated_wall(self, torrent: Torrent, changed_age: float) -> float:
        if torrent.hold is not None or changed_age <= 0:
            return torrent.last_event_wall
        change_sim = torrent.birth_sim + torrent.held_total + changed_age
        return self._clock.wall_at(change_sim, not_before=torrent.last_event_wall)

    def queued(self, item: QueuedItem, auth_id: str) -> dict[str, object]:
        """One queued item, as getqueued lists it."""
        content = item.content
        return {
            "id": item.id,
            "auth_id": auth_id,
            "created_at": format_date(item.created_wall, self._legacy),
            "magnet": content.magnet,
            "torrent_file": f"{content.hash}.torrent" if content.torrent_file else None,
            "hash": content.hash,
            "name": content.name,
            "type": "torrent",
        }
