"""Run the userstore: `python -m userstore_svc` (settings from the environment)."""

from __future__ import annotations

import asyncio
import os
import sys

from common import logs
from common.grpc_server import stop_event
from common.settings import SettingsError
from userstore_svc.app import UserstoreApp
from userstore_svc.config import UserstoreSettings


async def main() -> None:
    """Start, serve until SIGTERM/SIGINT, then stop gracefully."""
    settings = UserstoreSettings.from_env(os.environ)
    logs.configure("userstore", fmt=settings.log_format, level=settings.log_level)
    app = UserstoreApp(settings)
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
        print(f"userstore: {error}", file=sys.stderr)  # noqa: T201 - before logging exists
        sys.exit(2)
