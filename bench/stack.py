"""The full stack: simulated TorBox, a userstore and a scheduler as processes, polling flat out.

The simulator serves bulk accounts (the realistic mix, living in real time, active torrents'
`updated_at` moving on every list as TorBox's does); every account is registered through the
scheduler's EnsureUser and given the benchmark rules, then its state is matured (bench.mature).
The scheduler polls every user at an interval chosen so the offered load is a little above what
the stack sustains, yet no poll comes late enough to be a gap (see _capacity): the stack
runs saturated on the ordinary path and what it completes is its sustained rate. Throughput
comes from the userstore's counters over steady windows; CPU and peak memory per process from
/proc.

APScheduler logs a warning each time a user's poll is due while the previous one still waits for
a slot; at twice the sustainable load that is about one warning per completed poll, which is
counted and reported (it is part of the scheduler's cost when overloaded).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import scheduler_service_pb2_grpc as spb_grpc
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from bench import procstat
from bench.mature import Maturity, mature_shard
from bench.profile import Profiler
from bench.userstore import gather_limited, userstore_env
from bench.workload import rule_docs
from common import grpc_client
from common.processes import ManagedProcess
from common.routing import owner_index
from userstore_svc.config import DEFAULT_MAX_CACHED_USERS, DEFAULT_MAX_OPEN_DBS

# While users are registered each is polled once (its first poll inserts every row), then not again.
SETUP_INTERVAL = 86_400.0
# The matured stack is offered this multiple of what the young one kept up with (see _capacity),
# found by raising the offered load from RAMP_START polls/s by RAMP_STEP while at least KEPT_UP
# of it is done.
OVERSHOOT = 1.1
RAMP_START = 20.0
RAMP_STEP = 1.4
KEPT_UP = 0.9


def scheduler_env(
    directory: Path, userstore: str, sim_url: str, interval: float, concurrency: int
) -> dict[str, str]:
    """The scheduler's environment: every user due every `interval` seconds, no rate limits."""
    return {
        "SCHEDULER_PORT": "0",
        "USERSTORE_ADDRS": userstore,
        "TORBOX_API_BASE": sim_url,
        "ENCRYPTION_KEY_FILE": str(directory / "encryption.key"),
        "POLL_INTERVAL_SECONDS": f"{interval:.3f}",
        "IDLE_POLL_INTERVAL_SECONDS": f"{interval:.3f}",
        "MIN_POLL_INTERVAL_SECONDS": f"{interval:.3f}",
        "MAX_CONCURRENT_POLLS": str(concurrency),
        "TORBOX_GLOBAL_RATE_PER_SECOND": "0",
        "TORBOX_RATE_PER_MINUTE": "1000000000",
        "TORBOX_TIMEOUT_SECONDS": "120",
        "USERSTORE_TIMEOUT_SECONDS": "120",
        "REGISTRY_SYNC_SECONDS": "1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


class Stack:
    """The three processes of one benchmark scenario."""

    def __init__(
        self,
        directory: Path,
        max_open: int = DEFAULT_MAX_OPEN_DBS,
        shards: int = 1,
        max_cached: int = DEFAULT_MAX_CACHED_USERS,
    ) -> None:
        self.directory = directory
        self.max_open = max_open
        self.simulator = ManagedProcess(
            "simulator",
            "simulator",
            {},
            args=("--port", "0", "--time-scale", "1", "--rate-limit-per-minute", "0"),
        )
        # Several userstore processes on one machine are shards, routed as in production.
        self.userstores = [
            ManagedProcess(
                "userstore" if shards == 1 else f"userstore{index}",
                "userstore_svc",
                userstore_env(directory / f"userstore{index}", max_open, max_cached),
            )
            for index in range(shards)
        ]
        self.scheduler: ManagedProcess | None = None
        self.sim_url = ""
        self.userstore_addrs: list[str] = []
        self.channels: list[Any] = []
        self.userstore_stubs: list[Any] = []
        self.scheduler_stub: Any = None

    async def start(self, concurrency: int) -> None:
        """Start the simulator, the userstore and a scheduler that polls new users once."""
        self.sim_url = f"http://127.0.0.1:{await self.simulator.start()}"
        await self._start_userstores()
        await self.start_scheduler(SETUP_INTERVAL, concurrency)

    async def _start_userstores(self) -> None:
        """Start every userstore process and connect to it."""
        for process in self.userstores:
            address = f"127.0.0.1:{await process.start()}"
            self.userstore_addrs.append(address)
            channel = grpc_client.channel(address)
            self.channels.append(channel)
            self.userstore_stubs.append(pb_grpc.UserstoreServiceStub(channel))

    async def start_scheduler(self, interval: float, concurrency: int) -> None:
        """(Re)start the scheduler with every user due every `interval` seconds.

        A restarted scheduler reads every user from the registry and spreads their first polls
        over one interval.
        """
        if self.scheduler is not None:
            await self.scheduler.stop()
        self.scheduler = ManagedProcess(
            "scheduler",
            "scheduler_svc",
            scheduler_env(
                self.directory, ",".join(self.userstore_addrs), self.sim_url, interval, concurrency
            ),
        )
        channel = grpc_client.channel(f"127.0.0.1:{await self.scheduler.start()}")
        self.channels.append(channel)
        self.scheduler_stub = spb_grpc.SchedulerServiceStub(channel)

    def processes(self) -> dict[str, ManagedProcess]:
        """The running processes by name."""
        found = {"simulator": self.simulator, **{p.name: p for p in self.userstores}}
        if self.scheduler is not None:
            found["scheduler"] = self.scheduler
        return found

    def pids(self) -> dict[str, int]:
        """Process ids by name."""
        return {
            name: p.process.pid for name, p in self.processes().items() if p.process is not None
        }

    async def bulk(self, accounts: int, torrents: int) -> list[str]:
        """Create the simulated accounts; returns their API keys.

        Active torrents carry a new `updated_at` on every list, as TorBox's do.
        """
        body = {
            "accounts": accounts,
            "torrents_per_account": torrents,
            "knobs": {"active_updated_at_now": True},
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.sim_url}/_sim/bulk",
                json=body,
                timeout=aiohttp.ClientTimeout(total=600),
            ) as response,
        ):
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"bulk set-up failed: {response.status} {body}")
            keys: list[str] = body["api_keys"]
            return keys

    async def register(self, keys: list[str]) -> None:
        """EnsureUser every key through the scheduler, then save the rules of each user."""
        rules_json = json.dumps(rule_docs())

        async def one(key: str) -> None:
            ensured = await self.scheduler_stub.EnsureUser(
                spb.EnsureUserRequest(api_key=key), timeout=120
            )
            shard = self.userstore_stubs[owner_index(ensured.auth_id, len(self.userstore_stubs))]
            await shard.SaveRules(
                pb.SaveRulesRequest(auth_id=ensured.auth_id, rules_json=rules_json), timeout=120
            )

        await gather_limited(16, [functools.partial(one, k) for k in keys])

    async def mature(self, maturity: Maturity) -> list[dict[str, float]]:
        """Stop the userstores, give every user a history (bench.mature), start them again.

        The scheduler is stopped first: it is restarted afterwards with the new addresses.
        """
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        for channel in self.channels:
            await channel.close()
        self.channels, self.userstore_stubs, self.userstore_addrs = [], [], []
        done = []
        for index, process in enumerate(self.userstores):
            await process.stop()
            done.append(await mature_shard(self.directory / f"userstore{index}", maturity))
        await self._start_userstores()
        return done

    async def _summed(self, *names: str) -> list[int]:
        """These GetStats counters so far, every shard together."""
        sums = [0] * len(names)
        for stub in self.userstore_stubs:
            stats = await stub.GetStats(pb.GetStatsRequest(), timeout=30)
            sums = [
                total + int(getattr(stats, name)) for total, name in zip(sums, names, strict=True)
            ]
        return sums

    async def counters(self) -> tuple[int, int]:
        """(snapshots applied, torrents ingested) so far, every shard together."""
        applied, ingested = await self._summed("snapshots_applied", "torrents_ingested")
        return applied, ingested

    async def after_gap(self) -> int:
        """Snapshots the userstores applied after a gap (the user was not polled in time)."""
        (found,) = await self._summed("snapshots_after_gap")
        return found

    async def scheduler_status(self) -> spb.GetStatusResponse:
        """The scheduler's figures."""
        status: spb.GetStatusResponse = await self.scheduler_stub.GetStatus(
            spb.GetStatusRequest(), timeout=30
        )
        return status

    async def stop(self) -> dict[str, int]:
        """Stop everything (reverse order); returns the exit codes."""
        for channel in self.channels:
            await channel.close()
        codes = {}
        for name, process in reversed(list(self.processes().items())):
            codes[name] = await process.stop()
        return codes


async def run(
    directory: Path,
    *,
    users: int,
    torrents: int,
    windows: int,
    window_seconds: float,
    offered_torrents_per_s: float,
    concurrency: int,
    max_open: int = DEFAULT_MAX_OPEN_DBS,
    max_cached: int = DEFAULT_MAX_CACHED_USERS,
    shards: int = 1,
    warmup_timeout: float = 600.0,
    profiler: Profiler | None = None,
    maturity: Maturity | None = None,
) -> dict[str, Any]:
    """One scenario: `users` accounts of `torrents` each, polled flat out; returns the figures."""
    interval = max(0.1, users * torrents / offered_torrents_per_s)
    stack = Stack(directory, max_open, shards, max_cached)
    maturity = maturity or Maturity()
    try:
        result = await _measure(
            stack,
            users,
            torrents,
            windows,
            window_seconds,
            interval,
            concurrency,
            warmup_timeout,
            profiler or Profiler(None),
            maturity,
        )
    finally:
        codes = await stack.stop()
    bad = {name: code for name, code in codes.items() if code not in (0, -15)}
    if bad:
        tail = "\n".join(
            f"----- {n}\n" + "\n".join(p.lines[-20:]) for n, p in stack.processes().items()
        )
        raise RuntimeError(f"a process exited badly: {bad}\n{tail}")
    result["max_open_dbs"] = max_open
    result["max_cached_users"] = min(max_cached, max_open)
    result["shards"] = shards
    result["state"] = maturity.label
    return result


async def _measure(
    stack: Stack,
    users: int,
    torrents: int,
    windows: int,
    window_seconds: float,
    interval: float,
    concurrency: int,
    warmup_timeout: float,
    profiler: Profiler,
    maturity: Maturity,
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = now - clock
        clock = now

    await stack.start(concurrency)
    lap("start_s")
    keys = await stack.bulk(users, torrents)
    lap("bulk_s")
    # Registration polls each user once: the first poll, which inserts every row.
    await stack.register(keys)
    await _until(stack, users, warmup_timeout)
    lap("register_and_first_polls_s")
    # What the young stack keeps up with sets the offered load (see _capacity).
    rate = await _capacity(stack, users, interval, window_seconds, concurrency)
    interval = max(0.1, users / (OVERSHOOT * rate))
    lap("calibrate_s")
    matured = await stack.mature(maturity)
    lap("mature_s")
    await stack.start_scheduler(interval, concurrency)
    applied, _ = await stack.counters()
    # Steady windows start once every user has had a steady poll.
    await _until(stack, applied + users, warmup_timeout)
    lap("restart_and_warmup_s")

    pids = stack.pids()
    if profiler.enabled:
        # An extra window under the profiler, before (and apart from) the measured ones.
        shards = len(stack.userstores)
        label = f"stack-{torrents}" if shards == 1 else f"stack-{torrents}-{shards}shards"
        recordings = [await profiler.start(f"{label}-{name}", pid) for name, pid in pids.items()]
        await asyncio.sleep(window_seconds)
        await profiler.stop(recordings)
    status0 = await stack.scheduler_status()
    gaps0 = await stack.after_gap()
    window_results = []
    cpu: dict[str, list[float]] = {name: [] for name in pids}
    rss: dict[str, list[float]] = {name: [] for name in pids}
    for _ in range(windows):
        before = {name: procstat.sample(pid) for name, pid in pids.items()}
        polls0, torrents0 = await stack.counters()
        t0 = time.monotonic()
        await asyncio.sleep(window_seconds)
        polls1, torrents1 = await stack.counters()
        seconds = time.monotonic() - t0
        after = {name: procstat.sample(pid) for name, pid in pids.items()}
        for name in pids:
            cpu[name].append(procstat.cpu_share(before[name], after[name], seconds))
            rss[name].append(after[name].rss_bytes / procstat.MIB)
        window_results.append(
            {
                "polls_per_s": (polls1 - polls0) / seconds,
                "torrents_per_s": (torrents1 - torrents0) / seconds,
                "seconds": seconds,
            }
        )
    lap("windows_s")
    last = {name: procstat.sample(pid) for name, pid in pids.items()}
    status1 = await stack.scheduler_status()
    gaps1 = await stack.after_gap()
    return {
        "users": users,
        "torrents_per_user": torrents,
        "poll_interval_s": interval,
        "offered_torrents_per_s": users * torrents / interval,
        "max_concurrent_polls": concurrency,
        "windows": window_results,
        "processes": {
            name: {
                "cpu_cores": cpu[name],
                "rss_mib": rss[name],
                "peak_rss_mib": last[name].peak_rss_bytes / procstat.MIB,
            }
            for name in pids
        },
        "polls_failed": int(status1.polls_failed - status0.polls_failed),
        "skipped_ticks": int(status1.polls_skipped - status0.polls_skipped),
        "polls_after_gap": gaps1 - gaps0,
        "timings": timings,
        "matured": matured,
    }


async def _capacity(
    stack: Stack, users: int, fastest: float, window_seconds: float, concurrency: int
) -> float:
    """The polls per second the young stack keeps up with, found by raising the offered load.

    The matured stack is then offered `OVERSHOOT` times that: more than it does (it is slower
    than the young one), so it runs saturated, but not so much more that it measures overload
    (coalesced ticks, queued snapshots) instead of polls. A poll later than twice the poll
    interval is a gap to the userstore (an outage: speed histories and held conditions start
    again): the matured stack stays free of gaps as long as it does at least `1 / (2 x
    OVERSHOOT)` of what the young one did, and the figures count the polls that found one.
    Gaps of the young stack do not matter: maturing rebuilds every user's state afterwards.
    """
    offered = RAMP_START
    best = 0.0
    while True:
        interval = max(fastest, users / offered)
        await stack.start_scheduler(interval, concurrency)
        await asyncio.sleep(max(window_seconds, interval))  # every user's first poll is spread
        polls0, _t = await stack.counters()
        t0 = time.monotonic()
        await asyncio.sleep(2 * window_seconds)  # a rate within 10 % needs a longer look
        polls1, _t = await stack.counters()
        rate = (polls1 - polls0) / (time.monotonic() - t0)
        best = max(best, rate)
        if rate < KEPT_UP * users / interval or interval <= fastest:
            return best
        offered = users / interval * RAMP_STEP


async def _until(stack: Stack, applied: int, timeout: float) -> None:
    """Wait until the userstore has applied `applied` snapshots in all."""
    deadline = time.monotonic() + timeout
    while (await stack.counters())[0] < applied:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack did not apply {applied} snapshots in {timeout:.0f} s")
        await asyncio.sleep(0.2)
