"""The users this scheduler replica polls, kept in step with every shard's registry.

Each shard's registry is synced incrementally (changes after the last sequence number seen);
when a shard's registry epoch changes (the file was replaced) it is synced again from zero and
users it no longer lists are dropped. A user belongs to this replica when rendezvous hashing over
the replicas says so, and to a shard when hashing over the shards says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from torbox.automation.v1 import userstore_service_pb2 as pb

from common import grpc_client
from common.routing import owner_index
from scheduler_svc.health import KeyHealth
from scheduler_svc.keys import KeyBox, KeyDecryptError
from scheduler_svc.streams import IngestStream

log = logging.getLogger(__name__)

ACTIVE = pb.USER_STATUS_ACTIVE
AUTH_FAILED = pb.USER_STATUS_AUTH_FAILED
REMOVED = pb.USER_STATUS_REMOVED
SYNC_PAGE = 5000


@dataclass(slots=True)
class UserEntry:
    """A user this replica polls, with their key (decrypted on first use) and its health."""

    auth_id: str
    status: int
    ciphertext: bytes
    has_enabled_rules: bool
    health: KeyHealth = field(default_factory=KeyHealth)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    api_key: str | None = None
    # How many torrents (not queued items) the last successful fetch listed; None before one.
    last_listed: int | None = None
    # The other types (usenet, webdl) the user's enabled rules need listed, as the last plan
    # said: only these lists are fetched, so a user with torrent rules pays for no other.
    kinds: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Change:
    """What a sync changed for one user: "added", "updated" or "removed".

    `bulk` marks changes from reading a shard's whole registry (first contact or a replaced
    registry): those users are spread over their interval instead of all being polled at once.
    """

    kind: str
    entry: UserEntry
    bulk: bool = False


@dataclass(slots=True)
class _ShardCursor:
    epoch: str = ""
    seq: int = 0


class Directory:
    """This replica's users and the streams to their shards."""

    def __init__(
        self,
        shards: Sequence[IngestStream],
        keybox: KeyBox,
        *,
        replica_index: int,
        replicas: int,
        timeout: float,
    ) -> None:
        self.shards = list(shards)
        self.keybox = keybox
        self.replica_index = replica_index
        self.replicas = replicas
        self.timeout = timeout
        self.users: dict[str, UserEntry] = {}
        self._cursors = [_ShardCursor() for _ in shards]
        self.synced_once = False

    def owns(self, auth_id: str) -> bool:
        """Whether this replica polls the user."""
        return owner_index(auth_id, self.replicas) == self.replica_index

    def shard_index(self, auth_id: str) -> int:
        """Which userstore shard holds the user."""
        return owner_index(auth_id, len(self.shards))

    def shard_for(self, auth_id: str) -> IngestStream:
        """The stream to the user's shard."""
        return self.shards[self.shard_index(auth_id)]

    def api_key(self, entry: UserEntry) -> str:
        """The user's API key in plaintext (decrypted once, kept in memory only)."""
        if entry.api_key is None:
            entry.api_key = self.keybox.decrypt(entry.ciphertext, entry.auth_id)
        return entry.api_key

    def apply(self, user: pb.User, shard: int) -> Change | None:
        """Fold one registry row into the directory; returns what changed for the poller."""
        auth_id = user.auth_id
        if not self.owns(auth_id) or self.shard_index(auth_id) != shard:
            return None
        entry = self.users.get(auth_id)
        if user.status == REMOVED or (user.status == ACTIVE and not user.key_ciphertext):
            if entry is None:
                return None
            del self.users[auth_id]
            return Change("removed", entry)
        if entry is None:
            entry = UserEntry(auth_id, user.status, user.key_ciphertext, user.has_enabled_rules)
            self.users[auth_id] = entry
            return Change("added", entry)
        changed = (
            entry.status != user.status
            or entry.ciphertext != user.key_ciphertext
            or entry.has_enabled_rules != user.has_enabled_rules
        )
        if entry.ciphertext != user.key_ciphertext or (
            entry.status == AUTH_FAILED and user.status == ACTIVE
        ):
            # A new key, or the old one validated again by ensure-db (possibly through another
            # replica): its authentication failures start over.
            entry.health.reset_auth()
        if entry.ciphertext != user.key_ciphertext:
            entry.api_key = None
        entry.status = user.status
        entry.ciphertext = user.key_ciphertext
        entry.has_enabled_rules = user.has_enabled_rules
        return Change("updated", entry) if changed else None

    async def sync(self) -> list[Change]:
        """Pull registry changes from every shard (a shard that does not answer is skipped)."""
        changes: list[Change] = []
        for index, stream in enumerate(self.shards):
            try:
                changes.extend(await self._sync_shard(index, stream))
            except Exception as error:
                log.warning(
                    "registry sync failed", extra={"shard": stream.address, "error": str(error)}
                )
        self.synced_once = True
        return changes

    async def _sync_shard(self, index: int, stream: IngestStream) -> list[Change]:
        cursor = self._cursors[index]
        after = cursor.seq
        epoch = cursor.epoch
        full = False
        rows: list[pb.User] = []
        while True:
            response = await stream.stub.ListUsers(
                pb.ListUsersRequest(after_seq=after, limit=SYNC_PAGE),
                timeout=self.timeout,
                metadata=grpc_client.metadata(),
            )
            if response.registry_epoch != epoch:
                # First contact, or the registry was replaced: read it all from the start.
                asked_from_start = after == 0
                epoch, after, full, rows = response.registry_epoch, 0, True, []
                if not asked_from_start:
                    continue
            rows.extend(response.users)
            after = max(after, response.latest_seq)
            if not response.more:
                break
        changes = [c for c in (self.apply(user, index) for user in rows) if c is not None]
        if full:
            changes = [Change(c.kind, c.entry, bulk=True) for c in changes]
            listed = {user.auth_id for user in rows}
            for auth_id in [
                a for a in self.users if self.shard_index(a) == index and a not in listed
            ]:
                changes.append(Change("removed", self.users.pop(auth_id), bulk=True))
        cursor.epoch, cursor.seq = epoch, after
        return changes

    def transient(self, user: pb.User) -> UserEntry:
        """An entry for a user another replica polls (manual runs, restores)."""
        return UserEntry(user.auth_id, user.status, user.key_ciphertext, user.has_enabled_rules)


__all__ = [
    "ACTIVE",
    "AUTH_FAILED",
    "REMOVED",
    "Change",
    "Directory",
    "KeyDecryptError",
    "UserEntry",
]
