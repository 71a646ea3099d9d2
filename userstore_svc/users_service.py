"""Registering and removing users: the registry row and the user's database file together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from common.errors import InvalidArgument
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry

log = logging.getLogger(__name__)

MAX_CIPHERTEXT = 1024


@dataclass(frozen=True, slots=True)
class Registered:
    """The answer to a registration."""

    was_created: bool
    db_exists: bool
    reactivated: bool


class UserService:
    """User lifecycle on this shard."""

    def __init__(self, pool: DatabasePool, registry: Registry, clock: Callable[[], float]) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock

    async def register(self, auth_id: str, ciphertext: bytes) -> Registered:
        """Register (or refresh) a user and make sure their database exists and is migrated."""
        self.pool.path_for(auth_id)  # validates the auth id
        if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT:
            raise InvalidArgument("key_ciphertext is required", field="key_ciphertext")
        existed = self.pool.path_for(auth_id).exists()
        async with self.pool.use(auth_id, create=True):
            pass  # opening creates and migrates the file
        _row, new_user, reactivated = await self.registry.register(
            auth_id, ciphertext, self.clock()
        )
        if not existed and not new_user:
            log.warning("recreated a missing user database")
        return Registered(was_created=not existed, db_exists=True, reactivated=reactivated)

    async def remove(self, auth_id: str) -> bool:
        """Delete the user's registry row (tombstoned) and their database files."""
        path = self.pool.path_for(auth_id)
        removed = await self.registry.remove(auth_id, self.clock())
        async with self.pool.exclusive(auth_id):
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        return removed
