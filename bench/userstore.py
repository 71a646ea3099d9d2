"""The userstore with real SQLite files: in process, through its gRPC server, and per-poll latency.

Every benchmark user has the workload's rules and more users than ``MAX_OPEN_DBS`` are polled in
turn, so (as for 60,000 users polled every 5 minutes through 50 open databases) most polls open
the user's file, load its state, apply the snapshot, write what changed, and later close it.
The first poll of each user (every row inserted) is timed apart from the steady polls.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from bench import procstat
from bench.ingest_client import IngestClient
from bench.mature import Maturity, mature_shard
from bench.profile import Profiler
from bench.stats import percentile
from bench.workload import POLL_INTERVAL, Account, auth_id, rule_docs
from common import grpc_client
from common.processes import ManagedProcess
from common.routing import owner_index
from userstore_svc.hub import EventHub
from userstore_svc.ingest import IngestConfig, Ingestor, SnapshotIn
from userstore_svc.rules_service import RuleService
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry
from userstore_svc.users_service import UserService

T = TypeVar("T")
SETUP_CONCURRENCY = 16


async def gather_limited(limit: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most `limit` at once; results in job order."""
    slots = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One pass over every user: throughput and the latency of each poll."""

    torrents_per_s: float
    polls_per_s: float
    p50_ms: float
    p99_ms: float
    seconds: float

    def as_json(self) -> dict[str, float]:
        """The round as a JSON object."""
        return {
            "torrents_per_s": self.torrents_per_s,
            "polls_per_s": self.polls_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "seconds": self.seconds,
        }


async def _timed_round(
    count: int, torrents: int, concurrency: int, poll: Callable[[int], Awaitable[None]]
) -> RoundResult:
    latencies: list[float] = []
    slots = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with slots:
            started = time.perf_counter()
            await poll(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    seconds = time.perf_counter() - started
    return RoundResult(
        torrents_per_s=count * torrents / seconds,
        polls_per_s=count / seconds,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        seconds=seconds,
    )


def _accounts(users: int, torrents: int, seed: int) -> list[Account]:
    return [Account(seed * 100_003 + i, torrents) for i in range(users)]


# In process ------------------------------------------------------------------------------------


async def run_inprocess(
    directory: Path,
    *,
    users: int,
    torrents: int,
    rounds: int,
    concurrency: int,
    max_open: int,
    seed: int,
) -> dict[str, Any]:
    """The ingestor over a real pool and registry in this process (no gRPC, no protobuf)."""
    (directory / "users").mkdir(parents=True, exist_ok=True)
    registry = await Registry.open(directory / "master.sqlite")
    pool = DatabasePool(directory / "users", max_open)
    ingestor = Ingestor(pool, registry, EventHub(), IngestConfig())
    people = UserService(pool, registry, time.time)
    rules = RuleService(pool, registry, time.time)
    ids = [auth_id(i, f"inproc{seed}") for i in range(users)]
    docs = rule_docs()
    try:

        async def register(user: str) -> None:
            await people.register(user, b"bench-ciphertext")
            await rules.save_all(user, docs)

        await gather_limited(SETUP_CONCURRENCY, [functools.partial(register, u) for u in ids])
        accounts = _accounts(users, torrents, seed)

        async def poll(index: int) -> None:
            account = accounts[index]
            plan = await ingestor.ingest(
                SnapshotIn(
                    poll_id=f"{index}-{account.now}",
                    auth_id=ids[index],
                    observed_at=account.now,
                    complete=True,
                    torrents=account.snapshots,
                    poll_interval=POLL_INTERVAL,
                )
            )
            if not plan.applied:
                raise RuntimeError("a benchmark snapshot was not applied")

        first = await _timed_round(users, torrents, concurrency, poll)
        steady = []
        for _ in range(rounds):
            for account in accounts:
                account.advance()
            steady.append(await _timed_round(users, torrents, concurrency, poll))
        memory = procstat.sample()
        return {
            "users": users,
            "torrents_per_user": torrents,
            "max_open_dbs": max_open,
            "concurrency": concurrency,
            "first_poll": first.as_json(),
            "rounds": [r.as_json() for r in steady],
            "pool_opens": pool.stats.opens,
            "pool_evictions": pool.stats.evictions,
            # This process also holds the workload, so its memory is only an upper bound.
            "bench_process_rss_mib": memory.rss_bytes / procstat.MIB,
        }
    finally:
        await pool.close()
        await registry.close()


# Through the gRPC server (a child process) ------------------------------------------------------


def userstore_env(directory: Path, max_open: int, max_cached: int | None = None) -> dict[str, str]:
    """The environment of a benchmark userstore process (`max_cached`: at most `max_open`)."""
    return {
        "USERSTORE_PORT": "0",
        "USER_DB_DIR": str(directory / "users"),
        "MASTER_DB_PATH": str(directory / "master.sqlite"),
        "MAX_OPEN_DBS": str(max_open),
        "MAX_CACHED_USERS": str(max_open if max_cached is None else min(max_cached, max_open)),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


class ChildUserstore:
    """A userstore process with a unary stub and an Ingest stream to it."""

    def __init__(self, directory: Path, max_open: int) -> None:
        self.process = ManagedProcess(
            "userstore", "userstore_svc", userstore_env(directory, max_open)
        )
        self.address = ""
        self.channel: Any = None
        self.stub: Any = None
        self.ingest: IngestClient | None = None

    async def start(self) -> None:
        """Start the process and connect."""
        port = await self.process.start()
        self.address = f"127.0.0.1:{port}"
        self.channel = grpc_client.channel(self.address)
        self.stub = pb_grpc.UserstoreServiceStub(self.channel)
        self.ingest = IngestClient(self.address)

    @property
    def pid(self) -> int:
        """The process id (for /proc readings)."""
        assert self.process.process is not None
        return self.process.process.pid

    async def register(self, ids: Sequence[str]) -> None:
        """Register every user and give each the benchmark rules."""
        rules_json = json.dumps(rule_docs())

        async def one(user: str) -> None:
            await self.stub.RegisterUser(
                pb.RegisterUserRequest(auth_id=user, key_ciphertext=b"bench-ciphertext")
            )
            await self.stub.SaveRules(pb.SaveRulesRequest(auth_id=user, rules_json=rules_json))

        await gather_limited(SETUP_CONCURRENCY, [functools.partial(one, u) for u in ids])

    async def poll(self, user: str, account: Account, request: bytes | None = None) -> None:
        """Send one snapshot of `account` and check it was applied."""
        assert self.ingest is not None
        poll_id = f"{user[:8]}-{account.now}"
        if request is None:
            request = account.ingest_request(poll_id, user)
        response = await self.ingest.send(poll_id, request)
        if response.WhichOneof("kind") != "plan" or not response.plan.applied:
            raise RuntimeError(f"snapshot not applied: {response}")

    async def stats(self) -> pb.GetStatsResponse:
        """The userstore's counters."""
        response: pb.GetStatsResponse = await self.stub.GetStats(pb.GetStatsRequest())
        return response

    async def stop(self) -> int:
        """Close the connections and stop the process; returns its exit code."""
        if self.ingest is not None:
            await self.ingest.close()
        if self.channel is not None:
            await self.channel.close()
        return await self.process.stop()


async def run_grpc(
    directory: Path,
    *,
    users: int,
    torrents: int,
    rounds: int,
    concurrency: int,
    max_open: int,
    seed: int,
    shards: int = 1,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    """Userstore processes (`shards` of them, users routed as in production) driven over one
    Ingest stream each, `concurrency` snapshots in flight in all."""
    children: list[ChildUserstore] = []
    try:
        for i in range(shards):
            children.append(ChildUserstore(directory / f"shard-{i}", max_open))
            await children[-1].start()
        ids = [auth_id(i, f"grpc{seed}") for i in range(users)]
        owner = [children[owner_index(user, shards)] for user in ids]
        await asyncio.gather(
            *(c.register([u for u, o in zip(ids, owner, strict=True) if o is c]) for c in children)
        )
        accounts = _accounts(users, torrents, seed)

        def encoded() -> list[bytes]:
            return [
                a.ingest_request(f"{user[:8]}-{a.now}", user)
                for user, a in zip(ids, accounts, strict=True)
            ]

        async def round_of(requests: list[bytes]) -> tuple[RoundResult, float, float]:
            """The round, the userstores' CPU (cores) and this client's, over the round."""
            before = [procstat.sample(c.pid) for c in children]
            client_before = procstat.sample()
            started = time.perf_counter()
            result = await _timed_round(
                users,
                torrents,
                concurrency,
                lambda i: owner[i].poll(ids[i], accounts[i], requests[i]),
            )
            elapsed = time.perf_counter() - started
            share = sum(
                procstat.cpu_share(b, procstat.sample(c.pid), elapsed)
                for b, c in zip(before, children, strict=True)
            )
            return result, share, procstat.cpu_share(client_before, procstat.sample(), elapsed)

        first, _, _ = await round_of(encoded())
        steady: list[RoundResult] = []
        cpu: list[float] = []
        client_cpu: list[float] = []
        rss: list[float] = []
        profiler = profiler or Profiler(None)
        if profiler.enabled:
            # An extra round under the profiler, apart from the measured ones.
            for account in accounts:
                account.advance()
            requests = encoded()
            names = (
                ["userstore-grpc"]
                if shards == 1
                else [f"userstore-grpc-{shards}shards-{i}" for i in range(shards)]
            )
            recordings = [
                await profiler.start(name, c.pid) for name, c in zip(names, children, strict=True)
            ]
            await round_of(requests)
            await profiler.stop(recordings)
        for _ in range(rounds):
            for account in accounts:
                account.advance()
            result, share, client = await round_of(encoded())
            steady.append(result)
            cpu.append(share)
            client_cpu.append(client)
            # The largest shard's memory: each is a process of its own.
            rss.append(max(procstat.sample(c.pid).rss_bytes for c in children) / procstat.MIB)
        stats = [await c.stats() for c in children]
        return {
            "users": users,
            "torrents_per_user": torrents,
            "max_open_dbs": max_open,
            "shards": shards,
            "concurrency": concurrency,
            "first_poll": first.as_json(),
            "rounds": [r.as_json() for r in steady],
            "cpu_cores": cpu,
            # The benchmark's own process (the gRPC client), on the same two cores.
            "client_cpu_cores": client_cpu,
            "open_databases": max(s.open_databases for s in stats),
            "pool_opens": sum(s.pool_opens for s in stats),
            "pool_evictions": sum(s.pool_evictions for s in stats),
            "rss_mib": rss,
            "peak_rss_mib": max(procstat.sample(c.pid).peak_rss_bytes for c in children)
            / procstat.MIB,
        }
    finally:
        for child in children:
            await child.stop()


async def run_latency(
    directory: Path,
    *,
    users: int,
    torrents: int,
    polls: int,
    runs: int,
    seed: int,
    profiler: Profiler | None = None,
    maturity: Maturity | None = None,
) -> dict[str, Any]:
    """Snapshot-to-plan latency, one snapshot at a time, with the database open or closed.

    The process keeps at most 2 databases open and serves at least 3 users: polling one user
    again and again finds its database open (warm); polling them in turn finds it closed every
    time (cold: open, load every row, apply, write), as production does at 60,000 users.
    """
    users = max(users, 3)
    child = ChildUserstore(directory, max_open=2)
    await child.start()
    try:
        ids = [auth_id(i, f"latency{seed}") for i in range(users)]
        await child.register(ids)
        accounts = _accounts(users, torrents, seed)
        for user, account in zip(ids, accounts, strict=True):
            await child.poll(user, account)
        # The state of a user polled for a day before (bench.mature), the process stopped.
        await child.stop()
        maturity = maturity or Maturity()
        matured = await mature_shard(directory, maturity)
        await child.start()

        async def timed(index: int) -> float:
            account = accounts[index]
            account.advance()
            request = account.ingest_request(f"{ids[index][:8]}-{account.now}", ids[index])
            started = time.perf_counter()
            await child.poll(ids[index], account, request)
            return (time.perf_counter() - started) * 1e3

        result: dict[str, Any] = {
            "users": users,
            "torrents_per_user": torrents,
            "runs": [],
            "matured": matured,
            "state": maturity.label,
        }
        profiler = profiler or Profiler(None)

        async def warm_pass() -> list[float]:
            found = []
            for index in range(users):
                await timed(index)  # opens the database (not counted)
                for _ in range(polls):
                    found.append(await timed(index))
            return found

        async def cold_pass() -> list[float]:
            return [await timed(index) for _ in range(polls) for index in range(users)]

        if profiler.enabled:
            # An extra pass of each kind under the profiler, apart from the measured ones.
            for name, one_pass in (("latency-warm", warm_pass), ("latency-cold", cold_pass)):
                recording = await profiler.start(name, child.pid)
                await one_pass()
                await profiler.stop([recording])
        for _ in range(runs):
            warm = await warm_pass()
            cold = await cold_pass()
            result["runs"].append(
                {
                    "warm_p50_ms": percentile(warm, 50),
                    "warm_p99_ms": percentile(warm, 99),
                    "cold_p50_ms": percentile(cold, 50),
                    "cold_p99_ms": percentile(cold, 99),
                    "samples": len(warm) + len(cold),
                }
            )
        return result
    finally:
        await child.stop()
