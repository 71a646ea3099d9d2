"""The TorBox HTTP client: one aiohttp session, every call rate-limited, every answer classified.

A fetch of the torrent list is all or nothing: every page of mylist (1,000 per page) plus the
queued items, or an exception. A partial list is never returned, so a failed page can never look
like removed torrents.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from torbox.automation.v1 import torrent_pb2 as tpb

from common import torrent_rows
from scheduler_svc.torbox import parse
from scheduler_svc.torbox.errors import (
    TorBoxApiError,
    TorBoxAuthError,
    TorBoxError,
    TorBoxRateLimited,
    TorBoxUnavailable,
)
from scheduler_svc.torbox.ratelimit import RateLimiter, RateLimitWait

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
MAX_PAGES = 100  # 100,000 torrents: far beyond any real account, a guard against a loop
AUTH_CODES = frozenset({"NO_AUTH", "BAD_TOKEN"})
CONTROL_OPERATIONS = frozenset({"stop_seeding", "pause", "resume", "delete", "reannounce"})
# Per type of download: its list (path, rate-limit endpoint), control call and edit call.
_LISTS = {"usenet": ("usenet/mylist", "usenet_list"), "webdl": ("webdl/mylist", "webdl_list")}
_CONTROLS = {
    "usenet": ("usenet/controlusenetdownload", "usenet_id"),
    "webdl": ("webdl/controlwebdownload", "webdl_id"),
}
_EDITS = {
    "torrent": ("torrents/edittorrent", "torrent_id"),
    "usenet": ("usenet/editusenetdownload", "usenet_id"),
    "webdl": ("webdl/editwebdownload", "webdl_id"),
}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How the client talks to TorBox."""

    base_url: str
    api_version: str = "v1"
    timeout_seconds: float = 20.0
    max_concurrency: int = 64
    per_key_per_minute: float = 250.0
    global_per_second: float = 500.0
    rate_limit_fallback_seconds: float = 60.0
    # How long a call may wait for its rate-limit token before giving up.
    max_token_wait_seconds: float = 30.0
    retries: int = 2
    retry_backoff_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class CreateReply:
    """A create's raw answer: status, body and headers (names in lower case)."""

    status: int
    body: bytes
    headers: dict[str, str]


class TorBoxClient:
    """Calls TorBox with one user's key; `key_id` (the auth id) names the key in limits and logs."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: ClientConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self.config = config
        self.limiter = RateLimiter(
            per_key_per_minute=config.per_key_per_minute,
            global_per_second=config.global_per_second,
        )
        self._concurrency = asyncio.Semaphore(config.max_concurrency)
        self._clock = clock
        self._root = f"{config.base_url.rstrip('/')}/{config.api_version}/api"
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)

    # Public calls ------------------------------------------------------------------------------

    async def user_me(self, key_id: str, api_key: str) -> dict[str, Any]:
        """The account behind a key (validates it)."""
        data = await self._call("GET", "user/me", key_id, api_key, endpoint="user")
        return data if isinstance(data, dict) else {}

    async def list_all(self, key_id: str, api_key: str) -> list[tpb.Torrent]:
        """Every torrent (all pages, fresh) and every queued item as messages, or an exception."""
        rows = await self.list_all_rows(key_id, api_key)
        return [torrent_rows.message(row) for row in rows]

    async def list_all_rows(self, key_id: str, api_key: str) -> list[parse.Row]:
        """Every torrent (all pages, fresh) and every queued item, or an exception.

        As rows: the poller sends them to the userstore as they are (TorrentRows).
        """
        torrents, ended = await self._pages(
            key_id, api_key, "torrents/mylist", "mylist", None, parse.torrent_row
        )
        if not ended:
            raise TorBoxUnavailable("TOO_MANY_PAGES", "mylist never ended")
        # The queued list is read as far as the guard allows.
        queued, _ = await self._pages(
            key_id, api_key, "queued/getqueued", "queued", "torrent", parse.queued_row
        )
        return [*torrents.values(), *queued.values()]

    async def list_downloads(self, key_id: str, api_key: str, kind: str) -> list[parse.Row]:
        """Every usenet or web download (all pages, fresh) and every queued one, or an exception.

        All or nothing like the torrent list: a failed page fails the whole type. As rows, like
        :meth:`list_all_rows`.
        """
        items, ended = await self._pages(
            key_id,
            api_key,
            f"{kind}/mylist",
            f"{kind}_list",
            None,
            lambda item: parse.download_row(item, kind),
        )
        if not ended:
            raise TorBoxUnavailable("TOO_MANY_PAGES", f"{kind}/mylist never ended")
        queued, ended = await self._pages(
            key_id,
            api_key,
            "queued/getqueued",
            "queued",
            kind,
            lambda item: parse.queued_download_row(item, kind),
        )
        if not ended:
            raise TorBoxUnavailable("TOO_MANY_PAGES", f"the {kind} queue never ended")
        return [*items.values(), *queued.values()]

    async def _pages(
        self,
        key_id: str,
        api_key: str,
        path: str,
        endpoint: str,
        list_type: str | None,
        parse_item: Callable[[Any], parse.Row | None],
    ) -> tuple[dict[int, parse.Row], bool]:
        """One list read page by page (first sighting of an id wins); whether its end was seen.

        `list_type` is the `type` query parameter (the queue's type), None for a list without it.
        """
        found: dict[int, parse.Row] = {}
        prefix = _page_prefix(path, list_type)
        for page in range(MAX_PAGES):
            data = await self._call(
                "GET",
                f"{prefix}{page * PAGE_SIZE}",
                key_id,
                api_key,
                endpoint=endpoint,
            )
            items = _as_list(data)
            for item in items:
                row = parse_item(item)
                if row is not None:
                    found.setdefault(row[parse.ID], row)
            if len(items) < PAGE_SIZE:
                return found, True
        return found, False

    async def torrent(self, key_id: str, api_key: str, torrent_id: int) -> tpb.Torrent | None:
        """One torrent, fresh (None when TorBox does not list it); `data` may be a list or not."""
        item = await self._raw_torrent(key_id, api_key, torrent_id)
        return None if item is None else parse.torrent(item)

    async def _raw_torrent(
        self, key_id: str, api_key: str, torrent_id: int, kind: str = "torrent"
    ) -> dict[str, Any] | None:
        """One item's JSON as TorBox sent it, fresh, or None when TorBox does not list it."""
        path, endpoint = ("torrents/mylist", "mylist") if kind == "torrent" else _LISTS[kind]
        try:
            data = await self._call(
                "GET",
                path,
                key_id,
                api_key,
                endpoint=endpoint,
                params={"bypass_cache": "true", "id": torrent_id},
            )
        except TorBoxApiError as error:
            if error.code == "ITEM_NOT_FOUND":
                return None
            raise
        for item in _as_list(data):
            row = parse.torrent_row(item)
            # An object with id 0 (or another id) is TorBox's other way of saying "not found".
            if row is not None and row[parse.ID] == torrent_id and isinstance(item, dict):
                return item
        return None

    async def set_airlock(
        self, key_id: str, api_key: str, torrent_id: int, airlocked: bool, kind: str = "torrent"
    ) -> None:
        """Set or clear one torrent's Airlock flag with TorBox's edit call.

        The edit call takes the torrent's name, tags and alternative hashes along with the flag
        (TBM sends all four, as the endpoint may replace what it is given): they are read fresh
        first and sent back as they are, so the edit changes the flag alone.
        """
        item = await self._raw_torrent(key_id, api_key, torrent_id, kind)
        if item is None:
            raise TorBoxApiError("ITEM_NOT_FOUND", "Download not found")
        name = item.get("name")
        tags = item.get("tags")
        hashes = item.get("alternative_hashes")
        path, id_field = _EDITS[kind]
        await self._call(
            "PUT",
            path,
            key_id,
            api_key,
            endpoint="edit",
            json_body={
                id_field: torrent_id,
                "name": name.strip()
                if isinstance(name, str) and name.strip()
                else f"Download {torrent_id}",
                "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
                "alternative_hashes": hashes if isinstance(hashes, list) else [],
                "airlocked": airlocked,
            },
        )

    async def control_torrent(
        self, key_id: str, api_key: str, torrent_id: int, operation: str
    ) -> None:
        """stop_seeding, pause, resume, delete or reannounce one torrent."""
        if operation not in CONTROL_OPERATIONS:
            raise ValueError(f"unknown operation {operation}")
        await self._call(
            "POST",
            "torrents/controltorrent",
            key_id,
            api_key,
            endpoint="control",
            json_body={"torrent_id": torrent_id, "operation": operation, "all": False},
        )

    async def control_download(
        self, key_id: str, api_key: str, kind: str, item_id: int, operation: str
    ) -> None:
        """delete (or pause, resume) one usenet or web download."""
        path, id_field = _CONTROLS[kind]
        await self._call(
            "POST",
            path,
            key_id,
            api_key,
            endpoint="control",
            json_body={id_field: item_id, "operation": operation, "all": False},
        )

    async def control_queued(
        self, key_id: str, api_key: str, queued_id: int, operation: str, kind: str = "torrent"
    ) -> None:
        """start or delete one queued item of a type."""
        await self._call(
            "POST",
            "queued/controlqueued",
            key_id,
            api_key,
            endpoint="control_queued",
            json_body={
                "queued_id": queued_id,
                "operation": operation,
                "type": kind,
                "all": False,
            },
        )

    async def create_torrent(
        self, key_id: str, api_key: str, magnet: str, name: str | None
    ) -> dict[str, Any]:
        """Add a torrent from a magnet; the answer has torrent_id (or queued_id) and hash."""
        form = {"magnet": magnet, "seed": "1", "allow_zip": "true"}
        if name:
            form["name"] = name
        data = await self._call(
            "POST",
            "torrents/createtorrent",
            key_id,
            api_key,
            endpoint="create",
            form=form,
            retry=False,
        )
        return data if isinstance(data, dict) else {}

    async def create_upload(
        self,
        key_id: str,
        api_key: str,
        path: str,
        fields: dict[str, str],
        file: tuple[str, bytes] | None,
    ) -> CreateReply:
        """One upload-queue create, sent once, answered raw for the queue's own policy.

        Unlike every other call, a 429 here does not block the key: the hourly uncached budget
        is per type and must not stop the polls. A transport failure raises TorBoxUnavailable.
        """
        await self._admit(key_id, "create", time.monotonic() + self.config.max_token_wait_seconds)
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        if file is not None:
            form.add_field("file", file[1], filename=file[0])
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        async with self._concurrency:
            try:
                async with self._session.post(
                    f"{self._root}/{path}", data=form, headers=headers, timeout=timeout
                ) as response:
                    body = await response.read()
                    found = {k.lower(): v for k, v in response.headers.items()}
                    return CreateReply(response.status, body, found)
            except TimeoutError:
                raise TorBoxUnavailable("TIMEOUT", "no answer to the create") from None
            except aiohttp.ClientError as error:
                raise TorBoxUnavailable("CONNECTION_ERROR", type(error).__name__) from None

    async def export_magnet(self, key_id: str, api_key: str, torrent_id: int) -> str:
        """The full magnet of a torrent (trackers included)."""
        data = await self._call(
            "GET",
            "torrents/exportdata",
            key_id,
            api_key,
            endpoint="export",
            params={"torrent_id": torrent_id, "type": "magnet"},
        )
        if not isinstance(data, str) or not data.startswith("magnet:"):
            raise TorBoxApiError("NO_MAGNET", "exportdata returned no magnet")
        return data

    # Plumbing ----------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        key_id: str,
        api_key: str,
        *,
        endpoint: str,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        retry: bool = True,
    ) -> Any:
        attempts = 1 + (self.config.retries if retry else 0)
        for attempt in range(attempts):
            try:
                return await self._once(
                    method, path, key_id, api_key, endpoint, params, json_body, form
                )
            except TorBoxError as error:
                if not error.retryable or attempt + 1 >= attempts:
                    raise
                delay = self.config.retry_backoff_seconds * (2**attempt)
                await asyncio.sleep(delay * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _once(
        self,
        method: str,
        path: str,
        key_id: str,
        api_key: str,
        endpoint: str,
        params: dict[str, Any] | None,
        json_body: dict[str, Any] | None,
        form: dict[str, str] | None,
    ) -> Any:
        deadline = time.monotonic() + self.config.max_token_wait_seconds
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        while True:
            await self._admit(key_id, endpoint, deadline)
            async with self._concurrency:
                if self.limiter.blocked_for(key_id) > 0:
                    # A 429 for this key arrived while this call waited for a connection slot:
                    # go back and wait it out rather than send into the block.
                    continue
                try:
                    async with self._session.request(
                        method,
                        f"{self._root}/{path}",
                        params=params,
                        json=json_body,
                        data=form,
                        headers=headers,
                        timeout=self._timeout,
                    ) as response:
                        body = await response.read()
                        status = response.status
                        response_headers = response.headers
                except TimeoutError:
                    raise TorBoxUnavailable(
                        "TIMEOUT", f"no answer within {self.config.timeout_seconds:g}s"
                    ) from None
                except aiohttp.ClientError as error:
                    raise TorBoxUnavailable("CONNECTION_ERROR", type(error).__name__) from None
            break
        if status == 429:
            retry_at = self._retry_at(response_headers)
            self.limiter.block(key_id, retry_at)
            raise TorBoxRateLimited(retry_at, _short(body))
        return _classify(status, body)

    async def _admit(self, key_id: str, endpoint: str, deadline: float) -> None:
        """Take the call's rate-limit tokens, or raise TorBoxRateLimited without sending."""
        try:
            await self.limiter.acquire(
                key_id, endpoint, max_wait=max(0.0, deadline - time.monotonic())
            )
        except RateLimitWait as wait:
            until = self.limiter.blocked_until(key_id)
            retry_at = until if until is not None else self._clock() + wait.wait
            raise TorBoxRateLimited(retry_at, "waiting for the rate limit") from None

    def _retry_at(self, headers: Any) -> float:
        """When a 429 lifts: retry-after, else x-ratelimit-reset (epoch or delta), else fallback."""
        now = self._clock()
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            seconds = _retry_after_seconds(retry_after, now)
            if seconds is not None:
                return now + seconds
        reset = headers.get("x-ratelimit-reset")
        if reset is not None:
            try:
                value = float(reset)
            except ValueError:
                value = -1.0
            if value > 1e9:
                return value  # an epoch timestamp
            if value >= 0:
                return now + value  # a delta in seconds
        return now + self.config.rate_limit_fallback_seconds


def _retry_after_seconds(value: str, now: float) -> float | None:
    """Retry-After as seconds from now: delta seconds or (RFC 9110) an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _short(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace")


def _classify(status: int, body: bytes) -> Any:
    """The `data` of a successful answer, or the exception that the answer means."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        if status >= 500:
            raise TorBoxUnavailable(f"HTTP_{status}", "non-JSON error page") from None
        raise TorBoxUnavailable(
            "MALFORMED_RESPONSE", f"HTTP {status} with a body that is not JSON"
        ) from None
    if not isinstance(payload, dict):
        if status >= 500:
            raise TorBoxUnavailable(f"HTTP_{status}")
        raise TorBoxUnavailable("MALFORMED_RESPONSE", "the answer is not a JSON object")
    success = payload.get("success")
    code = payload.get("error")
    detail = payload.get("detail")
    message = detail if isinstance(detail, str) else ""
    if status == 404 and success is True and code == "ITEM_NOT_FOUND":
        return []  # TorBox's way of saying "the list is empty"
    if success is True and 200 <= status < 300:
        return payload.get("data")
    if status == 401 or (status == 403 and code in AUTH_CODES):
        raise TorBoxAuthError(str(code or "UNAUTHORIZED"), message, status=status)
    if isinstance(code, str) and code:
        raise TorBoxApiError(code, message, status=status)
    if status == 422:
        # The request itself is wrong: sending it again cannot help.
        raise TorBoxApiError(
            "VALIDATION_ERROR", json.dumps(detail)[:200], status=status, retryable=False
        )
    if status >= 500:
        raise TorBoxUnavailable(f"HTTP_{status}", message, status=status)
    if 200 <= status < 300:
        raise TorBoxUnavailable("MALFORMED_RESPONSE", "an answer without success", status=status)
    raise TorBoxApiError(f"HTTP_{status}", message, status=status)


@functools.cache
def _page_prefix(path: str, list_type: str | None) -> str:
    """A list page's path and query up to the offset's value, encoded once per list.

    The query goes as text in the path (aiohttp would encode a params dict anew on every
    request), and its text never changes: encoding it on every page was about 4 % of a
    one-torrent poll's CPU. Lists and types are a handful of constants, so the cache stays small.
    """
    params = {"type": list_type} if list_type is not None else {}
    query = urlencode({**params, "bypass_cache": "true", "limit": PAGE_SIZE})
    return f"{path}?{query}&offset="


def _as_list(data: Any) -> list[Any]:
    """mylist's data: a list, or (quirk) a single object, or nothing."""
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise TorBoxUnavailable("MALFORMED_RESPONSE", "mylist data is neither a list nor an object")
