"""`make run`: the userstore, scheduler and gateway together in the foreground; Ctrl-C stops all.

Settings come from the environment as for each service alone (see the README); logs default to
readable text here. Services start in dependency order and stop in reverse, each with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp

from common.grpc_server import wait_for_signal
from common.processes import ManagedProcess

READY_TIMEOUT_SECONDS = 60.0
ORDER = (("userstore", "userstore_svc"), ("scheduler", "scheduler_svc"), ("gateway", "gateway"))


def _echo(name: str, line: str) -> None:
    sys.stdout.write(f"{name:>9} | {line}\n")
    sys.stdout.flush()


async def wait_ready(port: int | None, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until the gateway's /health answers 200 (RuntimeError after `timeout`)."""
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}: {await response.text()}"
            except (aiohttp.ClientError, TimeoutError) as error:
                last = str(error) or type(error).__name__
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the services did not become ready within {timeout:.0f} s ({last})")


async def main() -> int:
    """Start everything, wait for Ctrl-C or SIGTERM, stop everything; 0 when all exit cleanly."""
    env = {"LOG_FORMAT": os.environ.get("LOG_FORMAT", "text")}
    started: list[ManagedProcess] = []
    code = 0
    try:
        for name, module in ORDER:
            process = ManagedProcess(name, module, env, echo=_echo)
            started.append(process)
            await process.start()
        # "Up" means requests work: the gateway's /health says every service behind it is ready.
        await wait_ready(started[-1].port)
        _echo("run", "all three services are up; Ctrl-C stops them")
        await wait_for_signal()
    except RuntimeError as error:
        _echo("run", str(error))
        code = 1
    finally:
        for process in reversed(started):
            exit_code = await process.stop()
            if exit_code != 0:
                code = code or exit_code
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
