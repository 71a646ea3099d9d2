"""Accounts and the registry that owns them: keys, torrents, queues, logs, faults and limits."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from simulator.clock import SimClock
from simulator.config import SimConfig
from simulator.creates import Budget, Downloads
from simulator.faults import FaultQueue
from simulator.model import FINISHED_PROFILES, Profile
from simulator.ratelimit import RateLimiter
from simulator.render import Knobs, Renderer, torrent_fragment
from simulator.specs import Blueprint, TorrentSpec, draw
from simulator.stats import Stats
from simulator.torrents import QueuedItem, Torrent

# The realistic mix POST /_sim/bulk uses: about half the torrents change between polls.
BULK_MIX: tuple[tuple[Profile, float], ...] = (
    (Profile.DOWNLOADING, 0.20),
    (Profile.SEEDING, 0.30),
    (Profile.FINISHED_INACTIVE, 0.25),
    (Profile.DEAD_SEED, 0.15),
    (Profile.STALLED, 0.10),
)
_BULK_PROFILES = [profile for profile, _ in BULK_MIX]
_BULK_WEIGHTS = [weight for _, weight in BULK_MIX]


@dataclass(slots=True)
class Snapshot:
    """mylist as TorBox's cache last saw it: rendered objects, newest first."""

    taken: float
    items: list[str]
    index: dict[int, int]
    # The torrent id of each item, so faults can drop items from a stale list too.
    ids: list[int]


@dataclass(frozen=True, slots=True)
class Identity:
    """The user behind a key, as /user/me reports it."""

    user_id: int
    auth_id: str
    server: int
    email: str
    customer: str
    referral: str
    created_wall: float
    updated_wall: float


class Account:
    """One TorBox user: its torrents and queue, plus the simulator's per-key bookkeeping."""

    def __init__(
        self, api_key: str, identity: Identity, knobs: Knobs, rng: random.Random, limit: int
    ) -> None:
        self.api_key = api_key
        self.identity = identity
        self.knobs = knobs
        self.rng = rng
        self.torrents: dict[int, Torrent] = {}
        self.queued: dict[int, QueuedItem] = {}
        # Info-hash -> id, over torrents and queued items alike, to refuse duplicates.
        self.hashes: dict[str, int] = {}
        self.requests: list[dict[str, object]] = []
        # TorBox calls answered for this key, by endpoint (getqueued by its type).
        self.calls: Counter[str] = Counter()
        self.faults = FaultQueue()
        self.limiter = RateLimiter(limit)
        self.budget = Budget(0, 3600.0)
        self.downloads = Downloads()
        self.snapshot: Snapshot | None = None
        # Every torrent ever added, which /user/me reports as the download count.
        self.added_total = 0
        self._ordered: list[Torrent] | None = None

    def ordered(self) -> list[Torrent]:
        """Torrents newest first, as mylist pages them; rebuilt only after adds and deletes."""
        if self._ordered is None:
            self._ordered = sorted(
                self.torrents.values(), key=lambda t: (t.created_wall, t.id), reverse=True
            )
        return self._ordered

    def renderer(self, clock: SimClock) -> Renderer:
        """A renderer for one request on this account."""
        ident = self.identity
        return Renderer(clock, self.knobs, auth_id=ident.auth_id, server=ident.server)

    def ordered_queue(self) -> list[QueuedItem]:
        """Queued items newest first."""
        return sorted(self.queued.values(), key=lambda q: (q.created_wall, q.id), reverse=True)

    def forget_order(self) -> None:
        """Drop the cached ordering after the set of torrents changed."""
        self._ordered = None


class Registry:
    """Every account, the global id counters, and who owns which torrent id."""

    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.stats = Stats()
        self.accounts: dict[str, Account] = {}
        self.revoked: set[str] = set()
        # Torrent ids are global on TorBox, which is what makes NOT_OWNER possible.
        self.owners: dict[int, Account] = {}
        # Hashes TorBox has complete copies of: adding one again is an instant cache hit.
        self.cached_hashes: set[str] = set()
        self._rng = random.Random(config.seed)
        self._next_torrent_id = 74_000_000 + self._rng.randrange(1_000_000)
        self._next_queued_id = 1_200_000 + self._rng.randrange(100_000)
        self.next_download_id = 300_000 + self._rng.randrange(100_000)
        self._next_user_id = 1_000_000 + self._rng.randrange(1_000_000)
        self._bulk_next: dict[str, int] = {}

    def lookup(self, api_key: str) -> Account | None:
        """The account behind a key; None for unknown and revoked keys alike."""
        return self.accounts.get(api_key)

    def create_account(self, api_key: str | None, knobs: Knobs) -> Account:
        """A new empty account; without a key, a UUID-like one is drawn from the seed."""
        if api_key is None:
            api_key = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            while api_key in self.accounts:
                api_key = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        elif api_key in self.accounts:
            raise KeyError(api_key)
        self.revoked.discard(api_key)
        rng = random.Random(f"{self.config.seed}:{api_key}")
        self._next_user_id += 1 + rng.randrange(50)
        identity = Identity(
            user_id=self._next_user_id,
            auth_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            server=rng.randint(1, 80),
            email=f"user{self._next_user_id}@example.com",
            customer="cus_" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=14)),
            referral=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            created_wall=time.time() - rng.uniform(30, 900) * 86_400,
            updated_wall=time.time(),
        )
        account = Account(api_key, identity, knobs, rng, self.config.rate_limit_per_minute)
        account.budget = Budget(self.config.uncached_per_hour, self.config.uncached_window_seconds)
        self.accounts[api_key] = account
        return account

    def delete_account(self, account: Account) -> None:
        """Remove the account; its key answers BAD_TOKEN from now on."""
        for torrent_id in account.torrents:
            self.owners.pop(torrent_id, None)
        del self.accounts[account.api_key]
        self.revoked.add(account.api_key)

    def add_spec(self, account: Account, spec: TorrentSpec) -> Torrent | QueuedItem:
        """Add a torrent (or a queued item for the queued profile) built from an admin spec."""
        blueprint = draw(spec, account.rng, self.config.seed)
        if spec.profile is Profile.QUEUED:
            return self.add_queued(account, blueprint)
        return self.add_torrent(account, blueprint)

    def add_torrent(self, account: Account, blueprint: Blueprint) -> Torrent:
        """Put a new torrent on the account's mylist."""
        now_wall = time.time()
        created = now_wall - blueprint.age_seconds
        torrent = Torrent(
            id=self._next_torrent_id,
            content=blueprint.content,
            life=blueprint.life,
            birth_sim=self.clock.now(),
            created_wall=created,
            last_event_wall=created,
            overrides=blueprint.overrides,
            bare=blueprint.life.profile is Profile.METADL,
        )
        self._next_torrent_id += 1
        torrent.fragment = torrent_fragment(
            torrent,
            auth_id=account.identity.auth_id,
            server=account.identity.server,
            knobs=account.knobs,
        )
        account.torrents[torrent.id] = torrent
        account.hashes[torrent.content.hash] = torrent.id
        account.forget_order()
        account.added_total += 1
        self.owners[torrent.id] = account
        if blueprint.life.profile in FINISHED_PROFILES:
            self.cached_hashes.add(torrent.content.hash)
        return torrent

    def add_queued(self, account: Account, blueprint: Blueprint) -> QueuedItem:
        """Put a new item in the account's queue."""
        item = QueuedItem(
            id=self._next_queued_id,
            content=blueprint.content,
            life=blueprint.life,
            created_wall=time.time() - blueprint.age_seconds,
        )
        self._next_queued_id += 1
        account.queued[item.id] = item
        account.hashes[item.content.hash] = item.id
        return item

    def remove_torrent(self, account: Account, torrent: Torrent) -> None:
        """Delete a torrent; a finished one stays in TorBox's cache for the next add."""
        if torrent.state(self.clock.now()).finished:
            self.cached_hashes.add(torrent.content.hash)
        del account.torrents[torrent.id]
        account.hashes.pop(torrent.content.hash, None)
        account.forget_order()
        self.owners.pop(torrent.id, None)

    def remove_queued(self, account: Account, item: QueuedItem) -> None:
        """Drop an item from the queue."""
        del account.queued[item.id]
        account.hashes.pop(item.content.hash, None)

    def start_queued(self, account: Account, item: QueuedItem) -> Torrent:
        """Move a queued item to mylist as a fresh download with a new torrent id."""
        self.remove_queued(account, item)
        return self.add_torrent(account, Blueprint(item.content, item.life, 0.0))

    def bulk(
        self, accounts: int, per_account: int, prefix: str, knobs: Knobs | None = None
    ) -> list[str]:
        """Create many accounts with a realistic mix; numbering continues per prefix."""
        keys: list[str] = []
        index = self._bulk_next.get(prefix, 0)
        while len(keys) < accounts:
            key = f"{prefix}-key-{index:08d}-sim"
            index += 1
            if key in self.accounts:
                continue
            account = self.create_account(key, knobs or Knobs())
            profiles = account.rng.choices(_BULK_PROFILES, _BULK_WEIGHTS, k=per_account)
            for profile in profiles:
                self.add_spec(account, TorrentSpec(profile=profile))
            keys.append(key)
        self._bulk_next[prefix] = index
        return keys
