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
from dataclasses import dataclass, field, replace
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


# How a usenet or web download behaves over simulated time; the names are part of the admin API.
PROFILES = ("queued", "downloading", "stalled", "failed", "completed")
# qBittorrent's "unknown" ETA, which TorBox reports for a download that is not moving.
INFINITE_ETA = 8_640_000
_FAILED_ERRORS = {"usenet": "Missing articles", "webdl": "Hoster unavailable"}
_MONTH = 30 * 86_400


@dataclass(slots=True)
class Download:
    """A usenet or web download and its life on the simulated clock.

    ``downloading`` grows its progress at ``rate`` bytes a simulated second from ``born`` and is
    ``completed`` once whole; ``stalled`` keeps TorBox's "downloading" state with its progress
    frozen (what a usenet user calls stalled); ``failed`` and ``completed`` stay as they are.
    A ``queued`` item is in the queue (getqueued), not in mylist; TorBox gives its size later.
    """

    id: int
    name: str
    hash: str
    auth_id: str
    created_at: float
    queued: bool
    # What the create's password field carried (the admin view shows it, mylist never does).
    password: str | None = None
    kind: str = "usenet"
    profile: str = "downloading"
    # Bytes; None while TorBox does not know it (a queued usenet item has none).
    size: int | None = 1_000_000_000
    rate: int = 10_000_000
    start_progress: float = 0.0
    # Simulated time of the download's start (progress grows from here).
    born: float = 0.0
    original_url: str | None = None
    server: int = 1

    def progress(self, now: float) -> float:
        """The fraction done at simulated time `now`."""
        if self.profile == "completed":
            return 1.0
        if self.profile != "downloading" or not self.size:
            return self.start_progress
        grown = self.start_progress + max(0.0, now - self.born) * self.rate / self.size
        return min(1.0, grown)

    def render(self, now: float = 0.0) -> dict[str, Any]:
        """The mylist item: TorBox's field set for usenet and web downloads."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at))
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at + _MONTH))
        progress = self.progress(now)
        profile = "completed" if progress >= 1.0 else self.profile
        if self.queued:
            profile = "queued"
        moving = profile == "downloading"
        done = profile == "completed"
        speed = self.rate if moving else 0
        left = 0 if self.size is None else int(self.size * (1.0 - progress))
        return {
            "id": self.id,
            "auth_id": self.auth_id,
            "server": self.server,
            "hash": self.hash,
            "name": self.name,
            "size": self.size or 0,
            "active": profile in ("downloading", "stalled", "queued"),
            "created_at": stamp,
            "updated_at": stamp,
            "download_state": {"failed": "failed", "completed": "completed"}.get(
                profile, "queued" if profile == "queued" else "downloading"
            ),
            "progress": round(progress, 6),
            "download_speed": speed,
            "upload_speed": 0,
            "eta": (left // speed if speed else (0 if done else INFINITE_ETA)),
            "torrent_file": False,
            "expires_at": expires,
            "download_present": done,
            "download_finished": done,
            "files": [] if not done else [{"id": 0, "name": self.name, "size": self.size}],
            "inactive_check": 0,
            "availability": 0,
            "cached": done,
            "cached_at": stamp if done else None,
            "allow_zipped": True,
            "tags": [],
            "airlocked": False,
            "original_url": self.original_url,
            "error": _FAILED_ERRORS.get(self.kind) if profile == "failed" else None,
        }

    def render_queued(self) -> dict[str, Any]:
        """The getqueued item: the queue's small shape (no size, no progress, no flags)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at))
        return {
            "id": self.id,
            "auth_id": self.auth_id,
            "created_at": stamp,
            "magnet": None,
            "torrent_file": None,
            "hash": self.hash,
            "name": self.name,
            "type": self.kind,
        }


@dataclass(slots=True)
class Downloads:
    """One account's usenet and web downloads, by type, with their identities."""

    items: dict[str, dict[int, Download]] = field(
        default_factory=lambda: {"usenet": {}, "webdl": {}}
    )
    by_hash: dict[str, int] = field(default_factory=dict)

    def ordered(self, kind: str) -> list[Download]:
        """One type's downloads, newest first (as TorBox pages them)."""
        return sorted(self.items[kind].values(), key=lambda d: (d.created_at, d.id), reverse=True)

    def add(self, item: Download) -> None:
        """Keep a new download under its type and identity."""
        self.items[item.kind][item.id] = item
        self.by_hash[item.hash] = item.id

    def remove(self, item: Download) -> None:
        """Forget a download (a delete)."""
        self.items[item.kind].pop(item.id, None)
        if self.by_hash.get(item.hash) == item.id:
            del self.by_hash[item.hash]

    def start(self, item: Download, new_id: int, now: float) -> Download:
        """A queued download started: it leaves the queue and downloads under a new id."""
        self.remove(item)
        started = replace(item, id=new_id, queued=False, born=now)
        if started.profile == "queued":
            started.profile = "downloading"
        if started.size is None:
            started.size = 1_000_000_000  # TorBox learns the size once the download starts
        self.add(started)
        return started


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
