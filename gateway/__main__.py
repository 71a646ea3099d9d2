"""Run the gateway: `python -m gateway` (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from common import logs
from common.settings import SettingsError
from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.server import GuardedAppRunner, guard_aiohttp_logs

log = logging.getLogger("gateway")


async def serve(settings: GatewaySettings) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get the grace period to finish."""
    # Handlers go in before the "serving" line: whoever waits for that line may signal at once.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = GuardedAppRunner(
        create_app(settings),
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        # aiohttp's keep-alive timer runs while a connection waits for a complete request head
        # (from the connection's start or the previous answer's end; bytes trickling in do not
        # extend it), so it is the header read timeout as well as the idle timeout.
        keepalive_timeout=settings.header_timeout_seconds,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.bind_host, settings.port)
        await site.start()
        port = runner.addresses[0][1]
        log.info("gateway serving", extra={"port": port})
        await stop.wait()
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("gateway stopped")


def main() -> None:
    """Parse settings (failing fast), set up logging, serve."""
    try:
        settings = GatewaySettings.from_env(os.environ)
    except SettingsError as error:
        print(f"gateway: {error}", file=sys.stderr)  # noqa: T201 - before logging exists
        sys.exit(2)
    logs.configure("gateway", fmt=settings.log_format, level=settings.log_level)
    guard_aiohttp_logs()
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
