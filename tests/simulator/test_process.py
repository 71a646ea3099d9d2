"""The simulator as a separate process: `python -m simulator`, the ready line, and SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest


@pytest.mark.e2e
async def test_runs_as_a_process_and_stops_cleanly_on_sigterm() -> None:
    """With --port 0 it prints SIMULATOR_READY and the port, serves HTTP, and exits 0 on SIGTERM."""
    env = {**os.environ, "SIM_TIME_SCALE": "0", "SIM_SEED": "3"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("SIMULATOR_READY port=")
        port = int(line.strip().split("=", 1)[1])
        assert port > 0
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/_sim/accounts", json={"mix": {"seeding": 2}}) as reply:
                key = (await reply.json())["api_key"]
            headers = {"Authorization": f"Bearer {key}"}
            params = {"bypass_cache": "true"}
            async with session.get(
                f"{base}/v1/api/torrents/mylist", headers=headers, params=params
            ) as reply:
                assert reply.status == 200
                assert len((await reply.json())["data"]) == 2
            async with session.get(f"{base}/_sim/clock") as reply:
                assert (await reply.json())["time_scale"] == 0.0
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = await process.stdout.read()
        assert rest == b"", "only the ready line goes to stdout"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
