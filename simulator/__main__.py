"""Command line entry point: `python -m simulator` serves the simulated API until signalled."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from simulator.app import create_app
from simulator.config import SimConfig, parse_args

log = logging.getLogger("simulator")


async def serve(config: SimConfig) -> None:
    """Listen, announce the port on stdout, and run until SIGTERM or SIGINT."""
    runner = web.AppRunner(
        create_app(config),
        # Per-request access logs would cost more than serving mylist itself.
        access_log=None,
        # A client that gives up on a hanging `timeout` fault frees its handler at once.
        handler_cancellation=True,
        shutdown_timeout=5.0,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        # The one line on stdout: launchers read it to learn the port (useful with --port 0).
        sys.stdout.write(f"SIMULATOR_READY port={port}\n")
        sys.stdout.flush()
        log.info(
            "simulated TorBox on http://%s:%d (seed %d, time scale %g, cache %gs, limit %d/min)",
            config.host,
            port,
            config.seed,
            config.time_scale,
            config.cache_seconds,
            config.rate_limit_per_minute,
        )
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags and environment, then serve; returns the process exit code."""
    config = parse_args(sys.argv[1:] if argv is None else argv, os.environ)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
