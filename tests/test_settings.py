"""Settings: every service fails fast naming every bad variable, and the README lists them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.settings import SettingsError
from gateway.config import GatewaySettings
from scheduler_svc.config import SchedulerSettings
from userstore_svc.config import UserstoreSettings

README = Path(__file__).resolve().parent.parent / "README.md"
SettingsClass = type[UserstoreSettings] | type[SchedulerSettings] | type[GatewaySettings]
SERVICES: tuple[SettingsClass, ...] = (UserstoreSettings, SchedulerSettings, GatewaySettings)


class _Recording(dict[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.append(key)
        return super().get(key, default)


def _names_read(settings_class: SettingsClass) -> list[str]:
    """The variables a service reads."""
    environ = _Recording()
    settings_class.from_env(environ)
    return environ.asked


@pytest.mark.parametrize("settings_class", SERVICES)
def test_defaults_parse(settings_class: SettingsClass) -> None:
    """With an empty environment every service starts on its documented defaults."""
    settings = settings_class.from_env({})
    assert settings.log_format == "json"


@pytest.mark.parametrize("settings_class", SERVICES)
def test_every_setting_is_in_the_readme(settings_class: SettingsClass) -> None:
    """Each variable a service reads has a row in the README's settings table."""
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(), re.MULTILINE))
    missing = sorted(set(_names_read(settings_class)) - documented)
    assert missing == []


def test_every_bad_variable_is_named_at_once() -> None:
    """Several bad values produce one error that names each of them."""
    with pytest.raises(SettingsError) as raised:
        SchedulerSettings.from_env(
            {
                "SCHEDULER_PORT": "seventy",
                "POLL_INTERVAL_SECONDS": "-5",
                "ENCRYPTION_KEY": "not base64!",
                "USERSTORE_ADDRS": "nohostport",
                "DRY_RUN": "maybe",
                "SCHEDULER_INDEX": "3",
            }
        )
    message = str(raised.value)
    for name in (
        "SCHEDULER_PORT",
        "POLL_INTERVAL_SECONDS",
        "ENCRYPTION_KEY",
        "USERSTORE_ADDRS",
        "DRY_RUN",
        "SCHEDULER_INDEX",
    ):
        assert name in message
    assert len(raised.value.problems) == 6


def test_key_must_be_32_bytes() -> None:
    """ENCRYPTION_KEY must decode to exactly 32 bytes."""
    with pytest.raises(SettingsError, match="32 bytes"):
        SchedulerSettings.from_env({"ENCRYPTION_KEY": "AAAA"})


def test_gateway_rejects_a_bad_origin() -> None:
    """A FRONTEND_URL entry that is not an origin is named."""
    with pytest.raises(SettingsError, match="FRONTEND_URL"):
        GatewaySettings.from_env({"FRONTEND_URL": "localhost:3000"})


def test_open_and_cached_databases_are_bounded_apart() -> None:
    """Open files and users cached in memory are two bounds, each at least 1 and named if bad."""
    settings = UserstoreSettings.from_env({"MAX_OPEN_DBS": "300", "MAX_CACHED_USERS": "20"})
    assert (settings.max_open_dbs, settings.max_cached_users) == (300, 20)
    defaults = UserstoreSettings.from_env({})
    assert defaults.max_cached_users < defaults.max_open_dbs
    with pytest.raises(SettingsError) as raised:
        UserstoreSettings.from_env({"MAX_OPEN_DBS": "0", "MAX_CACHED_USERS": "none"})
    assert "MAX_OPEN_DBS" in str(raised.value)
    assert "MAX_CACHED_USERS" in str(raised.value)
