"""Starting the project's programs as real child processes and stopping them cleanly.

Used by `make run`, `make demo`, the end-to-end tests and the benchmarks: each service logs a
"... serving" line with its bound port at INFO (so ``LOG_LEVEL`` must stay at info or debug here;
the simulator prints ``SIMULATOR_READY port=N``), and everything can run on ports the OS picks
(``*_PORT=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping

_PORT_TEXT = re.compile(r"\bport=(\d+)")


def ready_port(line: str) -> int | None:
    """The port announced by a readiness line, or None for any other line."""
    if line.startswith("SIMULATOR_READY"):
        match = _PORT_TEXT.search(line)
        return int(match.group(1)) if match else None
    if "serving" not in line:
        return None
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return None
        message = str(record.get("message", ""))
        port = record.get("port")
        if message.endswith(" serving") and isinstance(port, int):
            return port
        return None
    match = _PORT_TEXT.search(line)
    return int(match.group(1)) if match and " serving" in line else None


class ManagedProcess:
    """One child program started with `python -m <module>`; its output is kept (and maybe shown)."""

    def __init__(
        self,
        name: str,
        module: str,
        env: Mapping[str, str],
        *,
        echo: Callable[[str, str], None] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.module = module
        self.env = dict(env)
        self.args = args
        self.echo = echo
        self.lines: list[str] = []
        self.port: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[int] | None = None

    async def start(self, timeout: float = 60.0) -> int:
        """Start and wait for the readiness line; returns the bound port."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            self.port = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            self._ready.cancel()
            await self.kill()
            raise RuntimeError(
                f"{self.name} did not become ready:\n" + "\n".join(self.lines[-30:])
            ) from None
        return self.port

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while True:
            raw = await self.process.stdout.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.echo is not None:
                self.echo(self.name, line)
            if self._ready is not None and not self._ready.done():
                port = ready_port(line)
                if port is not None:
                    self._ready.set_result(port)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(RuntimeError(f"{self.name} exited before it was ready"))

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process is not None and self.process.returncode is None

    async def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int:
        """Send SIGTERM (or `sig`) and wait for the exit code (SIGKILL after `timeout`)."""
        if self.process is None:
            return 0
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return self.process.returncode if self.process.returncode is not None else -9

    async def kill(self) -> None:
        """SIGKILL the process (a crash, as far as the program can tell)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    def output(self) -> str:
        """Everything the process printed so far."""
        return "\n".join(self.lines)
