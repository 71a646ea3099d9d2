"""Where one poll's time goes in the userstore: open, load, convert, apply and write, one at a time.

The steps are those of :meth:`userstore_svc.ingest.Ingestor.ingest` (and of the servicer's
protobuf conversion), timed separately with nothing else running: a *cold* poll finds the user's
database closed (the pool holds one connection and users are polled in turn, so opening also
closes the previous user's file), a *released* poll finds it open but its state released (every
user's file open, one user's state cached, users polled in turn: a shard with more users than
``MAX_CACHED_USERS``), a *warm* poll finds it open with its state cached.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from torbox.automation.v1 import userstore_service_pb2 as pb

from bench.workload import POLL_INTERVAL, Account, auth_id, rule_docs
from userstore_svc import convert
from userstore_svc.hub import EventHub
from userstore_svc.ingest import IngestConfig, Ingestor, SnapshotIn, _apply
from userstore_svc.rules_service import RuleService
from userstore_svc.store import user_db
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry
from userstore_svc.users_service import UserService

PHASES = ("open", "load", "convert", "apply", "write", "total")


async def _poll(
    pool: DatabasePool, config: IngestConfig, user: str, account: Account
) -> tuple[dict[str, float], bool]:
    """One poll, step by step (as Ingestor.ingest does it): milliseconds per step, and whether
    the user's state was found cached."""
    request = account.ingest_request(f"{user[:8]}-{account.now}", user)
    message = pb.IngestRequest.FromString(request).snapshot
    t0 = time.perf_counter()
    snap: SnapshotIn = convert.snapshot_in(message)
    t1 = time.perf_counter()
    use = pool.use(user)
    handle = await use.__aenter__()
    try:
        t2 = time.perf_counter()
        cached = user_db.CACHE_KEY in handle.cache
        data = await user_db.load(handle)
        t3 = time.perf_counter()
        outcome = _apply(data, snap, config)
        t4 = time.perf_counter()
        await handle.transaction(outcome.statements)
        outcome.commit_to(data)
        t5 = time.perf_counter()
    finally:
        await use.__aexit__(None, None, None)
    times = {
        "convert": t1 - t0,
        "open": t2 - t1,
        "load": t3 - t2,
        "apply": t4 - t3,
        "write": t5 - t4,
    }
    times["total"] = sum(times.values())
    return {name: value * 1e3 for name, value in times.items()}, cached


async def run(
    directory: Path, *, torrents: int, users: int, polls: int, runs: int, seed: int
) -> dict[str, Any]:
    """Per-step medians of each run, for cold and warm polls of `torrents`-torrent users."""
    users = max(users, 2)
    (directory / "users").mkdir(parents=True, exist_ok=True)
    registry = await Registry.open(directory / "master.sqlite")
    pool = DatabasePool(directory / "users", 1)
    config = IngestConfig()
    ingestor = Ingestor(pool, registry, EventHub(), config)
    ids = [auth_id(i, f"phases{seed}-{torrents}") for i in range(users)]
    people = UserService(pool, registry, time.time)
    rules = RuleService(pool, registry, time.time)
    try:
        for user in ids:
            await people.register(user, b"bench-ciphertext")
            await rules.save_all(user, rule_docs())
        accounts = [Account(seed * 100_003 + i, torrents) for i in range(users)]
        for user, account in zip(ids, accounts, strict=True):
            snap = SnapshotIn("first", user, account.now, True, account.snapshots, POLL_INTERVAL)
            await ingestor.ingest(snap)
        result: dict[str, Any] = {"torrents_per_user": torrents, "users": users, "runs": []}
        for _ in range(runs):
            samples: dict[str, list[dict[str, float]]] = {"cold": [], "warm": [], "released": []}
            for _ in range(polls):
                for user, account in zip(ids, accounts, strict=True):
                    account.advance()
                    samples["cold"].append((await _poll(pool, config, user, account))[0])
            user, account = ids[0], accounts[0]
            account.advance()
            await _poll(pool, config, user, account)  # opens the database (not counted)
            for _ in range(polls):
                account.advance()
                samples["warm"].append((await _poll(pool, config, user, account))[0])
            await pool.close()  # a file is open in one pool at a time (exclusive locking)
            pool = DatabasePool(directory / "users", users, max_cached=1)
            for rounds in range(polls + 1):  # the first round opens every file (not counted)
                for user, account in zip(ids, accounts, strict=True):
                    account.advance()
                    timed, cached = await _poll(pool, config, user, account)
                    if rounds and not cached:  # the one user the pool keeps cached is warm
                        samples["released"].append(timed)
            await pool.close()
            pool = DatabasePool(directory / "users", 1)
            result["runs"].append(
                {
                    kind: {p: statistics.median(s[p] for s in found) for p in PHASES}
                    for kind, found in samples.items()
                }
            )
        return result
    finally:
        await pool.close()
        await registry.close()
