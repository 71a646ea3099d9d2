"""`python -m bench --quick | --full`: run the benchmarks, print the figures, record them.

A complete run writes ``docs/bench-results/<mode>.json`` and rewrites the ``<mode>`` section of
``docs/benchmarks.md``; a partial run (``--only``) and the toy mode only print, unless ``--json``
names a file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import machine, report
from bench.profile import Profiler
from bench.suite import BENCHMARKS, MODES, run_suite

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        help="about ten minutes (the default)",
    )
    mode.add_argument(
        "--full",
        action="store_const",
        dest="mode",
        const="full",
        help="an hour or more, the sizes the targets are about",
    )
    mode.add_argument(
        "--toy",
        action="store_const",
        dest="mode",
        const="toy",
        help="tiny sizes: proves the harness runs (figures mean nothing)",
    )
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)}",
    )
    parser.add_argument("--runs", type=int, help="repetitions per figure (default by mode)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the SQLite files go (default: a new temporary directory)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also profile the service processes with py-spy (if installed) into DIR",
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (py-spy --gil)",
    )
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument(
        "--offered-factor",
        type=float,
        help="full stack: offered load as a multiple of the target (default 2)",
    )
    parser.add_argument(
        "--concurrency", type=int, help="snapshots in flight / MAX_CONCURRENT_POLLS (default 64)"
    )
    args = parser.parse_args(list(argv))
    for name in ("runs", "concurrency"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.offered_factor is not None and args.offered_factor <= 0:
        parser.error("--offered-factor must be more than 0")
    args.mode = args.mode or "quick"
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return args


async def _stoppable(suite: Coroutine[Any, Any, T]) -> T:
    """Run the suite; a SIGTERM cancels it like Ctrl-C does, so its `finally` blocks stop the
    services (they run in their own sessions, out of reach of the terminal's signals)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await suite


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, record; returns the exit code."""
    args = parse(sys.argv[1:] if argv is None else argv)
    sizes = MODES[args.mode]
    changes = {
        "runs": args.runs,
        "offered_factor": args.offered_factor,
        "concurrency": args.concurrency,
    }
    sizes = dataclasses.replace(sizes, **{k: v for k, v in changes.items() if v is not None})
    complete = set(args.only) == set(BENCHMARKS) and args.mode != "toy"
    json_path = args.json or (
        ROOT / "docs" / "bench-results" / f"{args.mode}.json" if complete else None
    )

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="torbox-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    facts = machine.facts(data_dir)
    print(f"benchmarks ({args.mode}): {', '.join(args.only)}; data in {data_dir}")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    profiler = Profiler(args.profile, gil=args.profile_gil)
    if args.profile is not None and not profiler.enabled:
        print("py-spy not found: profiling skipped (pip install py-spy to enable it)")
    started = time.monotonic()
    try:
        raw = asyncio.run(
            _stoppable(
                run_suite(
                    sizes,
                    data_dir,
                    only=args.only,
                    profiler=profiler,
                    progress=lambda text: print(
                        f"[{time.monotonic() - started:6.1f}s] {text}", flush=True
                    ),
                )
            )
        )
    except asyncio.CancelledError:
        print("stopped by SIGTERM; the services it started are stopped", file=sys.stderr)
        return 143
    finally:
        if not args.keep_data and args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    seconds = time.monotonic() - started
    items = report.figures(raw)
    print(report.table(items))
    print(f"\n{len(items)} figures in {seconds:.0f} s")
    meta = {
        "mode": args.mode,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "seconds": seconds,
        "machine": facts,
        "sizes": dataclasses.asdict(sizes),
        "json": str(json_path.relative_to(ROOT))
        if json_path and json_path.is_relative_to(ROOT)
        else str(json_path),
    }
    for summary in profiler.summaries:
        print(f"profile: {summary}")
    if json_path is not None:
        report.write_json(json_path, items, raw, meta)
        print(f"results written to {json_path}")
    if complete and not args.no_docs:
        if report.update_docs(DOCS, args.mode, report.markdown(items, meta)):
            print(f"{DOCS.relative_to(ROOT)} updated (section '{args.mode}')")
        else:
            print(f"{DOCS} has no '{args.mode}' section markers; left alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
