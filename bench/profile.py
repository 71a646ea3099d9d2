"""Optional sampling profiles of the benchmark's processes with py-spy (``--profile DIR``).

py-spy is not a dependency: without it the benchmarks run as usual and say profiling was
skipped. Profiles are taken while a benchmark measures, so figures from a profiled run are a
little lower; use them to see where the time goes, not as results. Each profile is kept in
py-spy's raw (collapsed stack) format, and a summary of the hottest functions is written beside
it, with frames where a thread only waits (idle worker threads, the event loop's poll) left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

# Leaf frames where a thread waits rather than works (py-spy cannot always tell on its own).
IDLE_LEAVES = (
    "_connection_worker_thread (aiosqlite/core.py:59)",  # tx.get(): an idle SQLite thread
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "EpollSelector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
)
# A thread whose target is native code (gRPC's completion-queue poller) shows no Python frame
# below Thread.run: it mostly waits in C, and py-spy cannot tell when. Counted apart.
NATIVE_LEAVES = ("Thread.run (threading.py",)


def py_spy() -> str | None:
    """The py-spy executable (beside this Python first, then on PATH), or None."""
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


class Recording:
    """One py-spy process sampling one pid until :meth:`stop`."""

    def __init__(self, process: asyncio.subprocess.Process, output: Path) -> None:
        self.process = process
        self.output = output

    async def stop(self) -> Path | None:
        """Stop sampling, write the summary; returns the summary's path (None if no profile)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if not self.output.exists():
            return None
        summary = self.output.with_suffix(".summary.txt")
        summary.write_text(summarize(self.output))
        return summary


class Profiler:
    """Starts recordings into a directory; does nothing when no directory or no py-spy."""

    def __init__(self, directory: Path | None, rate: int = 100, *, gil: bool = False) -> None:
        self.directory = directory
        self.rate = rate
        # Only the thread holding the GIL: what bounds a Python process's throughput.
        self.gil = gil
        self.executable = py_spy() if directory is not None else None
        self.summaries: list[Path] = []

    @property
    def enabled(self) -> bool:
        """Whether recordings will be made."""
        return self.directory is not None and self.executable is not None

    async def start(self, name: str, pid: int) -> Recording | None:
        """Begin sampling `pid` into ``<directory>/<name>.txt``."""
        if self.directory is None or self.executable is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        output = self.directory / f"{name}.txt"
        process = await asyncio.create_subprocess_exec(
            self.executable,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(self.rate),
            "--format",
            "raw",
            "--output",
            str(output),
            *(["--gil"] if self.gil else []),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return Recording(process, output)

    async def stop(self, recordings: list[Recording | None]) -> None:
        """Stop recordings and remember their summaries."""
        for recording in recordings:
            if recording is not None:
                summary = await recording.stop()
                if summary is not None:
                    self.summaries.append(summary)


def _short(frame: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (module.py)'."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})"


def summarize(path: Path, top: int = 40) -> str:
    """The hottest functions of a raw py-spy profile: inclusive and self shares of busy samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = native = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if any(frames[-1].startswith(leaf) for leaf in IDLE_LEAVES):
            idle += count
            continue
        if any(frames[-1].startswith(leaf) for leaf in NATIVE_LEAVES):
            native += count
            continue
        busy += count
        for name in {_short(f) for f in frames[1:]}:
            inclusive[name] += count
        own[_short(frames[-1])] += count
    lines = [
        f"{path.name}: {busy} busy samples (left out: {idle} idle, "
        f"{native} in threads running native code)",
        "",
    ]
    if busy:
        lines.append("inclusive (the function or anything it calls):")
        lines += [f"  {100 * n / busy:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
        lines += ["", "self (the function's own code):"]
        lines += [f"  {100 * n / busy:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"
