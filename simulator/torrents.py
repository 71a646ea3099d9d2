"""One torrent or queued item on an account: its content, its life and what actions did to it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import quote

from simulator.catalog import FileEntry
from simulator.model import Life, LiveState, Profile, paused, state_at, stopped


@dataclass(frozen=True, slots=True)
class Content:
    """What a torrent is, independent of its progress: identity, files and preferences."""

    hash: str
    name: str
    size: int
    files: tuple[FileEntry, ...]
    magnet: str | None
    torrent_file: bytes | None
    private: bool
    tracker: str | None
    seed_torrent: bool
    allow_zipped: bool

    def magnet_uri(self) -> str:
        """The stored magnet, or one rebuilt from hash and name (for .torrent uploads)."""
        return self.magnet or magnet_for(self.hash, self.name)


def magnet_for(info_hash: str, name: str) -> str:
    """A minimal magnet URI, the way TorBox composes one."""
    return f"magnet:?xt=urn:btih:{info_hash}&dn={quote(name, safe='')}"


@dataclass(frozen=True, slots=True)
class Overrides:
    """What a test forces into a torrent's JSON, whatever its life says (admin API only)."""

    # Rendered instead of the life's download_state, as any text TorBox might send.
    download_state: str | None = None
    # Rendered instead of the life's active flag (in the account's active_as style).
    active: bool | None = None
    # Top-level fields rendered as JSON null; this wins over the two overrides above.
    nulls: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.download_state is not None or self.active is not None or bool(self.nulls)

    def describe(self) -> dict[str, object]:
        """The overrides as the admin API reports them."""
        return {
            "download_state": self.download_state,
            "active": self.active,
            "nulls": sorted(self.nulls),
        }


class Hold(StrEnum):
    """Why a torrent's life is frozen by an action."""

    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(slots=True, eq=False)
class Torrent:
    """A torrent in mylist; its state is computed from its life and the simulated clock."""

    id: int
    content: Content
    life: Life
    birth_sim: float
    created_wall: float
    # The unchanging start of the rendered JSON object ("{" and the fixed fields), built once.
    fragment: str = ""
    # Wall time of the last action; the reported updated_at of a torrent nothing moves.
    last_event_wall: float = 0.0
    hold: Hold | None = None
    held_age: float = 0.0
    # Simulated seconds spent on hold, which do not count towards the torrent's age.
    held_total: float = 0.0
    # The rendered live fields (the rest of the object), kept once time alone cannot change them.
    settled_tail: str | None = None
    # cached_at as rendered JSON (the account's date style), fixed once the finish is first seen.
    cached_at_json: str | None = None
    # None for the ordinary torrent, so rendering it costs no more than before.
    overrides: Overrides | None = None
    # Rendered without metadata (size 0, files []) until its life says the metadata arrived.
    bare: bool = False
    # What TorBox's edit call (edittorrent) sets: the Airlock flag, the user's TorBox tags and
    # alternative hashes (a new name replaces the content's).
    airlocked: bool = False
    tags: tuple[str, ...] = ()
    alternative_hashes: tuple[str, ...] = ()

    def edit(
        self,
        *,
        name: str | None,
        tags: tuple[str, ...] | None,
        alternative_hashes: tuple[str, ...] | None,
        airlocked: bool | None,
        wall_now: float,
    ) -> None:
        """Apply an edit call: each given field replaces the torrent's; the JSON is rebuilt."""
        if name is not None:
            self.content = replace(self.content, name=name)
        if tags is not None:
            self.tags = tags
        if alternative_hashes is not None:
            self.alternative_hashes = alternative_hashes
        if airlocked is not None:
            self.airlocked = airlocked
        self.fragment = ""
        self._touched(wall_now)

    @property
    def profile(self) -> Profile:
        """The profile the torrent was created with."""
        return self.life.profile

    def age(self, sim_now: float) -> float:
        """Simulated seconds of life so far, not counting time on hold."""
        if self.hold is not None:
            return self.held_age
        return max(0.0, sim_now - self.birth_sim - self.held_total)

    def state(self, sim_now: float) -> LiveState:
        """The live state now, with any pause or stop applied on top of the profile."""
        current = state_at(self.life, self.age(sim_now))
        if self.hold is Hold.PAUSED:
            return paused(current)
        if self.hold is Hold.STOPPED:
            return stopped(current)
        return current

    def put_on_hold(self, hold: Hold, sim_now: float, wall_now: float) -> None:
        """Pause or stop seeding: freeze the counters where they are now."""
        if self.hold is None:
            self.held_age = self.age(sim_now)
        self.hold = hold
        self._touched(wall_now)

    def resume(self, sim_now: float, wall_now: float) -> None:
        """Continue a paused or stopped torrent from where it was frozen."""
        if self.hold is None:
            return
        self.held_total = sim_now - self.birth_sim - self.held_age
        self.hold = None
        self._touched(wall_now)

    def override(self, overrides: Overrides) -> None:
        """Force fields of the rendered JSON; the fragment is rebuilt on the next render."""
        self.overrides = overrides or None
        self.fragment = ""
        self.settled_tail = None

    def _touched(self, wall_now: float) -> None:
        self.last_event_wall = wall_now
        self.settled_tail = None


@dataclass(slots=True, eq=False)
class QueuedItem:
    """An item in the queue (getqueued); starting it turns `life` into a mylist torrent."""

    id: int
    content: Content
    life: Life
    created_wall: float
