"""Reads settings from the environment once, collecting every bad variable before failing."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """One or more environment variables are invalid; the message names every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings: " + "; ".join(problems))


class EnvReader:
    """Typed accessors over an environment mapping that record problems instead of raising.

    Call :meth:`finish` after reading everything: it raises one :class:`SettingsError` naming
    every bad variable, so an operator fixes them all in one go.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], what: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError):
            self._problems.append(f"{name}={raw!r} is not {what}")
            return default

    def problem(self, message: str) -> None:
        """Record a cross-field problem found after reading."""
        self._problems.append(message)

    def string(self, name: str, default: str) -> str:
        """A free-text value."""
        raw = self._raw(name)
        return default if raw is None else raw

    def optional_string(self, name: str) -> str | None:
        """A free-text value that may be absent."""
        return self._raw(name)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of a fixed set of words (case-insensitive)."""
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() not in choices:
            self._problems.append(f"{name}={raw!r} is not one of {', '.join(choices)}")
            return default
        return raw.lower()

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        """A whole number, optionally bounded below."""
        value = self._parse(name, default, int, "a whole number")
        if minimum is not None and value < minimum:
            self._problems.append(f"{name}={value} must be at least {minimum}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        """A decimal number, optionally bounded below."""
        value = self._parse(name, default, float, "a number")
        if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
            self._problems.append(f"{name} must be a finite number")
            return default
        if minimum is not None and value < minimum:
            self._problems.append(f"{name}={value:g} must be at least {minimum:g}")
            return default
        return value

    def port(self, name: str, default: int) -> int:
        """A TCP port (0 asks the OS for a free one)."""
        value = self.integer(name, default, minimum=0)
        if value > 65535:
            self._problems.append(f"{name}={value} is not a TCP port")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """true/false, yes/no, on/off or 1/0."""
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self._problems.append(f"{name}={raw!r} is not a boolean (true/false)")
        return default

    def path(self, name: str, default: str) -> Path:
        """A filesystem path (not required to exist yet)."""
        return Path(self.string(name, default))

    def address_list(self, name: str, default: str) -> tuple[str, ...]:
        """A comma-separated list of host:port addresses."""
        raw = self.string(name, default)
        items = tuple(part.strip() for part in raw.split(",") if part.strip())
        bad = [item for item in items if not _is_address(item)]
        if not items or bad:
            self._problems.append(f"{name}={raw!r} must be a comma list of host:port")
            return tuple(part.strip() for part in default.split(","))
        if len(set(items)) != len(items):
            self._problems.append(f"{name} lists the same address twice")
        return items

    def address(self, name: str, default: str) -> str:
        """One host:port address."""
        raw = self.string(name, default)
        if not _is_address(raw):
            self._problems.append(f"{name}={raw!r} is not host:port")
            return default
        return raw

    def string_list(self, name: str, default: str) -> tuple[str, ...]:
        """A comma-separated list of words."""
        raw = self.string(name, default)
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def key32(self, name: str) -> bytes | None:
        """Base64 of exactly 32 bytes (an AES-256 key), or None when unset."""
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            self._problems.append(f"{name} is not valid base64")
            return None
        if len(key) != 32:
            self._problems.append(f"{name} must decode to 32 bytes, not {len(key)}")
            return None
        return key

    def finish(self) -> None:
        """Raise one error naming every problem recorded so far."""
        if self._problems:
            raise SettingsError(self._problems)


def _is_address(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)
