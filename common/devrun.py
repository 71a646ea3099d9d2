"""`make run`: the userstore, scheduler and gateway together in the foreground; Ctrl-C stops all.

Settings come from the environment as for each service alone (see the README); logs default to
readable text here. Services start in dependency order and stop in reverse, each with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import sys

from common.grpc_server import wait_for_signal
from common.processes import ManagedProcess

ORDER = (("userstore", "userstore_svc"), ("scheduler", "scheduler_svc"), ("gateway", "gateway"))


def _echo(name: str, line: str) -> None:
    sys.stdout.write(f"{name:>9} | {line}\n")
    sys.stdout.flush()


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
