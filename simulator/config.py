"""The simulator's settings: one frozen value read from the environment and the command line."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes one simulator process; every field has a sensible default."""

    host: str = "127.0.0.1"
    port: int = 8090
    seed: int = 1
    # Simulated seconds of torrent life per real second; 0 freezes life for hand-driven tests.
    time_scale: float = 1.0
    # How stale mylist may be when the caller does not ask for bypass_cache.
    cache_seconds: float = 60.0
    # Per key and per endpoint, like TorBox; 0 switches the limiter off.
    rate_limit_per_minute: int = 300
    # The longest a `timeout` fault keeps a request hanging.
    max_hang_seconds: float = 120.0
    # Successful uncached creates per key and type within the window (TorBox: 60 an hour);
    # tests compress the window. 0 switches the budget off.
    uncached_per_hour: int = 60
    uncached_window_seconds: float = 3600.0
    # Whether the budget's 429 carries x-ratelimit-* and retry-after (TorBox's often does not).
    uncached_429_headers: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0..65535, got {self.port}")
        if self.time_scale < 0:
            problems.append(f"time scale must be >= 0, got {self.time_scale}")
        if self.cache_seconds < 0:
            problems.append(f"cache seconds must be >= 0, got {self.cache_seconds}")
        if self.rate_limit_per_minute < 0:
            problems.append(f"rate limit must be >= 0, got {self.rate_limit_per_minute}")
        if self.uncached_per_hour < 0 or self.uncached_window_seconds <= 0:
            problems.append("the uncached budget must be >= 0 per a window > 0 seconds")
        if self.max_hang_seconds <= 0:
            problems.append(f"max hang seconds must be > 0, got {self.max_hang_seconds}")
        if problems:
            raise ValueError("; ".join(problems))


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> SimConfig:
    """Build the configuration from flags, falling back to SIM_* variables, then defaults."""
    defaults = SimConfig()
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Run the simulated TorBox API."
    )

    def env(name: str, fallback: object) -> str:
        # argparse applies `type` to string defaults, so environment values get the same checks.
        value = environ.get(name, "").strip()
        return value or str(fallback)

    parser.add_argument(
        "--host", default=env("SIM_HOST", defaults.host), help="address to bind (SIM_HOST)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env("SIM_PORT", defaults.port),
        help="port; 0 picks a free one, announced on stdout (SIM_PORT)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=env("SIM_SEED", defaults.seed),
        help="seed for every generated key, torrent and rate (SIM_SEED)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=env("SIM_TIME_SCALE", defaults.time_scale),
        help="simulated seconds of torrent life per real second; 0 freezes (SIM_TIME_SCALE)",
    )
    parser.add_argument(
        "--cache-seconds",
        type=float,
        default=env("SIM_CACHE_SECONDS", defaults.cache_seconds),
        help="staleness of mylist without bypass_cache (SIM_CACHE_SECONDS)",
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        default=env("SIM_RATE_LIMIT_PER_MINUTE", defaults.rate_limit_per_minute),
        help="requests per key and endpoint per minute; 0 disables (SIM_RATE_LIMIT_PER_MINUTE)",
    )
    parser.add_argument(
        "--uncached-per-hour",
        type=int,
        default=env("SIM_UNCACHED_PER_HOUR", defaults.uncached_per_hour),
        help="uncached creates per key and type per window; 0 disables (SIM_UNCACHED_PER_HOUR)",
    )
    parser.add_argument(
        "--uncached-window-seconds",
        type=float,
        default=env("SIM_UNCACHED_WINDOW_SECONDS", defaults.uncached_window_seconds),
        help="the uncached budget's window, 3600 as TorBox (SIM_UNCACHED_WINDOW_SECONDS)",
    )
    parser.add_argument(
        "--uncached-429-headers",
        action="store_true",
        default=environ.get("SIM_UNCACHED_429_HEADERS", "") in ("1", "true"),
        help="send rate-limit headers with the budget's 429 (SIM_UNCACHED_429_HEADERS)",
    )
    args = parser.parse_args(list(argv))
    try:
        return SimConfig(
            host=args.host,
            port=args.port,
            seed=args.seed,
            time_scale=args.time_scale,
            cache_seconds=args.cache_seconds,
            rate_limit_per_minute=args.rate_limit_per_minute,
            uncached_per_hour=args.uncached_per_hour,
            uncached_window_seconds=args.uncached_window_seconds,
            uncached_429_headers=args.uncached_429_headers,
        )
    except ValueError as exc:
        parser.error(str(exc))
