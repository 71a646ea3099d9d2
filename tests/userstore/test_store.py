"""Storage: the connection pool's bounds, migrations, row round trips, integrity, the registry."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import logging
import random
import resource
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import FailedPrecondition, InvalidArgument, UserNotRegistered
from tests.userstore.conftest import Store, close_store, open_store
from tests.userstore.factory import Feed, snap
from userstore_svc.ingest import SnapshotIn
from userstore_svc.maintenance import maintain_all
from userstore_svc.store import user_db
from userstore_svc.store.migrations import REGISTRY_MIGRATIONS, USER_MIGRATIONS, migrate
from userstore_svc.store.pool import (
    MAX_CLOSING,
    RESERVED_FILES,
    DatabasePool,
    connect,
    fit_open_files,
)


def auth(n: int) -> str:
    return hashlib.sha256(f"user-{n}".encode()).hexdigest()


async def test_pool_never_exceeds_its_bound_and_never_closes_a_connection_in_use(
    tmp_path: Path,
) -> None:
    """200 users ingesting at once through a pool of 50: at most 50 open, none closed in use."""
    store = await open_store(tmp_path, max_open=50)
    try:
        users = [auth(n) for n in range(200)]
        for auth_id in users:
            await store.users.register(auth_id, b"ciphertext")
        peak = closing = 0
        stop = asyncio.Event()

        async def watch() -> None:
            nonlocal peak, closing
            while not stop.is_set():
                peak = max(peak, store.pool.open_count)
                closing = max(closing, store.pool.closing_apart)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())

        async def polls(auth_id: str) -> None:
            for i in range(3):
                await store.ingestor.ingest(
                    SnapshotIn(
                        poll_id=f"{auth_id}-{i}",
                        auth_id=auth_id,
                        observed_at=1_800_000_000.0 + i * 60,
                        complete=True,
                        torrents=[snap(id=k, total_downloaded=i * 100) for k in range(1, 6)],
                        poll_interval=60,
                    )
                )

        order = users * 1
        random.Random(7).shuffle(order)
        await asyncio.gather(*(polls(a) for a in order))
        stop.set()
        await watcher
        assert peak <= 50
        assert store.pool.stats.peak_open <= 50
        assert 0 < closing <= MAX_CLOSING  # evicted files close beside the opens, boundedly
        assert store.pool.stats.closed_in_use == 0
        assert store.pool.stats.evictions >= 150
        assert store.ingestor.applied == 600
    finally:
        await close_store(store)


async def test_an_evicted_file_closes_apart_and_its_user_reopens_it_whole(tmp_path: Path) -> None:
    """The evicted file closes beside the open that evicted it; its user, used again at once,
    gets a new connection only after the old one closed, and finds every write."""
    pool = DatabasePool(tmp_path, 1)
    rows = [(f"key-{i}", "x" * 2000) for i in range(1000)]  # a WAL for the close to checkpoint
    previous: dict[str, sqlite3.Connection] = {}
    try:
        for round_ in range(4):
            for user in (auth(1), auth(2)):
                async with pool.use(user, create=True) as handle:
                    if user in previous:
                        assert previous[user] is not handle.conn
                        with pytest.raises(sqlite3.ProgrammingError):
                            previous[user].execute("SELECT 1")  # closed already
                    previous[user] = handle.conn
                    await handle.transaction(
                        [("INSERT INTO meta(key, value) VALUES (?, ?)", [(f"r{round_}", "v")])]
                    )
                    if round_ == 0:
                        await handle.transaction(
                            [("INSERT INTO meta(key, value) VALUES (?, ?)", rows)]
                        )
        assert pool.stats.evictions == 7
        for user in (auth(1), auth(2)):
            async with pool.use(user) as handle:
                found = await handle.fetchall("SELECT count(*) FROM meta WHERE key LIKE 'r%'")
                assert found == [(4,)]
    finally:
        await pool.close()
    assert pool.closing_apart == 0


async def test_a_user_holds_one_connection_at_a_time(tmp_path: Path) -> None:
    """Two tasks of one user never use its connection at the same time."""
    pool = DatabasePool(tmp_path, 2)
    auth_id = auth(1)
    inside = 0
    overlap = False

    async def work() -> None:
        nonlocal inside, overlap
        async with pool.use(auth_id, create=True):
            inside += 1
            overlap = overlap or inside > 1
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(10)))
    await pool.close()
    assert not overlap


async def test_a_cancelled_waiter_or_a_failed_open_never_holds_up_the_next(tmp_path: Path) -> None:
    """With one connection in use: a waiter cancelled and an open that fails pass their turn on."""
    pool = DatabasePool(tmp_path, 1)
    release = asyncio.Event()

    async def hold() -> None:
        async with pool.use(auth(1), create=True):
            await release.wait()

    async def use(n: int, create: bool) -> list[Any]:
        async with pool.use(auth(n), create=create) as handle:
            return await handle.fetchall("SELECT count(*) FROM torrents")

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    cancelled = asyncio.create_task(use(2, True))
    missing = asyncio.create_task(use(3, False))  # no file and no create: DATABASE_MISSING
    last = asyncio.create_task(use(4, True))
    await asyncio.sleep(0.01)
    assert not last.done()  # the only connection is in use: everyone waits
    cancelled.cancel()
    release.set()
    await holder
    with pytest.raises(FailedPrecondition):
        await missing
    # A bound on the wait, so a lost turn fails the test instead of hanging it.
    assert await asyncio.wait_for(last, 10) == [(0,)]
    assert cancelled.cancelled()
    assert pool.open_count == 1
    assert pool.stats.peak_open == 1
    assert not (tmp_path / f"user_{auth(2)}.sqlite").exists()
    await pool.close()


async def test_a_waiter_cancelled_as_its_turn_comes_passes_it_on(tmp_path: Path) -> None:
    """With one connection: the waiter handed the connection is cancelled before it uses it, and
    the next waiter still gets its turn (nothing is left open for the cancelled one)."""
    pool = DatabasePool(tmp_path, 1)
    release = asyncio.Event()

    async def hold() -> None:
        async with pool.use(auth(1), create=True):
            await release.wait()

    async def use(n: int) -> list[Any]:
        async with pool.use(auth(n), create=True) as handle:
            return await handle.fetchall("SELECT count(*) FROM torrents")

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    woken = asyncio.create_task(use(2))
    last = asyncio.create_task(use(3))
    await asyncio.sleep(0.01)
    release.set()
    await holder  # the connection is free: `woken` has its turn (it may be opening its file)
    woken.cancel()
    assert await asyncio.wait_for(last, 10) == [(0,)]
    assert woken.cancelled()
    assert pool.open_count == 1
    await pool.close()


def _polls(auth_id: str, count: int, users: int) -> list[SnapshotIn]:
    """`count` polls of one user whose torrents move, stall and go (a different mix per user)."""
    seed = int(auth_id[:8], 16) % users
    return [
        SnapshotIn(
            poll_id=f"{auth_id}-{i}",
            auth_id=auth_id,
            observed_at=1_800_000_000.0 + i * 60,
            complete=True,
            torrents=[
                snap(id=k, total_downloaded=i * 100 * (k % 3), seeds=(k + i + seed) % 4)
                for k in range(1, 8 + seed)
                if not (k == 2 and i >= 2)
            ],
            poll_interval=60,
        )
        for i in range(count)
    ]


async def _stored(root: Path, users: list[str]) -> list[Any]:
    """Every user's state as read back from its file by a fresh pool (the store closed)."""
    fresh = DatabasePool(root / "users", len(users))
    try:
        out = []
        for auth_id in users:
            async with fresh.use(auth_id) as handle:
                data = await user_db.load(handle)
                out.append((data.states, data.last_observed_at, data.pending_missing))
        return out
    finally:
        await fresh.close()


async def test_idle_connections_stay_open_with_their_caches_released(tmp_path: Path) -> None:
    """With more files open than users cached: no file reopens between polls, at most
    `max_cached` idle users keep their decoded state, and the results equal a pool caching all."""
    users = [auth(n) for n in range(6)]
    stored = []
    for max_cached in (2, None):
        store = await open_store(tmp_path / str(max_cached), max_open=10, max_cached=max_cached)
        try:
            for auth_id in users:
                await store.users.register(auth_id, b"ciphertext")
            for round_ in zip(*(_polls(a, 5, len(users)) for a in users), strict=True):
                for snapshot in round_:  # users in turn, as a poller polls them
                    assert (await store.ingestor.ingest(snapshot)).applied
                cached = [h for h in store.pool._open.values() if user_db.CACHE_KEY in h.cache]
                assert len(cached) == (max_cached or len(users))
            assert store.pool.stats.opens == len(users)  # every file opened once, kept open
            assert store.pool.stats.evictions == 0
            if max_cached is not None:
                assert store.pool.stats.released >= len(users) * 4
        finally:
            await close_store(store)
        stored.append(await _stored(store.root, users))
    assert stored[0] == stored[1]


async def test_a_user_in_use_keeps_its_cache(tmp_path: Path) -> None:
    """Releasing caches skips users in use: their state is never dropped under them."""
    pool = DatabasePool(tmp_path, 5, max_cached=1)
    try:
        async with pool.use(auth(1), create=True) as held:
            held.cache["marker"] = 1
            for n in (2, 3, 4):
                async with pool.use(auth(n), create=True) as other:
                    other.cache["marker"] = n
            assert held.cache == {"marker": 1}
        async with pool.use(auth(5), create=True) as fifth:
            fifth.cache["marker"] = 5
        # The others were used without keeping their caches: the one kept is the first.
        assert [h.cache for h in pool._open.values() if h.cache] == [{"marker": 1}]
        assert pool.open_count == 5
    finally:
        await pool.close()


async def test_users_polled_in_turn_keep_a_stable_set_of_caches(tmp_path: Path) -> None:
    """Six users visited in turn with two cached: the same two keep their caches round after
    round (least recently used first would drop each just before its next use), a user used
    more often than the rest comes in on its second use, and no file is reopened."""
    pool = DatabasePool(tmp_path, 10, max_cached=2)
    users = [auth(n) for n in range(6)]

    async def visit(auth_id: str) -> bool:
        """One use; whether it found the cache its previous use left."""
        async with pool.use(auth_id, create=True) as handle:
            found = "state" in handle.cache
            handle.cache["state"] = auth_id
        return found

    try:
        kept_by_round = []
        for _ in range(4):
            found = [await visit(u) for u in users]
            kept_by_round.append({h.auth_id for h in pool._open.values() if h.cache})
            assert len(kept_by_round[-1]) == 2
        assert kept_by_round[1] == kept_by_round[2] == kept_by_round[3]
        # From the third round on, the kept users find their state every time.
        assert sum(found) == 2
        assert [users[i] for i, hit in enumerate(found) if hit] == sorted(
            kept_by_round[3], key=users.index
        )
        # A user visited between every other one is soon kept, and then found each time.
        hot = auth(99)
        hits = []
        for other in users:
            hits.append(await visit(hot))
            await visit(other)
        assert hits[:2] == [False, False]
        assert all(hits[2:])
        assert pool.stats.opens == len(users) + 1
        assert pool.stats.evictions == 0
    finally:
        await pool.close()


async def test_more_users_than_open_files_still_keep_a_stable_set(tmp_path: Path) -> None:
    """Fifteen users in turn, five files open, two cached: the two kept stay open and find
    their state every round; the other files are the ones closed (least recently used first
    would close every file before its next use)."""
    pool = DatabasePool(tmp_path, 5, max_cached=2)
    users = [auth(n) for n in range(15)]
    try:
        for round_ in range(5):
            found = []
            for auth_id in users:
                async with pool.use(auth_id, create=True) as handle:
                    found.append("state" in handle.cache)
                    handle.cache["state"] = auth_id
            kept = {h.auth_id for h in pool._open.values() if h.cache}
            assert len(kept) == 2
            assert pool.open_count == 5
            if round_ >= 2:
                assert [users[i] for i, hit in enumerate(found) if hit] == sorted(
                    kept, key=users.index
                )
        # Every use but the kept users' reopens a file.
        assert pool.stats.opens == 15 + 4 * 13
    finally:
        await pool.close()


def test_the_open_files_limit_is_raised_or_bounds_the_pool() -> None:
    """The soft limit is raised as far as the open databases need; past the hard limit, fewer
    databases are kept open instead of opens failing later."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
        assert fit_open_files(10) == 10
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 300  # enough already
        if hard == resource.RLIM_INFINITY or hard >= 2 * 1000 + RESERVED_FILES:
            assert fit_open_files(1000) == 1000
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 2 * 1000 + RESERVED_FILES
        if hard != resource.RLIM_INFINITY:
            assert fit_open_files(hard) == (hard - RESERVED_FILES) // 2
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_maintenance_empties_an_open_files_wal(store: Store) -> None:
    """A file stays open between polls; the maintenance pass checkpoints and empties its WAL."""
    await store.users.register(auth(1), b"x")
    await store.ingestor.ingest(
        SnapshotIn("p", auth(1), 1_800_000_000.0, True, [snap(id=k) for k in range(1, 50)], 60)
    )
    wal = Path(f"{store.pool.path_for(auth(1))}-wal")
    assert wal.stat().st_size > 0
    report = await maintain_all(store.pool, store.registry)
    assert report.checked == 1
    assert not report.damaged
    assert store.pool.open_count == 1
    assert wal.stat().st_size == 0


async def test_a_large_transaction_leaves_the_wal_checkpointed(tmp_path: Path) -> None:
    """SQLite's own checkpoint is off for user files (it would sync inside a commit, on the event
    loop); a transaction that leaves the WAL past 4 MiB is checkpointed and the WAL emptied once
    the use that wrote it is over (the poll answers first), as the user's next piece of work."""
    pool = DatabasePool(tmp_path, 2)
    wal = tmp_path / f"user_{auth(1)}.sqlite-wal"
    async with pool.use(auth(1), create=True) as handle:
        assert await handle.fetchall("PRAGMA wal_autocheckpoint") == [(0,)]
        rows = [(f"key-{i}", "x" * 4000) for i in range(1500)]  # ~6 MB of pages
        await handle.transaction([("INSERT INTO meta(key, value) VALUES (?, ?)", rows)])
        assert wal.stat().st_size > 4 * 1024 * 1024  # not within the use that wrote it
        assert handle.checkpoint_due
    await pool.checkpoints_done()
    assert wal.stat().st_size == 0
    async with pool.use(auth(1)) as handle:
        assert not handle.checkpoint_due
        assert await handle.fetchall("SELECT count(*) FROM meta WHERE key LIKE 'key-%'") == [
            (1500,)
        ]
        await handle.transaction([("DELETE FROM meta WHERE key = ?", ("key-0",))])
        assert 0 < wal.stat().st_size < 4 * 1024 * 1024  # a small one is left to the close
        assert not handle.checkpoint_due
    await pool.checkpoints_done()
    assert wal.stat().st_size > 0
    await pool.close()
    reopened = sqlite3.connect(tmp_path / f"user_{auth(1)}.sqlite")
    assert reopened.execute("SELECT count(*) FROM meta WHERE key LIKE 'key-%'").fetchone() == (
        1499,
    )
    reopened.close()


async def test_uses_back_to_back_still_bound_the_wal(tmp_path: Path) -> None:
    """A user used again before the checkpoint its last use left had its turn (no await between
    them): that use checkpoints first, so the WAL never grows past one write beyond the limit."""
    pool = DatabasePool(tmp_path, 2)
    wal = tmp_path / f"user_{auth(1)}.sqlite-wal"
    for round_ in range(3):
        async with pool.use(auth(1), create=True) as handle:
            if round_:
                assert wal.stat().st_size == 0  # checkpointed before this use's own work
            rows = [(f"key-{round_}-{i}", "x" * 4000) for i in range(1500)]
            await handle.transaction([("INSERT INTO meta(key, value) VALUES (?, ?)", rows)])
            assert handle.checkpoint_due
    await pool.close()


async def test_a_checkpoint_due_at_shutdown_or_eviction_is_left_to_the_close(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A WAL past the limit whose file closes first (evicted, or the pool shutting down) is
    checkpointed by the close: no checkpoint runs on a closed connection, nothing is lost."""
    caplog.set_level(logging.WARNING)
    pool = DatabasePool(tmp_path, 1)
    rows = [(f"key-{i}", "x" * 4000) for i in range(1500)]
    async with pool.use(auth(1), create=True) as handle:
        await handle.transaction([("INSERT INTO meta(key, value) VALUES (?, ?)", rows)])
    # The next user's open evicts the first file while its checkpoint waits for a permit.
    async with pool.use(auth(2), create=True) as other:
        await other.transaction([("INSERT INTO meta(key, value) VALUES (?, ?)", rows)])
    assert pool.stats.evictions == 1
    await pool.close()
    assert pool.open_count == 0
    assert [r.getMessage() for r in caplog.records] == []  # no checkpoint failed on a closed file
    for user in (auth(1), auth(2)):
        assert not (tmp_path / f"user_{user}.sqlite-wal").exists()
        reopened = sqlite3.connect(tmp_path / f"user_{user}.sqlite")
        count = reopened.execute("SELECT count(*) FROM meta WHERE key LIKE 'key-%'").fetchone()
        assert count == (1500,)
        reopened.close()


async def test_databases_are_wal_with_the_project_pragmas(tmp_path: Path) -> None:
    """New and reopened user databases (and the registry) run in WAL with synchronous=NORMAL."""
    store = await open_store(tmp_path, max_open=1)
    try:
        for n in (1, 2, 1):  # a pool of one: every use after the first reopens a file
            await store.users.register(auth(n), b"x")
            async with store.pool.use(auth(n)) as handle:
                assert await handle.fetchall("PRAGMA journal_mode") == [("wal",)]
                assert await handle.fetchall("PRAGMA synchronous") == [(1,)]
                assert await handle.fetchall("PRAGMA foreign_keys") == [(1,)]
                # A user's page cache is small: its decoded state is what polls read.
                assert await handle.fetchall("PRAGMA cache_size") == [(-256,)]
    finally:
        await close_store(store)
    conn = sqlite3.connect(tmp_path / "master.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def _sqlite_memory_used() -> Callable[[], int]:
    """SQLite's own count of the memory it holds, from the library this process's sqlite3 uses."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libsqlite3" in line}
    if not paths:
        pytest.skip("this Python's sqlite3 links SQLite statically (no library to ask)")
    library = ctypes.CDLL(paths.pop())
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return library.sqlite3_memory_used


def test_a_migrated_database_opens_lean(tmp_path: Path) -> None:
    """A file just created or upgraded is handed out at the newest schema, holding no more of
    SQLite's memory than the same file opened again (migrations' statements are not kept)."""
    used = _sqlite_memory_used()
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # as the pool made it
    migrate(conn, USER_MIGRATIONS[:1])
    conn.close()
    for path in (tmp_path / "new.sqlite", old):
        before = used()
        migrated = connect(path)
        held = used() - before
        assert migrated.execute("PRAGMA user_version").fetchone() == (USER_MIGRATIONS[-1].version,)
        assert migrated.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        migrated.close()
        before = used()
        reopened = connect(path)
        assert held <= (used() - before) * 1.1
        reopened.close()


async def test_a_missing_database_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    """Without create, a registered user's missing file is reported, never silently made."""
    pool = DatabasePool(tmp_path, 2)
    with pytest.raises(FailedPrecondition):
        async with pool.use(auth(1)):
            pass
    assert not any(tmp_path.iterdir())
    await pool.close()


async def test_only_a_valid_auth_id_becomes_a_path(tmp_path: Path) -> None:
    """A malformed auth id can never name a file (no path traversal, no other users)."""
    pool = DatabasePool(tmp_path, 2)
    for bad in ("../etc/passwd", "A" * 64, "abc", "0" * 63 + "/"):
        with pytest.raises(InvalidArgument):
            pool.path_for(bad)
    await pool.close()


def _schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type || ':' || name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' ORDER BY 1"
        ).fetchall()
    finally:
        conn.close()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize(
    "migrations", [USER_MIGRATIONS, REGISTRY_MIGRATIONS], ids=["user", "registry"]
)
def test_migrations_from_every_earlier_version(tmp_path: Path, migrations: tuple) -> None:  # type: ignore[type-arg]
    """A database at any earlier version migrates to a fresh one's schema, idempotently."""
    fresh = tmp_path / "fresh.sqlite"
    conn = sqlite3.connect(fresh, isolation_level=None)
    assert migrate(conn, migrations) == migrations[-1].version
    assert migrate(conn, migrations) == migrations[-1].version
    conn.close()
    expected = _schema(fresh)
    for start in range(len(migrations)):
        path = tmp_path / f"from_{start}.sqlite"
        conn = sqlite3.connect(path, isolation_level=None)
        if start:
            migrate(conn, migrations[:start])
        migrate(conn, migrations)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations[-1].version
        conn.close()
        assert _schema(path) == expected


def test_a_newer_schema_is_refused_not_touched(tmp_path: Path) -> None:
    """A database written by a newer build is refused."""
    conn = sqlite3.connect(tmp_path / "newer.sqlite", isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    with pytest.raises(FailedPrecondition):
        migrate(conn, USER_MIGRATIONS)
    conn.close()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["downloading", "stalled", "seeding", "completed", "queued"]),
            st.integers(0, 10**12),
            st.integers(0, 10**12),
            st.floats(0, 10, allow_nan=False),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_state_rows_round_trip(steps: list[tuple[str, int, int, float]]) -> None:
    """A state written as a row and read back is the original, value for value and type for type.

    (Equality alone would pass 1 for True, and a boolean condition tests `is True`.)"""
    feed = Feed()
    for i, (profile, down, up, ratio) in enumerate(steps):
        feed.poll(i * 60, snap(profile, total_downloaded=down, total_uploaded=up, ratio=ratio))
    conn = sqlite3.connect(":memory:")
    migrate(conn, USER_MIGRATIONS)
    for state in feed.states.values():
        conn.execute(user_db.INSERT_TORRENT, user_db.state_row(state))
    for row in conn.execute(user_db.SELECT_TORRENTS):
        restored = user_db.state_from_row(row)
        original = feed.states[restored.key]
        assert restored == original
        for got, want in ((restored, original), (restored.snap, original.snap)):
            assert [type(v) for v in got] == [type(v) for v in want]


async def test_damaged_database_is_reported_never_recreated(store: Store) -> None:
    """A database failing its integrity check is reported and left as it is."""
    healthy, damaged = auth(1), auth(2)
    for auth_id in (healthy, damaged):
        await store.users.register(auth_id, b"x")
        await store.ingestor.ingest(
            SnapshotIn("p", auth_id, 1_800_000_000.0, True, [snap(id=k) for k in range(1, 200)], 60)
        )
    await store.pool.close()
    store.pool = DatabasePool(store.root / "users", 50)
    path = store.pool.path_for(damaged)
    data = bytearray(path.read_bytes())
    for offset in range(4096, len(data), 4096):
        data[offset + 100 : offset + 400] = b"\xff" * 300
    path.write_bytes(bytes(data))
    size = path.stat().st_size
    report = await maintain_all(store.pool, store.registry)
    assert report.checked == 2
    assert report.damaged == [damaged]
    assert path.exists()
    assert path.stat().st_size == size


async def test_registry_tracks_changes_by_sequence(store: Store) -> None:
    """Every change bumps the sequence; removal leaves a tombstone; counters do not bump it."""
    a, b = auth(1), auth(2)
    await store.users.register(a, b"k1")
    await store.users.register(b, b"k2")
    rows, more = store.registry.changed_after(0, 100)
    assert [r.auth_id for r in rows] == [a, b]
    assert not more
    seq = rows[-1].seq
    store.registry.note_poll(a, 1.0, 5)
    await store.registry.flush_counters()
    assert store.registry.changed_after(seq, 100)[0] == []
    await store.users.remove(a)
    changed, _ = store.registry.changed_after(seq, 100)
    assert [(r.auth_id, r.status, r.key_ciphertext) for r in changed] == [(a, "removed", None)]
    with pytest.raises(UserNotRegistered):
        store.registry.require(a)
    assert not store.pool.path_for(a).exists()


async def test_registry_survives_a_restart(tmp_path: Path) -> None:
    """Rows, sequence and epoch persist across reopening."""
    store = await open_store(tmp_path)
    await store.users.register(auth(1), b"k1")
    epoch, seq = store.registry.epoch, store.registry.seq
    store.registry.note_poll(auth(1), 5.0, 3)
    await close_store(store)
    again = await open_store(tmp_path)
    try:
        assert again.registry.epoch == epoch
        assert again.registry.seq == seq
        row = again.registry.require(auth(1))
        assert row.torrent_count == 3
        assert row.key_ciphertext == b"k1"
    finally:
        await close_store(again)
