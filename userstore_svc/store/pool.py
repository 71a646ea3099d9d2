"""A bounded pool of per-user SQLite connections that never closes one in use.

Every access to a user's database goes through :meth:`DatabasePool.use`, which also serialises
that user's work (one task at a time per user), so a connection is never shared by two tasks and
"in use" is simply "its user's lock is held". A task holds one of ``max_open`` permits while it
uses a connection, so when one more connection does not fit there is always an idle one to close
for it; when every connection is in use the next task waits for a permit (first come, first
served) instead of exceeding the bound. At most ``max_cached`` connections keep their caches (the
store's decoded state, SQLite's pages), chosen to suit a poller that visits users in turn; the
others stay open for little memory, so a shard can keep all its users' files open (see
:meth:`DatabasePool._keep_cached`).

A user's statements run on the event loop's own thread (:meth:`Handle.run`): they touch one user's
few hundred rows, in the page cache once the file is open, and with WAL and ``synchronous=NORMAL`` a
commit does not wait for the disk (SQLite's own checkpoint after a commit is turned off; a WAL that
a transaction left past ``WAL_CHECKPOINT_BYTES`` is checkpointed on a thread once that use is over,
so a poll answers without waiting for it). What may wait for the disk goes to a small thread pool:
opening a file, closing the connection evicted for it (a close checkpoints the WAL and syncs the
file; it runs beside the open), the checkpoints, and maintenance (:meth:`Handle.run_in_thread`). A
page not in the page cache is still read on the loop. Measured here (100-torrent users, 64 polls in
flight): SQLite on worker threads cost about a third more CPU per poll than inline, because the
``sqlite3`` module releases the GIL on every row it steps and the event loop, always busy, takes it
each time; the same hand-off would cost a statement-per-hop design (such as aiosqlite's) far more.
aiosqlite still serves the registry, where statements are few.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import resource
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from common.auth import is_valid_auth_id
from common.errors import FailedPrecondition, InvalidArgument, Unavailable
from common.files import private_file
from userstore_svc.store.disk import StorageHealth
from userstore_svc.store.migrations import USER_MIGRATIONS, migrate

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Statements = Iterable[tuple[str, Any]]

# Set once, on a new file (before its first table): lets maintenance reclaim space. Asked again of
# an existing file it costs more than all the other pragmas together.
NEW_FILE_PRAGMA = "PRAGMA auto_vacuum=INCREMENTAL"
WAL_PRAGMA = "PRAGMA journal_mode=WAL"
# A user database has one connection, in this process (the pool's), and anything else that opens
# the file does so through DatabasePool.exclusive, after that connection closed. Holding the lock
# for the connection's life lets SQLite keep the WAL index in memory (no -shm file to create, map
# and delete on every open) and skip the per-transaction file locks: about 0.3 ms of CPU less per
# cold poll, measured. Set before the first access, or SQLite has already built the -shm file.
USER_LOCKING_PRAGMA = "PRAGMA locking_mode=EXCLUSIVE"
# Checkpoints sync the files: SQLite's automatic one would run inside a commit, on the event loop
# (user databases only; the registry's statements run on aiosqlite's thread).
USER_CHECKPOINT_PRAGMA = "PRAGMA wal_autocheckpoint=0"
WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024  # SQLite's default point (1,000 pages of 4 KiB)
# Evicted connections closing apart from the open that evicted them, at most (each keeps its two
# files open until it is done: RESERVED_FILES covers them).
MAX_CLOSING = 2
# File descriptors an open user database holds: the file and its WAL (no -shm: the WAL index
# stays in memory under the exclusive lock).
FILES_PER_DATABASE = 2
# Descriptors kept for everything else: the registry, sockets, logs, maintenance's copies.
RESERVED_FILES = 256
PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-2000",
)
# A user's page cache, set after PRAGMAS: a poll of a cached user reads its decoded state, not the
# pages, so the pages SQLite keeps between polls serve only the write. Measured on matured
# 100-torrent users: SQLite's default 2,000 KiB held 0.51 MiB per cached user (the pages read to
# decode the state, then the write's), 256 KiB holds 0.25 MiB, and the write costs the same within
# the noise (the pages it reads again are in the operating system's cache). Half a cached user's
# memory, so twice as many users keep their state in the same memory.
USER_CACHE_PRAGMA = "PRAGMA cache_size=-256"


@dataclass(slots=True)
class Handle:
    """An open user database: its connection and whatever the store caches beside it."""

    auth_id: str
    conn: sqlite3.Connection
    executor: Executor
    wal_path: str
    # Decoded state kept while the connection keeps its caches (the store owns its contents;
    # the pool drops it when the connection is released or closed).
    cache: dict[str, Any] = field(default_factory=dict)
    in_use: bool = False
    # When it was last used, counted in the pool's uses (-1: not yet; see _keep_cached).
    last_use: int = -1
    # Told of every committed write (a disk that failed takes writes again).
    storage: StorageHealth | None = None
    # A write left the WAL past WAL_CHECKPOINT_BYTES: the pool checkpoints it after this use.
    checkpoint_due: bool = False

    async def run(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(conn, ...)` now, on this thread (short work on one user's rows)."""
        return fn(self.conn, *args, **kwargs)

    async def run_in_thread(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(conn, ...)` on the pool's threads (long work: checks, vacuum, checkpoints)."""
        return await offload(self.executor, functools.partial(fn, self.conn, *args, **kwargs))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one query."""
        return await self.run(_fetchall, sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement outside any transaction; returns the rows it changed."""
        return await self.run(_execute, sql, params)

    async def transaction(self, statements: Statements) -> None:
        """Statements in one IMMEDIATE transaction (a list of tuples means executemany).

        A WAL grown past ``WAL_CHECKPOINT_BYTES`` is checkpointed and emptied on a thread once
        this use of the connection is over (see :meth:`DatabasePool.use`).
        """
        await self.write(run_transaction, list(statements))

    async def write(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, ...)`, which commits its own transaction (see :func:`immediate`).

        For writes that read as they go (row counts, ids): the WAL is kept bounded as
        :meth:`transaction` keeps it.
        """
        result = fn(self.conn, *args, **kwargs)
        self._written()
        return result

    async def write_in_thread(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`write` on the pool's threads, for a write large enough to stall the loop.

        A bulk import of tens of thousands of rows would otherwise hold every other user's work.
        """
        result = await self.run_in_thread(fn, *args, **kwargs)
        self._written()
        return result

    def _written(self) -> None:
        if self.storage is not None:
            self.storage.write_succeeded()
        try:
            wal_bytes = os.path.getsize(self.wal_path)
        except OSError:
            return
        if wal_bytes > WAL_CHECKPOINT_BYTES:
            self.checkpoint_due = True


async def offload(executor: Executor, call: Callable[[], T]) -> T:
    """Run `call` on a thread and return its result.

    If the caller is cancelled it still waits for the thread to finish, so a connection is never
    left in use by a thread after its user's lock is released.
    """
    return await _settled(asyncio.get_running_loop().run_in_executor(executor, call))


async def _settled(future: asyncio.Future[T]) -> T:
    """The thread's result; a cancelled caller still waits for the thread before it leaves."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _fetchall(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return conn.execute(sql, params).rowcount


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One IMMEDIATE transaction around the block: committed at its end, rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (a full disk does): a second ROLLBACK would fail
        # and its "no transaction is active" would replace the real error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def run_transaction(conn: sqlite3.Connection, statements: Statements) -> None:
    """Statements in one IMMEDIATE transaction; a list of parameter tuples means executemany."""
    with immediate(conn):
        for sql, params in statements:
            if isinstance(params, list):
                if params:
                    conn.executemany(sql, params)
            else:
                conn.execute(sql, params)


@dataclass(slots=True)
class PoolStats:
    """Figures for /api/backend/status and for the tests of the pool's invariants."""

    opens: int = 0
    evictions: int = 0
    # Open connections whose caches were dropped (see DatabasePool._keep_cached).
    released: int = 0
    peak_open: int = 0
    closed_in_use: int = 0


class DatabasePool:
    """At most `max_open` open user databases; the least recently used idle one is closed first.

    Among the idle ones, those whose caches are not kept go first (see _make_room).
    """

    def __init__(
        self,
        directory: Path,
        max_open: int,
        *,
        threads: int = 2,
        max_cached: int | None = None,
    ) -> None:
        if max_open < 1:
            raise ValueError("max_open must be at least 1")
        if max_cached is not None and max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="sqlite")
        self.directory = directory
        self.max_open = max_open
        self.max_cached = max_open if max_cached is None else min(max_cached, max_open)
        self.stats = PoolStats()
        self.storage = StorageHealth()
        self._open: OrderedDict[str, Handle] = OrderedDict()
        # The open connections that keep what the store caches beside them (decoded state and
        # SQLite's page cache), least recently used first: at most max_cached of them, so many
        # files can stay open for little memory (see _keep_cached).
        self._cached: OrderedDict[str, Handle] = OrderedDict()
        # Uses so far: the clock Handle.last_use is read on.
        self._uses = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}
        # At most max_open tasks use (or are opening) a connection at once.
        self._permits = asyncio.Semaphore(max_open)
        self._opening = 0
        # Evicted connections still closing on a thread, by user: until one is gone it holds its
        # file's lock (and may be removing its WAL), so its user waits before opening or moving.
        self._closing: dict[str, asyncio.Future[Any]] = {}
        # How many of them close apart from the open that evicted them (see _reopen).
        self._apart = 0
        # Checkpoints waiting for their user's lock or running (see _checkpoint_after).
        self._checkpoints: set[asyncio.Task[None]] = set()
        self._closed = False

    def path_for(self, auth_id: str) -> Path:
        """The database file of a user; only a validated auth id ever becomes a path."""
        if not is_valid_auth_id(auth_id):
            raise InvalidArgument("auth_id must be 64 lowercase hex digits", field="auth_id")
        return self.directory / f"user_{auth_id}.sqlite"

    @property
    def open_count(self) -> int:
        """How many connections are open right now."""
        return len(self._open)

    @property
    def in_use_count(self) -> int:
        """How many open connections a task is using right now."""
        return sum(1 for handle in self._open.values() if handle.in_use)

    @asynccontextmanager
    async def _user_lock(self, auth_id: str) -> AsyncIterator[None]:
        """Hold a user's lock (created on demand, forgotten when nobody waits for it)."""
        lock = self._locks.get(auth_id)
        if lock is None:
            lock = self._locks[auth_id] = asyncio.Lock()
        self._waiters[auth_id] = self._waiters.get(auth_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            remaining = self._waiters[auth_id] - 1
            if remaining:
                self._waiters[auth_id] = remaining
            else:
                # Forget the lock of a user nobody waits for, so 60,000 users cost no memory.
                del self._waiters[auth_id]
                self._locks.pop(auth_id, None)

    @asynccontextmanager
    async def use(
        self,
        auth_id: str,
        *,
        create: bool = False,
    ) -> AsyncIterator[Handle]:
        """Hold a user's database for one piece of work (and that user's lock with it).

        A missing file is created only with `create`; otherwise it is an error, because a
        registered user's database vanishing must be noticed, not papered over.
        """
        path = self.path_for(auth_id)
        # The user's lock before the permit: a task holding a permit never waits for a user.
        async with self._user_lock(auth_id), self._permits:
            handle = await self._acquire(auth_id, path, create)
            handle.in_use = True
            try:
                if handle.checkpoint_due:
                    # Uses back to back: the checkpoint the last one left has not had its turn.
                    # It runs now, so the WAL stays bounded however busy the user is.
                    await self._empty_wal(handle)
                yield handle
            finally:
                handle.in_use = False
                listed = self._listed(handle)
                if listed and handle.auth_id not in self._cached:
                    self._release(handle)  # used without keeping its caches (_keep_cached)
                if listed and handle.checkpoint_due:
                    task = asyncio.create_task(self._checkpoint_after(handle))
                    self._checkpoints.add(task)
                    task.add_done_callback(self._checkpoints.discard)

    def _listed(self, handle: Handle) -> bool:
        """Whether `handle` is still its user's open connection (not evicted, not shut down)."""
        return self._open.get(handle.auth_id) is handle and not self._closed

    async def _checkpoint_after(self, handle: Handle) -> None:
        """Checkpoint a WAL a write left past the limit, as the user's next piece of work.

        The poll that grew it has answered (its plan did not wait for the disk), and no other
        work of the user runs on the connection meanwhile.

        A connection closed in the meantime was checkpointed by its close; one used again first
        was checkpointed by that use (see :meth:`use`).
        """
        async with self._user_lock(handle.auth_id), self._permits:
            listed = self._listed(handle)
            if not (listed and handle.checkpoint_due):
                return
            handle.in_use = True  # not evicted while its thread runs
            try:
                await self._empty_wal(handle)
            finally:
                handle.in_use = False

    async def _empty_wal(self, handle: Handle) -> None:
        """Checkpoint a handle's WAL on a thread (a failure is logged and leaves it due)."""
        try:
            await handle.run_in_thread(_checkpoint)
        except Exception as exc:
            if self.storage.translate(exc) is None:
                log.exception("checkpoint failed")
            return
        handle.checkpoint_due = False

    async def checkpoints_done(self) -> None:
        """Wait for the checkpoints the last uses left (tests, and shutdown)."""
        while self._checkpoints:
            await asyncio.wait(list(self._checkpoints))

    @asynccontextmanager
    async def exclusive(self, auth_id: str) -> AsyncIterator[Path]:
        """Hold a user's lock with their database closed (to delete or move its files)."""
        path = self.path_for(auth_id)
        async with self._user_lock(auth_id):
            handle = self._open.pop(auth_id, None)
            self._cached.pop(auth_id, None)
            if handle is not None:
                await self._close(handle)
            await self._closing_done(auth_id)
            yield path

    async def _acquire(self, auth_id: str, path: Path, create: bool) -> Handle:
        if self._closed:
            raise Unavailable("the userstore is shutting down", code="SHUTTING_DOWN")
        handle = self._open.get(auth_id)
        if handle is not None:
            self._open.move_to_end(auth_id)
            self._keep_cached(handle)
            return handle
        await self._closing_done(auth_id)
        evicted = self._make_room()  # reserves a slot in self._opening
        try:
            conn = await self._reopen(evicted, path, create)
        finally:
            self._opening -= 1
        if self._closed:
            # Shutdown began while the file was opening: it is not listed, so close it here.
            if conn is not None:
                await offload(self.executor, functools.partial(_close_quietly, conn))
            raise Unavailable("the userstore is shutting down", code="SHUTTING_DOWN")
        if conn is None:
            raise FailedPrecondition(
                "this user's database is missing; call ensure-db to recreate it",
                code="DATABASE_MISSING",
            )
        handle = Handle(auth_id, conn, self.executor, f"{path}-wal", storage=self.storage)
        self._open[auth_id] = handle
        self.stats.opens += 1
        self.stats.peak_open = max(self.stats.peak_open, len(self._open))
        self._keep_cached(handle)
        return handle

    def _keep_cached(self, handle: Handle) -> None:
        """Decide whether `handle` keeps its caches after this use, and count the use.

        A connection that only stays open costs about 0.2 MiB of the process's memory (SQLite's
        schema, prepared statements and WAL index; measured with matured 100-torrent users)
        against about 0.46 MiB with its decoded state and page cache, so a shard can keep many
        users' files open and still bound its memory. Reopening a file (connect, pragmas, schema,
        and on the evicted one a checkpoint with two syncs, plus a synced WAL header at the next
        commit) cost more than reading the state again.

        Which users keep theirs: while there is room, every one. Then a user takes the place of
        the least recently used idle one only if it comes back sooner, that is if its previous
        use is more recent than that one's last. A poller visits its users in turn: least
        recently used first would drop every user just before its next poll (no poll would find
        its state), while this keeps a stable `max_cached` of them, each found every time; a
        user polled more often than the rest (or read by TBM between polls) still comes in on
        its second use. A user not kept is used with its caches and released at the end.
        """
        previous, handle.last_use = handle.last_use, self._uses
        self._uses += 1
        if handle.auth_id in self._cached:
            self._cached.move_to_end(handle.auth_id)
            return
        if len(self._cached) >= self.max_cached:
            # Users in use are never released under their task.
            oldest = next((h for h in self._cached.values() if not h.in_use), None)
            if oldest is None or oldest.last_use >= previous:
                return
            del self._cached[oldest.auth_id]
            self._release(oldest)
        self._cached[handle.auth_id] = handle

    def _release(self, handle: Handle) -> None:
        """Drop an idle connection's caches (it stays open)."""
        _release(handle)
        self.stats.released += 1

    async def _reopen(
        self, evicted: Handle | None, path: Path, create: bool
    ) -> sqlite3.Connection | None:
        """Close the evicted connection and open this file, within the slot.

        The evicted file closes on one thread while this one opens on the other, so the open does
        not wait for the close's checkpoint and syncs; with ``MAX_CLOSING`` closes already under
        way (each holds its files a little longer) the same thread call closes, then opens. The
        evicted user is listed as closing until its close is over. A caller cancelled meanwhile
        closes the connection the thread opened for it.
        """
        if evicted is not None and self._apart < MAX_CLOSING:
            self._close_apart(evicted)
            evicted = None
        future = asyncio.get_running_loop().run_in_executor(
            self.executor,
            functools.partial(_close_and_open, evicted.conn if evicted else None, path, create),
        )
        # One entry per user at most: an evicted user is reopened only after _closing_done.
        if evicted is not None:
            self._closing[evicted.auth_id] = future
        try:
            return await _settled(future)  # returns or raises only once the thread is done
        except asyncio.CancelledError:
            if not future.cancelled() and future.exception() is None:
                opened = future.result()
                if opened is not None:
                    _close_quietly(opened)  # never written to: nothing to checkpoint
            raise
        finally:
            if evicted is not None:
                del self._closing[evicted.auth_id]

    def _close_apart(self, evicted: Handle) -> None:
        """Close an evicted connection on a thread of its own; its user waits for it to reopen."""
        closing = asyncio.get_running_loop().run_in_executor(
            self.executor, functools.partial(_close_quietly, evicted.conn)
        )
        user = evicted.auth_id
        self._closing[user] = closing
        self._apart += 1

        def unlist(done: asyncio.Future[Any]) -> None:
            self._apart -= 1
            if self._closing.get(user) is done:
                del self._closing[user]

        # Registered first, so it runs before any task woken by the close (see _closing_done).
        closing.add_done_callback(unlist)

    @property
    def closing_apart(self) -> int:
        """How many evicted connections are closing apart from the opens that evicted them."""
        return self._apart

    async def _closing_done(self, auth_id: str) -> None:
        """Wait until no evicted connection of this user is still closing."""
        closing = self._closing.get(auth_id)
        if closing is not None:
            await asyncio.wait([closing])

    def _make_room(self) -> Handle | None:
        """Reserve room for one more connection; returns the idle one evicted for it, if any.

        The caller holds a permit, so at most ``max_open - 1`` other connections are in use or
        being opened: when the pool is full, one of its connections is idle. The least recently
        used idle one whose caches are not kept is evicted (else the least recently used idle
        one), and the caller closes it before opening its own. The caller releases the
        reservation once its connection is listed. Sparing the kept ones lets a shard with more
        users than open files, polled in turn, still find the state of those users on each poll
        (see _keep_cached); least recently used first would close each file before its next use.
        """
        evicted = None
        if len(self._open) + self._opening >= self.max_open:
            cached = self._cached
            evicted = next(
                (h for h in self._open.values() if not h.in_use and h.auth_id not in cached), None
            )
            if evicted is None:
                evicted = next((h for h in self._open.values() if not h.in_use), None)
            if evicted is None:
                raise RuntimeError("the pool is full of connections in use beyond its permits")
            del self._open[evicted.auth_id]
            self._cached.pop(evicted.auth_id, None)
            self.stats.evictions += 1
            evicted.cache.clear()
        self._opening += 1
        return evicted

    async def _close(self, handle: Handle) -> None:
        if handle.in_use:
            self.stats.closed_in_use += 1
            log.error("refusing to close a database in use")
            return
        handle.cache.clear()
        await offload(self.executor, functools.partial(_close_quietly, handle.conn))

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Close every connection at shutdown, once the tasks using one are done (bounded)."""
        self._closed = True
        taken = 0
        try:
            # Every permit in hand means no task uses a connection; the ones queued for a permit
            # get it after this and find the pool closed. Checkpoints still due find it closed
            # (each file checkpoints as it closes).
            async with asyncio.timeout(grace_seconds):
                await self.checkpoints_done()
                while taken < self.max_open:
                    await self._permits.acquire()
                    taken += 1
        except TimeoutError:
            log.error("closing user databases while some are still in use")
        if self._closing:  # evicted files closing apart from their opens
            await asyncio.wait(list(self._closing.values()))
        handles = list(self._open.values())
        for handle in handles:
            handle.in_use = False
        # Every open file checkpoints as it closes: on the pool's threads side by side.
        await asyncio.gather(*(self._close(handle) for handle in handles))
        self._open.clear()
        self._cached.clear()
        for _ in range(taken):
            self._permits.release()
        self.executor.shutdown(wait=True)


def fit_open_files(max_open: int) -> int:
    """How many user databases this process can keep open, at most `max_open`.

    Raises the soft limit on open files as far as `max_open` needs (never past the hard limit);
    a hard limit too low for it lowers the bound instead of failing opens later.
    """
    needed = max_open * FILES_PER_DATABASE + RESERVED_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-files limit", extra={"soft": soft})
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_open
    return max(1, (soft - RESERVED_FILES) // FILES_PER_DATABASE)


def _release(handle: Handle) -> None:
    """Drop an idle connection's caches: the store's decoded values and SQLite's pages."""
    handle.cache.clear()
    try:
        handle.conn.execute("PRAGMA shrink_memory")
    except sqlite3.Error:
        # Only memory is at stake: the pages are freed when the connection closes.
        log.warning("could not release a user database's page cache", exc_info=True)


def _close_quietly(conn: sqlite3.Connection) -> None:
    """Close a connection (checkpointing its WAL); a failure is logged, the connection dropped."""
    try:
        conn.close()
    except Exception:
        log.exception("closing a user database failed")


def _close_and_open(
    evicted: sqlite3.Connection | None, path: Path, create: bool
) -> sqlite3.Connection | None:
    """Close an evicted connection, then open a user database; None if it is missing."""
    if evicted is not None:
        _close_quietly(evicted)
    if not create and not os.path.exists(path):
        return None
    return connect(path)


def connect(path: Path) -> sqlite3.Connection:
    """Open one user database with the project's pragmas and bring its schema up to date."""
    # Created empty and private first: SQLite would make it 0644, and its -wal and -shm files
    # take the database file's mode. Asked only when it is missing: making sure of the folders
    # costs a system call per parent, on every cold open.
    new = not os.path.exists(path) and private_file(path)
    conn = _configured(path, new)
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if migrate(conn, USER_MIGRATIONS, version) == version:
            return conn
    except BaseException:
        conn.close()
        raise
    # A connection that ran migrations keeps their prepared statements and schema changes in
    # memory for as long as it stays open (measured: 505 KiB against 149 KiB for the same file
    # opened again), and the pool keeps files open: registering 500 users took 300 MiB. One more
    # open, once per file and schema version, keeps the connection lean.
    conn.close()
    return _configured(path, new=False)


def _configured(path: Path, new: bool) -> sqlite3.Connection:
    """A connection to one user database with the project's pragmas (schema not checked)."""
    # Threads take turns on a connection, never share it at once: the user's lock sees to that.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(USER_LOCKING_PRAGMA)
        if new:
            # Both are stored in the file itself: set once, not on every open.
            conn.execute(NEW_FILE_PRAGMA)
            conn.execute(WAL_PRAGMA)
        conn.executescript(";".join((*PRAGMAS, USER_CACHE_PRAGMA, USER_CHECKPOINT_PRAGMA)))
    except BaseException:
        conn.close()
        raise
    return conn
