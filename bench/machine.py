"""Facts about the machine a benchmark ran on, printed and stored beside every figure."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str:
    """The filesystem type and device under `path` (from df), or 'unknown'."""
    try:
        out = subprocess.run(
            ["df", "-PT", str(path)], capture_output=True, text=True, timeout=10, check=True
        ).stdout.splitlines()
        device, fstype = out[-1].split()[:2]
        return f"{fstype} on {device}"
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return "unknown"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def facts(data_dir: Path) -> dict[str, Any]:
    """CPU, memory, Python, SQLite and the disk the benchmark's databases live on."""
    usage = shutil.disk_usage(data_dir)
    memory = _memory_bytes()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1) if memory else None,
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "data_dir": str(data_dir),
        "disk": _filesystem(data_dir),
        "disk_free_gib": round(usage.free / 2**30, 1),
        "load_average_at_start": _load(),
    }
