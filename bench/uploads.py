"""The upload queue: creates per second through the whole stack, and POST-to-create latency.

Simulated TorBox (no rate limit, no hourly budget), a userstore, a scheduler (its upload worker
at its defaults) and a gateway, as processes. Throughput: several users each queue a batch of
magnets through the gateway; the figure is the creates the simulator received per second until
the last one. Latency: on an idle queue, one magnet is queued at a time and the time from the
POST to the simulator counting its create is measured (the worker's default 0.5 s poll is part
of it: that is what a user waits).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.userstore import userstore_env
from common.processes import ManagedProcess

CREATE = "torrents/createtorrent"
# No per-minute limit and no hourly budget: the figure is the queue's, not TorBox's pace.
SIM_ARGS = (
    *("--port", "0", "--time-scale", "0"),
    *("--rate-limit-per-minute", "0", "--uncached-per-hour", "0"),
)


class UploadStack:
    """The four processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[ManagedProcess] = []
        self.http: aiohttp.ClientSession | None = None
        self.sim_url = ""
        self.gw_url = ""

    async def start(self) -> None:
        """Start everything in dependency order."""
        self.http = aiohttp.ClientSession()
        sim = ManagedProcess(
            "simulator",
            "simulator",
            {},
            args=SIM_ARGS,
        )
        self.processes.append(sim)
        self.sim_url = f"http://127.0.0.1:{await sim.start()}"
        store = ManagedProcess(
            "userstore", "userstore_svc", userstore_env(self.directory / "userstore", 50)
        )
        self.processes.append(store)
        userstore = f"127.0.0.1:{await store.start()}"
        scheduler = ManagedProcess(
            "scheduler",
            "scheduler_svc",
            {
                "SCHEDULER_PORT": "0",
                "USERSTORE_ADDRS": userstore,
                "TORBOX_API_BASE": self.sim_url,
                "ENCRYPTION_KEY_FILE": str(self.directory / "encryption.key"),
                "REGISTRY_SYNC_SECONDS": "0.2",
                "TORBOX_RATE_PER_MINUTE": "1000000000",
                "TORBOX_GLOBAL_RATE_PER_SECOND": "0",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "info",
            },
        )
        self.processes.append(scheduler)
        await scheduler.start()
        gateway = ManagedProcess(
            "gateway",
            "gateway",
            {
                "PORT": "0",
                "USERSTORE_ADDRS": userstore,
                "SCHEDULER_ADDR": f"127.0.0.1:{scheduler.port}",
                "RATE_LIMIT_PER_MINUTE": "100000000",
                "RATE_LIMIT_BURST": "10000000",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "info",
            },
        )
        self.processes.append(gateway)
        self.gw_url = f"http://127.0.0.1:{await gateway.start()}"

    async def stop(self) -> None:
        """Stop everything (reverse order)."""
        for process in reversed(self.processes):
            await process.stop()
        if self.http is not None:
            await self.http.close()

    async def _json(self, method: str, url: str, **kw: Any) -> Any:
        assert self.http is not None
        async with self.http.request(method, url, **kw) as response:
            body = await response.json(content_type=None)
            assert response.status < 300, (url, response.status, body)
            return body

    async def user(self) -> str:
        """A registered empty account."""
        account = await self._json("POST", f"{self.sim_url}/_sim/accounts", json={"torrents": []})
        key: str = account["api_key"]
        await self._json(
            "POST", f"{self.gw_url}/api/backend/api-key/ensure-db", headers={"x-api-key": key}
        )
        return key

    async def queue(self, key: str, first: int, count: int) -> None:
        """Queue `count` distinct magnets in one batch."""
        items = [
            {
                "type": "torrent",
                "upload_type": "magnet",
                "url": f"magnet:?xt=urn:btih:{first + i:040x}",
                "name": f"bench {first + i}",
            }
            for i in range(count)
        ]
        await self._json(
            "POST",
            f"{self.gw_url}/api/uploads/batch",
            headers={"x-api-key": key},
            json={"uploads": items},
        )

    async def one(self, key: str, n: int) -> None:
        """Queue one magnet as TBM's /api/torrents route does (POST /api/uploads)."""
        row = {
            "type": "torrent",
            "upload_type": "magnet",
            "url": f"magnet:?xt=urn:btih:{n:040x}",
            "name": f"single {n}",
        }
        await self._json("POST", f"{self.gw_url}/api/uploads", headers={"x-api-key": key}, json=row)

    async def creates(self) -> int:
        """Creates the simulator has answered so far."""
        stats = await self._json("GET", f"{self.sim_url}/_sim/stats")
        return int(stats["by_endpoint"].get(CREATE, 0))


async def run(directory: Path, *, users: int, per_user: int, latency_runs: int) -> dict[str, Any]:
    """Both measurements on one stack; returns the raw figures."""
    stack = UploadStack(directory)
    await stack.start()
    try:
        keys = [await stack.user() for _ in range(users)]
        latencies = [await _latency(stack, keys[0], 10_000_000 + i) for i in range(latency_runs)]
        before = await stack.creates()
        started = time.monotonic()
        await asyncio.gather(*(stack.queue(k, i * per_user, per_user) for i, k in enumerate(keys)))
        total = users * per_user
        await _until(stack, before + total, 0.05)
        seconds = time.monotonic() - started
        return {
            "creates": total,
            "seconds": seconds,
            "creates_per_s": total / seconds,
            "latency_ms": [t * 1000 for t in latencies],
        }
    finally:
        await stack.stop()


async def _latency(stack: UploadStack, key: str, n: int) -> float:
    """From the POST of one magnet on an idle queue to its create at the simulator."""
    before = await stack.creates()
    started = time.monotonic()
    await stack.one(key, n)
    await _until(stack, before + 1, 0.005)
    return time.monotonic() - started


async def _until(stack: UploadStack, creates: int, step: float) -> None:
    """Wait until the simulator has answered `creates` creates in all."""
    while True:
        if await stack.creates() >= creates:
            return
        await asyncio.sleep(step)
