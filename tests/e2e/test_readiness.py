"""Ready means the whole path works: /health, and requests that arrive while services start."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from common.processes import ManagedProcess
from tests.e2e.stack import Stack, eventually

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_the_gateway_is_ready_only_when_its_services_are_and_early_requests_wait(
    tmp_path: Path,
) -> None:
    """Gateway first: /health is 503 naming what is missing, liveness is 200; an ensure-db sent
    then waits for the services and succeeds; once /health is 200 an ensure-db succeeds at once.
    """
    stack = Stack(tmp_path, env={"ENSURE_TIMEOUT_SECONDS": "20"})
    stack.http = aiohttp.ClientSession()
    try:
        stack.simulator = ManagedProcess(
            "simulator", "simulator", {}, args=("--port", "0", "--time-scale", "0")
        )
        stack.sim_url = f"http://127.0.0.1:{await stack.simulator.start()}"
        store_port, scheduler_port = _free_port(), _free_port()
        stack.gateway = ManagedProcess(
            "gateway",
            "gateway",
            {
                **stack.env,
                "PORT": "0",
                "USERSTORE_ADDRS": f"127.0.0.1:{store_port}",
                "SCHEDULER_ADDR": f"127.0.0.1:{scheduler_port}",
            },
        )
        stack.gw_url = f"http://127.0.0.1:{await stack.gateway.start()}"
        status, body, _ = await stack.gw("GET", "/health")
        assert status == 503, (status, body)
        assert body["status"] == "unhealthy"
        assert len(body["notReady"]) == 2
        assert (await stack.gw("GET", "/live"))[0] == 200

        early = await stack.account(mix={"seeding": 1})
        await stack.start_userstore(0, store_port)
        # Sent while the scheduler is not started yet: it waits (briefly) instead of failing.
        ensure = asyncio.ensure_future(
            stack.gw("POST", "/api/backend/api-key/ensure-db", key=early["api_key"])
        )
        await asyncio.sleep(0.3)
        assert not ensure.done(), "a request during start-up failed instead of waiting"
        await stack.start_scheduler(0, scheduler_port)
        status, body, _ = await ensure
        assert status == 200, (status, body)

        # The moment /health says ready, a first request works.
        late = await stack.account(mix={"seeding": 1})
        await stack.scheduler_procs[0].stop()
        restarted = asyncio.ensure_future(stack.start_scheduler(0, scheduler_port))

        async def ready() -> bool:
            return (await stack.gw("GET", "/health"))[0] == 200

        await eventually(ready, timeout=60, interval=0.05, what="the gateway ready again")
        status, body, _ = await stack.gw(
            "POST", "/api/backend/api-key/ensure-db", key=late["api_key"]
        )
        assert status == 200, (status, body)
        await restarted
    finally:
        await stack.stop()
