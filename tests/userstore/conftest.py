"""Fixtures for userstore tests: real SQLite files in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from userstore_svc.hub import EventHub
from userstore_svc.ingest import IngestConfig, Ingestor
from userstore_svc.rules_service import RuleService
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry
from userstore_svc.users_service import UserService


@dataclass
class Store:
    """A userstore's storage and services, in-process over real files."""

    root: Path
    registry: Registry
    pool: DatabasePool
    users: UserService
    ingestor: Ingestor
    rules: RuleService
    hub: EventHub
    now: list[float]

    def clock(self) -> float:
        return self.now[0]


async def open_store(
    root: Path,
    *,
    max_open: int = 50,
    config: IngestConfig | None = None,
    max_cached: int | None = None,
) -> Store:
    """Open (or reopen) a store in `root`."""
    registry = await Registry.open(root / "master.sqlite")
    pool = DatabasePool(root / "users", max_open, max_cached=max_cached)
    (root / "users").mkdir(parents=True, exist_ok=True)
    hub = EventHub()
    now = [1_800_000_000.0]
    store = Store(root, registry, pool, None, None, None, hub, now)  # type: ignore[arg-type]
    store.users = UserService(pool, registry, store.clock)
    store.ingestor = Ingestor(pool, registry, hub, config or IngestConfig())
    store.rules = RuleService(pool, registry, store.clock)
    return store


async def close_store(store: Store) -> None:
    """Close everything."""
    await store.pool.close()
    await store.registry.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh store."""
    opened = await open_store(tmp_path)
    try:
        yield opened
    finally:
        await close_store(opened)
