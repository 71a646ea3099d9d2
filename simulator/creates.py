"""TorBox's hourly uncached-create budget, and the usenet and web-download create endpoints.

Every create counts against the per-minute limiter like any endpoint; an uncached one (the
content is not in the cache) also spends one of `uncached_per_hour` per key and type within a
rolling window. A success spending it answers the uncached envelope's headers (limit 60); an
exhausted budget answers TorBox's bare 429 ``{"detail": "60 per 1 hour"}``, by default without
headers, as TorBox often sends it. Usenet and web downloads are kept as small records: enough to
answer creates, duplicates and their mylists.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulator.responses import envelope, failure, json_response, rate_limit_headers

KINDS = ("torrent", "usenet", "webdl")


@dataclass(slots=True)
class Budget:
    """One key's rolling windows of successful uncached creates, per type."""

    per_window: int
    window_seconds: float
    spent: dict[str, deque[float]] = field(default_factory=dict)

    def _live(self, kind: str, now: float) -> deque[float]:
        stamps = self.spent.setdefault(kind, deque())
        while stamps and stamps[0] <= now - self.window_seconds:
            stamps.popleft()
        return stamps

    def reset_in(self, kind: str, now: float) -> float:
        """Seconds until the oldest spend leaves the window (the window when none is spent)."""
        stamps = self._live(kind, now)
        return stamps[0] + self.window_seconds - now if stamps else self.window_seconds

    def exhausted(self, kind: str, now: float) -> bool:
        """Whether the next uncached create of this type is refused."""
        return self.per_window > 0 and len(self._live(kind, now)) >= self.per_window

    def spend(self, kind: str, now: float) -> dict[str, str]:
        """Record one uncached create; the uncached envelope's headers after it (none when off)."""
        if self.per_window <= 0:
            return {}
        stamps = self._live(kind, now)
        stamps.append(now)
        remaining = max(0, self.per_window - len(stamps))
        return dict(rate_limit_headers(self.per_window, remaining, self.reset_in(kind, now)))


def over_budget(budget: Budget, kind: str, with_headers: bool) -> web.Response:
    """TorBox's 429 for the hourly uncached limit (a bare FastAPI body)."""
    response = json_response({"detail": f"{budget.per_window} per 1 hour"}, 429)
    if with_headers:
        reset = budget.reset_in(kind, time.monotonic())
        response.headers.update(rate_limit_headers(budget.per_window, 0, reset))
        response.headers["retry-after"] = str(max(1, math.ceil(reset)))
    return response


@dataclass(slots=True)
class Download:
    """A usenet or web download as its mylist shows it."""

    id: int
    name: str
    hash: str
    auth_id: str
    created_at: float
    queued: bool
    # What the create's password field carried (the admin view shows it, mylist never does).
    password: str | None = None

    def render(self) -> dict[str, Any]:
        """The mylist item (the fields a client reads)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at))
        return {
            "id": self.id,
            "name": self.name,
            "hash": self.hash,
            "auth_id": self.auth_id,
            "created_at": stamp,
            "download_state": "queued" if self.queued else "downloading",
            "active": not self.queued,
        }


@dataclass(slots=True)
class Downloads:
    """One account's usenet and web downloads, by type, with their identities."""

    items: dict[str, dict[int, Download]] = field(
        default_factory=lambda: {"usenet": {}, "webdl": {}}
    )
    by_hash: dict[str, int] = field(default_factory=dict)


def identity(content: bytes) -> str:
    """What makes two creates the same download (TorBox hashes the NZB or the link)."""
    return hashlib.sha1(content).hexdigest()  # noqa: S324 (an identity, not a protection)


def nzb_problem(form: Any) -> tuple[bytes, str] | web.Response:
    """The content and default name of a usenet create, or TorBox's refusal."""
    upload, link = form.get("file"), form.get("link")
    if isinstance(upload, web.FileField):
        data = upload.file.read()
        if b"<nzb" not in data[:4096]:
            return failure(400, "BOZO_NZB", "The NZB file is not valid.")
        return data, upload.filename or "download.nzb"
    if isinstance(link, str) and link.strip().startswith(("http://", "https://")):
        return link.strip().encode(), link.strip().rsplit("/", 1)[-1] or "download"
    if isinstance(link, str) and link.strip():
        return failure(400, "INVALID_OPTION", "The link is not a valid URL.")
    return failure(400, "MISSING_REQUIRED_OPTION", "You must provide either an NZB file or a link.")


def link_problem(form: Any) -> tuple[bytes, str] | web.Response:
    """The content and default name of a web-download create, or TorBox's refusal."""
    link = form.get("link")
    if not isinstance(link, str) or not link.strip():
        return failure(400, "MISSING_REQUIRED_OPTION", "You must provide a link.")
    if not link.strip().startswith(("http://", "https://")):
        return failure(400, "INVALID_OPTION", "The link is not a valid URL.")
    return link.strip().encode(), link.strip().rsplit("/", 1)[-1] or "download"


def created(kind: str, item: Download, cached: bool) -> web.Response:
    """TorBox's create answer for a usenet or web download."""
    key = "usenetdownload_id" if kind == "usenet" else "webdownload_id"
    noun = "Usenet download" if kind == "usenet" else "Web download"
    if item.queued:
        data: dict[str, Any] = {"queued_id": item.id, "hash": item.hash, "auth_id": item.auth_id}
        return envelope(data, detail=f"{noun} queued successfully.")
    data = {key: item.id, "hash": item.hash, "auth_id": item.auth_id}
    detail = f"Found Cached {noun}. Using Cached Download." if cached else f"{noun} Added"
    return envelope(data, detail=detail)


def duplicate(kind: str) -> web.Response:
    """TorBox's duplicate refusal (a business error it sends as a 500)."""
    noun = "usenet download" if kind == "usenet" else "web download"
    return failure(500, "DUPLICATE_ITEM", f"This {noun} already exists in your account.")
