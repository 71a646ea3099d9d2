"""Logging shared by the services: JSON or text lines, each with the service and request id."""

from __future__ import annotations

import contextvars
import logging
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def new_request_id() -> str:
    """A short random id for one request or one poll."""
    return uuid.uuid4().hex[:16]


class _ContextFilter(logging.Filter):
    """Stamps every record with the service name and the current request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = request_id.get()
        return True


_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "service", "request_id"}
)


class _TextFormatter(logging.Formatter):
    """Readable lines that still show the structured fields (``key=value``) after the message."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items() if key not in _STANDARD
        )
        return f"{line} {extras}" if extras else line


def configure(service: str, *, fmt: str = "json", level: str = "INFO") -> None:
    """Send the root logger to stdout as JSON lines (or readable text) once per process."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s",
                rename_fields={"asctime": "timestamp", "levelname": "severity", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(
            _TextFormatter(
                "%(asctime)s %(levelname)-7s %(service)s %(name)s [%(request_id)s] %(message)s"
            )
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log every request at INFO drown the service's own lines.
    for noisy in ("aiohttp.access", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick skipped because the user's poll is still running is coalescing at work, not a
    # problem; the scheduler counts them (polls_skipped) instead.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
