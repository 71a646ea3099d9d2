"""Configuration from flags and SIM_* environment variables."""

from __future__ import annotations

import pytest

from simulator.config import SimConfig, parse_args


def test_defaults_without_flags_or_environment() -> None:
    """With nothing set, every documented default applies."""
    config = parse_args([], {})
    assert config == SimConfig()
    assert (config.host, config.port, config.seed) == ("127.0.0.1", 8090, 1)
    assert (config.time_scale, config.cache_seconds, config.rate_limit_per_minute) == (
        1.0,
        60.0,
        300,
    )


def test_environment_variables_are_read() -> None:
    """Each SIM_* variable sets its field."""
    environ = {
        "SIM_HOST": "0.0.0.0",
        "SIM_PORT": "0",
        "SIM_SEED": "42",
        "SIM_TIME_SCALE": "10",
        "SIM_CACHE_SECONDS": "5",
        "SIM_RATE_LIMIT_PER_MINUTE": "0",
    }
    config = parse_args([], environ)
    assert config == SimConfig(
        host="0.0.0.0", port=0, seed=42, time_scale=10.0, cache_seconds=5.0, rate_limit_per_minute=0
    )


def test_flags_win_over_environment() -> None:
    """A flag overrides the matching environment variable."""
    config = parse_args(["--port", "9000", "--time-scale", "0"], {"SIM_PORT": "1234"})
    assert (config.port, config.time_scale) == (9000, 0.0)


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--port", "70000"], {}),
        (["--time-scale", "-1"], {}),
        ([], {"SIM_SEED": "abc"}),
        ([], {"SIM_RATE_LIMIT_PER_MINUTE": "-5"}),
    ],
)
def test_invalid_values_exit_with_usage_error(argv: list[str], environ: dict[str, str]) -> None:
    """Out-of-range or unparsable values stop the program with argparse's exit code 2."""
    with pytest.raises(SystemExit) as exc:
        parse_args(argv, environ)
    assert exc.value.code == 2
