"""The sizes of each mode and the order the benchmarks run in; returns the raw results."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import baseline, phases, pipeline, stack, uploads, userstore
from bench.profile import Profiler
from userstore_svc.config import DEFAULT_MAX_CACHED_USERS, DEFAULT_MAX_OPEN_DBS

BENCHMARKS = ("pipeline", "baseline", "phases", "userstore", "latency", "stack", "uploads")
# The full-stack targets, by torrents per user (the offered load is a multiple of them).
STACK_TARGETS = {100: 20_000.0, 1000: 40_000.0}


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each benchmark is in one mode; `runs` repetitions make each figure's spread."""

    mode: str
    runs: int
    small: int  # torrents per user of the "100-torrent" scenarios
    large: int  # torrents per user of the "1,000-torrent" scenarios
    pipeline_users: int
    pipeline_polls: int
    baseline_users: int
    phases_polls: int
    userstore_users: int
    latency_users: int
    latency_polls: int
    stack_users_small: int
    stack_users_large: int
    stack_window_seconds: float
    concurrency: int = 64
    # The `userstore` scenarios poll more users than this, so nearly every poll opens a file.
    max_open_dbs: int = 50
    # The full stack runs the userstore as `make run` starts it: its default bounds.
    stack_max_open_dbs: int = DEFAULT_MAX_OPEN_DBS
    stack_max_cached_users: int = DEFAULT_MAX_CACHED_USERS
    offered_factor: float = 2.0
    # The upload queue: users each queueing a batch, and single magnets timed on an idle queue.
    upload_users: int = 4
    upload_per_user: int = 250
    upload_latency_runs: int = 10


QUICK = Sizes(
    mode="quick",
    runs=3,
    small=100,
    large=1000,
    pipeline_users=30,
    pipeline_polls=2,
    baseline_users=100,
    phases_polls=4,
    userstore_users=120,
    latency_users=3,
    latency_polls=4,
    stack_users_small=200,
    stack_users_large=20,
    stack_window_seconds=3.0,
)
FULL = Sizes(
    mode="full",
    runs=5,
    small=100,
    large=1000,
    pipeline_users=100,
    pipeline_polls=3,
    baseline_users=500,
    phases_polls=10,
    userstore_users=2000,
    latency_users=5,
    latency_polls=10,
    stack_users_small=1000,
    stack_users_large=100,
    stack_window_seconds=15.0,
)
# Just enough to prove every benchmark runs (the figures mean nothing).
TOY = Sizes(
    mode="toy",
    runs=2,
    small=10,
    large=40,
    pipeline_users=2,
    pipeline_polls=1,
    baseline_users=3,
    phases_polls=1,
    userstore_users=4,
    latency_users=3,
    latency_polls=1,
    stack_users_small=3,
    stack_users_large=1,
    stack_window_seconds=0.5,
    concurrency=4,
    max_open_dbs=2,
    # Fewer users cached than open, so the smallest run goes through both bounds.
    stack_max_cached_users=1,
    upload_users=2,
    upload_per_user=5,
    upload_latency_runs=2,
)
MODES = {s.mode: s for s in (QUICK, FULL, TOY)}


def _target(torrents: int) -> float:
    return STACK_TARGETS.get(
        torrents, STACK_TARGETS[100] if torrents <= 100 else STACK_TARGETS[1000]
    )


async def run_suite(
    sizes: Sizes,
    data_dir: Path,
    *,
    only: Collection[str] = BENCHMARKS,
    progress: Callable[[str], None] = lambda _text: None,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    """Run the chosen benchmarks at these sizes with their files under `data_dir`."""
    s = sizes

    async def settle() -> None:
        # Write back what earlier benchmarks left dirty (a 1,000-torrent stack leaves hundreds
        # of MB), so the kernel's writeback of one is not measured in the next.
        await asyncio.to_thread(os.sync)

    profiler = profiler or Profiler(None)
    raw: dict[str, Any] = {}
    # Fewer users when each has more torrents, so both sizes handle about as many torrents.
    large_users = max(1, s.pipeline_users * s.small // s.large)
    if "pipeline" in only:
        progress("pipeline")
        raw["pipeline"] = {
            str(n): [
                pipeline.run_once(users, n, s.pipeline_polls, seed=r + 1) for r in range(s.runs)
            ]
            for n, users in ((s.small, s.pipeline_users), (s.large, large_users))
        }
    if "baseline" in only:
        progress("baseline")
        rates = {}
        for n, users in ((s.small, s.baseline_users), (s.large, max(1, s.baseline_users // 10))):
            rows = baseline.user_rows(users, n, seed=1)
            rates[str(n)] = baseline.run(data_dir / f"baseline-{n}", rows, s.runs)
        raw["baseline"] = {"rows_per_s": rates}
    if "phases" in only:
        progress("userstore phases (one poll at a time)")
        raw["phases"] = {
            str(n): await phases.run(
                data_dir / f"phases-{n}",
                torrents=n,
                users=3,
                polls=s.phases_polls,
                runs=s.runs,
                seed=1,
            )
            for n in (s.small, s.large)
        }
    if "userstore" in only:
        common = {
            "users": s.userstore_users,
            "torrents": s.small,
            "rounds": s.runs,
            "concurrency": s.concurrency,
            "max_open": s.max_open_dbs,
            "seed": 1,
        }
        progress("userstore (in process)")
        await settle()
        raw["userstore_inprocess"] = await userstore.run_inprocess(
            data_dir / "userstore-inprocess", **common
        )
        progress("userstore (gRPC)")
        await settle()
        raw["userstore_grpc"] = await userstore.run_grpc(
            data_dir / "userstore-grpc", **common, profiler=profiler
        )
        # One userstore process is bound to one core by the GIL; the design uses more cores by
        # sharding (one shard per core), so the target is also measured as deployed on two cores.
        progress("userstore (gRPC, two shards)")
        await settle()
        raw["userstore_grpc_2shards"] = await userstore.run_grpc(
            data_dir / "userstore-grpc-2shards", **common, shards=2, profiler=profiler
        )
    if "latency" in only:
        progress("snapshot-to-plan latency")
        await settle()
        raw["latency"] = await userstore.run_latency(
            data_dir / "latency",
            users=s.latency_users,
            torrents=s.large,
            polls=s.latency_polls,
            runs=s.runs,
            seed=1,
            profiler=profiler,
        )
    if "stack" in only:
        raw["stack"] = []
        # The last scenarios run two userstore shards on this machine: one userstore process is
        # bound to one core by the GIL, and sharding is how the design uses more.
        scenarios = (
            (s.small, s.stack_users_small, 1),
            (s.large, s.stack_users_large, 1),
            (s.small, s.stack_users_small, 2),
            (s.large, s.stack_users_large, 2),
        )
        for n, users, shards in scenarios:
            progress(f"full stack ({users} users x {n} torrents, {shards} shard(s))")
            await settle()
            raw["stack"].append(
                await stack.run(
                    data_dir / f"stack-{n}-{shards}",
                    users=users,
                    torrents=n,
                    windows=s.runs,
                    window_seconds=s.stack_window_seconds,
                    offered_torrents_per_s=s.offered_factor * _target(n),
                    concurrency=s.concurrency,
                    max_open=s.stack_max_open_dbs,
                    max_cached=s.stack_max_cached_users,
                    shards=shards,
                    profiler=profiler,
                )
            )
    if "uploads" in only:
        progress("upload queue (throughput, POST-to-create latency)")
        await settle()
        raw["uploads"] = await uploads.run(
            data_dir / "uploads",
            users=s.upload_users,
            per_user=s.upload_per_user,
            latency_runs=s.upload_latency_runs,
        )
    return raw
