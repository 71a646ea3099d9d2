"""Run the scheduler: `python -m scheduler_svc` (settings from the environment)."""

from __future__ import annotations

import asyncio
import os
import sys

from common import logs
from common.grpc_server import stop_event
from common.settings import SettingsError
from scheduler_svc.app import SchedulerApp
from scheduler_svc.config import SchedulerSettings


async def main() -> None:
    """Start, serve until SIGTERM/SIGINT, then stop gracefully."""
    settings = SchedulerSettings.from_env(os.environ)
    logs.configure("scheduler", fmt=settings.log_format, level=settings.log_level)
    app = SchedulerApp(settings)
    stop = stop_event()
    try:
        await app.start()
        await stop.wait()
    finally:
        await app.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except SettingsError as error:
        print(f"scheduler: {error}", file=sys.stderr)  # noqa: T201 - before logging exists
        sys.exit(2)
