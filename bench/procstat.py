"""CPU time and memory of a process, read from /proc (Linux), for any pid including our own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024.0 * 1024.0


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading: CPU seconds used so far, resident memory now and at its peak (bytes)."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int


def sample(pid: int | None = None) -> ProcSample:
    """Read /proc/<pid>/stat and /proc/<pid>/status (our own process by default)."""
    base = Path("/proc") / str(pid if pid is not None else os.getpid())
    stat = (base / "stat").read_text()
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)
    rss = peak = 0
    for line in (base / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return ProcSample(cpu, rss, peak)


def cpu_share(before: ProcSample, after: ProcSample, wall_seconds: float) -> float:
    """Share of one core used between two readings (1.0 is one full core)."""
    if wall_seconds <= 0:
        return 0.0
    return (after.cpu_seconds - before.cpu_seconds) / wall_seconds
