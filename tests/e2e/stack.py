"""A whole deployment for a test: simulator, userstore(s), scheduler(s) and gateway as processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from common.processes import ManagedProcess

FAST_POLLING = {
    "POLL_INTERVAL_SECONDS": "1",
    "IDLE_POLL_INTERVAL_SECONDS": "1",
    "MIN_POLL_INTERVAL_SECONDS": "0.5",
    "REGISTRY_SYNC_SECONDS": "0.3",
    "BREAKER_PROBE_SECONDS": "1",
    "TORBOX_TIMEOUT_SECONDS": "3",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "info",
}


class Stack:
    """Starts and stops the processes; offers HTTP helpers for the gateway and the simulator."""

    def __init__(
        self,
        root: Path,
        *,
        shards: int = 1,
        schedulers: int = 1,
        env: dict[str, str] | None = None,
        sim_args: tuple[str, ...] = ("--time-scale", "0"),
    ) -> None:
        self.root = root
        self.shards = shards
        self.schedulers = schedulers
        self.env = {**FAST_POLLING, **(env or {})}
        self.sim_args = sim_args
        self.simulator: ManagedProcess | None = None
        self.userstores: list[ManagedProcess] = []
        self.scheduler_procs: list[ManagedProcess] = []
        self.gateway: ManagedProcess | None = None
        self.http: aiohttp.ClientSession | None = None
        self.sim_url = ""
        self.gw_url = ""
        self.userstore_addrs: list[str] = []

    def userstore_env(self, index: int) -> dict[str, str]:
        """The environment of userstore shard `index` (its data lives in its own folder)."""
        folder = self.root / f"shard{index}"
        return {
            **self.env,
            "USERSTORE_PORT": "0",
            "USER_DB_DIR": str(folder / "users"),
            "MASTER_DB_PATH": str(folder / "master.sqlite"),
        }

    def scheduler_env(self, index: int) -> dict[str, str]:
        """The environment of scheduler replica `index`."""
        return {
            **self.env,
            "SCHEDULER_PORT": "0",
            "USERSTORE_ADDRS": ",".join(self.userstore_addrs),
            "TORBOX_API_BASE": self.sim_url,
            "ENCRYPTION_KEY_FILE": str(self.root / "encryption.key"),
            "SCHEDULER_REPLICAS": str(self.schedulers),
            "SCHEDULER_INDEX": str(index),
        }

    async def start(self) -> Stack:
        """Start everything, in dependency order."""
        self.http = aiohttp.ClientSession()
        self.simulator = ManagedProcess(
            "simulator", "simulator", {}, args=("--port", "0", *self.sim_args)
        )
        self.sim_url = f"http://127.0.0.1:{await self.simulator.start()}"
        for index in range(self.shards):
            await self.start_userstore(index)
        for index in range(self.schedulers):
            await self.start_scheduler(index)
        self.gateway = ManagedProcess(
            "gateway",
            "gateway",
            {
                **self.env,
                "PORT": "0",
                "USERSTORE_ADDRS": ",".join(self.userstore_addrs),
                "SCHEDULER_ADDR": ",".join(self.scheduler_addr(i) for i in range(self.schedulers)),
            },
        )
        self.gw_url = f"http://127.0.0.1:{await self.gateway.start()}"
        return self

    def scheduler_addr(self, index: int) -> str:
        """host:port of scheduler replica `index`."""
        return f"127.0.0.1:{self.scheduler_procs[index].port}"

    async def start_userstore(self, index: int, port: int | None = None) -> ManagedProcess:
        """Start (or restart, on the same port) userstore shard `index`."""
        env = self.userstore_env(index)
        if port is not None:
            env["USERSTORE_PORT"] = str(port)
        process = ManagedProcess(f"userstore{index}", "userstore_svc", env)
        bound = await process.start()
        address = f"127.0.0.1:{bound}"
        if index < len(self.userstores):
            self.userstores[index] = process
            self.userstore_addrs[index] = address
        else:
            self.userstores.append(process)
            self.userstore_addrs.append(address)
        return process

    async def start_scheduler(self, index: int, port: int | None = None) -> ManagedProcess:
        """Start (or restart) scheduler replica `index`."""
        env = self.scheduler_env(index)
        if port is not None:
            env["SCHEDULER_PORT"] = str(port)
        process = ManagedProcess(f"scheduler{index}", "scheduler_svc", env)
        await process.start()
        if index < len(self.scheduler_procs):
            self.scheduler_procs[index] = process
        else:
            self.scheduler_procs.append(process)
        return process

    async def stop(self) -> dict[str, int]:
        """Stop everything (reverse order); returns each process's exit code."""
        codes: dict[str, int] = {}
        for process in [self.gateway, *self.scheduler_procs, *self.userstores, self.simulator]:
            if process is not None:
                codes[process.name] = await process.stop()
        if self.http is not None:
            await self.http.close()
        return codes

    def logs(self) -> str:
        """Every process's output, for failure messages and secret checks."""
        parts = []
        for process in [self.gateway, *self.scheduler_procs, *self.userstores, self.simulator]:
            if process is not None:
                parts.append(f"----- {process.name}\n{process.output()}")
        return "\n".join(parts)

    # HTTP helpers -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        key: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One HTTP call; returns (status, parsed JSON or text, headers)."""
        assert self.http is not None
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["x-api-key"] = key
        async with self.http.request(
            method, url, json=json, headers=all_headers, data=data
        ) as response:
            text = await response.text()
            try:
                body: Any = await response.json(content_type=None)
            except ValueError:
                body = text
            return response.status, body, dict(response.headers)

    async def gw(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        """Call the gateway."""
        return await self.request(method, self.gw_url + path, **kwargs)

    async def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the simulator's admin API (expects success)."""
        status, body, _ = await self.request(method, self.sim_url + path, **kwargs)
        assert status < 300, (status, body)
        return body

    async def account(self, **spec: Any) -> dict[str, Any]:
        """Create a simulated TorBox account."""
        result: dict[str, Any] = await self.sim("POST", "/_sim/accounts", json=spec)
        return result

    async def register(self, key: str) -> dict[str, Any]:
        """ensure-db through the gateway (expects success)."""
        status, body, _ = await self.gw("POST", "/api/backend/api-key/ensure-db", key=key)
        assert status == 200, (status, body)
        result: dict[str, Any] = body
        return result


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 20.0,
    interval: float = 0.2,
    what: str = "",
) -> Any:
    """Retry `check` until it returns a truthy value (and return it), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or 'a condition'}; last value: {last!r}")
