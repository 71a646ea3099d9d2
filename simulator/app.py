"""The TorBox API routes (/v1/api), with auth, injected faults and rate limits in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator import admin, creates
from simulator.accounts import Account, Registry, Snapshot
from simulator.clock import SimClock
from simulator.config import SimConfig
from simulator.creates import over_budget
from simulator.faults import LIST_SHAPING, Fault, FaultKind
from simulator.params import (
    body_bool,
    body_int,
    body_str,
    json_object,
    query_bool,
    query_int,
    to_bool,
    to_int,
)
from simulator.render import format_date
from simulator.responses import (
    FieldProblem,
    bad_token,
    endpoint_not_found,
    envelope,
    failure,
    gateway_page,
    no_auth,
    not_found_quirk,
    rate_limit_headers,
    rate_limited,
    raw_envelope,
    validation_error,
)
from simulator.sources import BadTorrent, read_magnet, read_torrent_file
from simulator.specs import added
from simulator.torrents import Hold, Torrent

REGISTRY = web.AppKey("registry", Registry)
# A fault that lets a mylist request through but thins out the list it answers.
LIST_FAULT = web.RequestKey("list_fault", Fault)
API = "/v1/api"
PAGE_LIMIT = 1000
TORRENT_OPERATIONS = frozenset({"reannounce", "delete", "resume", "pause", "stop_seeding"})
_ID_FIELDS = ("torrent_id", "queued_id", "usenet_id", "webdl_id")
DOWNLOAD_OPERATIONS = frozenset({"delete", "pause", "resume"})
CONTROL_PATHS = {"usenet": "usenet/controlusenetdownload", "webdl": "webdl/controlwebdownload"}
QUEUED_OPERATIONS = frozenset({"start", "delete"})
CONTROL_ENDPOINTS = frozenset(
    {
        "torrents/controltorrent",
        "torrents/edittorrent",
        "queued/controlqueued",
        "torrents/createtorrent",
        "usenet/createusenetdownload",
        "webdl/createwebdownload",
        "usenet/controlusenetdownload",
        "webdl/controlwebdownload",
    }
)
_NO_TORRENTS = "No torrents found for this user."
_MONTH = 30 * 86_400

Handler = Callable[[web.Request, Account], Awaitable[web.Response]]


def create_app(config: SimConfig) -> web.Application:
    """The whole simulator as an aiohttp application: TorBox routes plus the /_sim admin API."""
    # .torrent uploads arrive as multipart bodies; TorBox itself refuses files over 100 MB.
    app = web.Application(client_max_size=16 * 1024 * 1024)
    registry = Registry(config, SimClock(config.time_scale))
    app[REGISTRY] = registry
    api = TorBoxApi(registry, config)
    app.on_shutdown.append(api.release_hangs)
    routes = (
        ("GET", "user/me", api.user_me),
        ("GET", "torrents/mylist", api.mylist),
        ("POST", "torrents/controltorrent", api.control_torrent),
        ("PUT", "torrents/edittorrent", api.edit_torrent),
        ("POST", "torrents/createtorrent", api.create_torrent),
        ("GET", "torrents/exportdata", api.export_data),
        ("GET", "queued/getqueued", api.get_queued),
        ("POST", "queued/controlqueued", api.control_queued),
        ("POST", "usenet/createusenetdownload", api.create_usenet),
        ("POST", "webdl/createwebdownload", api.create_webdl),
        ("GET", "usenet/mylist", api.usenet_list),
        ("GET", "webdl/mylist", api.webdl_list),
        ("POST", "usenet/controlusenetdownload", api.control_usenet),
        ("POST", "webdl/controlwebdownload", api.control_webdl),
    )
    for method, endpoint, handler in routes:
        app.router.add_route(method, f"{API}/{endpoint}", api.guard(endpoint, handler))
    app.router.add_get(f"{API}/torrents/getqueued", api.deprecated_getqueued)
    admin.setup(app, registry)
    # Last, so it only catches what no route above matched (FastAPI answers 404 before auth).
    app.router.add_route("*", "/{tail:.*}", api.unknown_path)
    return app


def _call_name(endpoint: str, request: web.Request) -> str:
    """The endpoint, with the queue's type for getqueued (each type is a list of its own)."""
    if endpoint == "queued/getqueued":
        return f"{endpoint}?type={request.query.get('type', 'torrent')}"
    return endpoint


def _link(form: Any) -> str | None:
    """The link a create came from (TorBox's original_url); None for an uploaded file."""
    link = form.get("link")
    return link if isinstance(link, str) and link else None


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class TorBoxApi:
    """Handlers for the TorBox endpoints; `guard` puts auth, faults and limits in front."""

    def __init__(self, registry: Registry, config: SimConfig) -> None:
        self.registry = registry
        self.config = config
        self.clock = registry.clock
        # Set at shutdown so hanging `slow`/`timeout` faults let the server stop at once.
        self._shutdown = asyncio.Event()

    async def release_hangs(self, _app: web.Application) -> None:
        """Shutdown hook: wake every request a fault keeps waiting."""
        self._shutdown.set()

    def guard(
        self, endpoint: str, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Wrap a handler with what sits in front of every TorBox endpoint, and count it."""

        async def guarded(request: web.Request) -> web.Response:
            key = _bearer(request)
            response = await self._answer(request, endpoint, key, handler)
            self.registry.stats.count(endpoint, key, response.status)
            account = self.registry.lookup(key) if key is not None else None
            if account is not None:
                account.calls[_call_name(endpoint, request)] += 1
            return response

        return guarded

    async def _answer(
        self, request: web.Request, endpoint: str, key: str | None, handler: Handler
    ) -> web.Response:
        if key is None:
            return no_auth()
        account = self.registry.lookup(key)
        if account is None:
            return bad_token()
        fault = account.faults.take(endpoint, time.monotonic())
        if fault is not None:
            early = await self._fault_response(fault)
            if early is not None:
                await self._log_refused(request, endpoint, account, early, f"fault:{fault.kind}")
                return early
            if fault.kind in LIST_SHAPING:
                request[LIST_FAULT] = fault
        limit = self.config.rate_limit_per_minute
        verdict = account.limiter.hit(endpoint, time.monotonic()) if limit else None
        if verdict is not None and not verdict.allowed:
            refused = rate_limited(limit, verdict.reset_in)
            await self._log_refused(request, endpoint, account, refused, "RATE_LIMITED")
            return refused
        try:
            response = await handler(request, account)
        except FieldProblem as problem:
            response = validation_error(problem)
            await self._log_refused(request, endpoint, account, response, "VALIDATION_ERROR")
        if (
            verdict is not None
            and response.status != 429
            and "x-ratelimit-limit" not in (response.headers)
        ):
            # An uncached create already carries the hourly envelope's headers (limit 60), and
            # the hourly budget's 429 carries none or its own.
            response.headers.update(rate_limit_headers(limit, verdict.remaining, verdict.reset_in))
        if fault is not None and fault.kind is FaultKind.MALFORMED_JSON:
            return _truncated(response)
        if fault is not None and fault.kind is FaultKind.LATE_ANSWER:
            await self._hang(5.0 if fault.delay is None else fault.delay)
        return response

    async def _fault_response(self, fault: Fault) -> web.Response | None:
        """The response a fault substitutes, or None when the request should still be served."""
        kind = fault.kind
        if kind is FaultKind.HTTP_500:
            return failure(
                500, "UNKNOWN_ERROR", "An unknown error occurred. Please try again later."
            )
        if kind is FaultKind.AUTH_ERROR_500:
            return failure(
                500,
                "AUTH_ERROR",
                "There was an error verifying your API key. Please try again later.",
            )
        if kind is FaultKind.BUSINESS_500:
            return failure(
                500,
                "ACTIVE_LIMIT",
                "You have reached your active download limit. Please upgrade your plan or wait "
                "for current downloads to finish.",
                {"active_limit": 10, "current_active_downloads": 10},
            )
        if kind is FaultKind.BAD_GATEWAY_HTML:
            return gateway_page(502, "Bad gateway", fault.retry_after)
        if kind is FaultKind.UNAVAILABLE_503:
            return gateway_page(503, "Service unavailable", fault.retry_after)
        if kind is FaultKind.RATE_LIMIT_429:
            limit = self.config.rate_limit_per_minute or 300
            retry_after = 60.0 if fault.retry_after is None else fault.retry_after
            return rate_limited(limit, retry_after)
        if kind is FaultKind.EMPTY_ONCE:
            return not_found_quirk(_NO_TORRENTS)
        if kind is FaultKind.REVOKED:
            return bad_token()
        if kind is FaultKind.SLOW:
            await self._hang(5.0 if fault.delay is None else fault.delay)
            return None
        if kind is FaultKind.TIMEOUT:
            longest = self.config.max_hang_seconds
            await self._hang(longest if fault.delay is None else min(fault.delay, longest))
            return gateway_page(504, "Gateway time-out")
        return None  # MALFORMED_JSON and LATE_ANSWER: served, then spoiled or held back.

    async def _hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._shutdown.wait(), seconds)

    async def _log_refused(
        self,
        request: web.Request,
        endpoint: str,
        account: Account,
        response: web.Response,
        result: str,
    ) -> None:
        """Control requests the handlers did not get to act on still belong in the control log."""
        if endpoint not in CONTROL_ENDPOINTS:
            return
        operation: object = "create" if endpoint == "torrents/createtorrent" else None
        target: object = None
        every: object = False
        if operation is None:
            # Like the handlers, read JSON whatever Content-Type the client claimed.
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
            if isinstance(body, dict):
                operation = body.get("operation")
                target = next((body[k] for k in _ID_FIELDS if k in body), None)
                every = body.get("all", False)
        self._log(account, endpoint, operation, target, every, response.status, result)

    def _log(
        self,
        account: Account,
        endpoint: str,
        operation: object,
        target: object,
        every: object,
        status: int,
        result: str,
        kind: str | None = None,
    ) -> None:
        entry: dict[str, object] = {
            "time": format_date(time.time(), False),
            "sim_seconds": round(self.clock.now(), 3),
            "endpoint": endpoint,
            "operation": operation,
            "id": target,
            "all": every,
            "status": status,
            "result": result,
        }
        if kind is not None:
            entry["type"] = kind  # a usenet or web download (queue controls name the type)
        account.requests.append(entry)

    # --- user -----------------------------------------------------------------------------

    async def user_me(self, request: web.Request, account: Account) -> web.Response:
        """GET /user/me: who the key belongs to; `settings=true` adds the settings object."""
        with_settings = query_bool(request.query, "settings", False)
        ident = account.identity
        legacy = account.knobs.legacy_dates
        now = time.time()
        sim_now = self.clock.now()
        downloaded = uploaded = 0
        for torrent in account.torrents.values():
            state = torrent.state(sim_now)
            downloaded += state.downloaded
            uploaded += state.uploaded
        # Subscriptions renew monthly from sign-up, so the expiry is the next renewal.
        months = math.ceil((now - ident.created_wall) / _MONTH) + 1
        data: dict[str, Any] = {
            "id": ident.user_id,
            "auth_id": ident.auth_id,
            "created_at": format_date(ident.created_wall, legacy),
            "updated_at": format_date(ident.updated_wall, legacy),
            "plan": 2,
            "total_downloaded": account.added_total,
            "customer": ident.customer,
            "server": ident.server,
            "is_subscribed": True,
            "premium_expires_at": format_date(ident.created_wall + months * _MONTH, legacy),
            "cooldown_until": format_date(ident.created_wall, legacy),
            "email": ident.email,
            "user_referral": ident.referral,
            "base_email": ident.email,
            "total_bytes_downloaded": downloaded,
            "total_bytes_uploaded": uploaded,
            "torrents_downloaded": account.added_total,
            "web_downloads_downloaded": 0,
            "usenet_downloads_downloaded": 0,
            "additional_concurrent_slots": 0,
            "long_term_seeding": False,
            "long_term_storage": False,
            "is_vendor": False,
            "vendor_id": None,
            "purchases_referred": 0,
        }
        if with_settings:
            data["settings"] = {
                "seed_torrents": 1,
                "allow_zipped": True,
                "show_tracker_in_torrents": False,
            }
        return envelope(data, detail="User data retrieved successfully.")

    # --- mylist ---------------------------------------------------------------------------

    async def mylist(self, request: web.Request, account: Account) -> web.Response:
        """GET /torrents/mylist: newest first, paged, and stale unless bypass_cache is set."""
        query = request.query
        bypass = query_bool(query, "bypass_cache", False)
        wanted = query_int(query, "id", None)
        offset = max(0, query_int(query, "offset", 0) or 0)
        limit = min(max(1, query_int(query, "limit", PAGE_LIMIT) or PAGE_LIMIT), PAGE_LIMIT)
        fault = request.get(LIST_FAULT)
        if wanted is not None:
            item = self._one(account, wanted, bypass, fault)
            if item is None:
                return not_found_quirk(_NO_TORRENTS)
            data = f"[{item}]" if account.knobs.id_returns_list else item
            return raw_envelope(data, "Torrent retrieved successfully.")
        gone: frozenset[int] = frozenset()
        if bypass:
            torrents = account.ordered()
            if fault is not None:
                gone = fault.dropped([torrent.id for torrent in torrents])
                torrents = [torrent for torrent in torrents if torrent.id not in gone]
            renderer = account.renderer(self.clock)
            items = [renderer.torrent(torrent) for torrent in torrents[offset : offset + limit]]
        else:
            snapshot = self._snapshot(account)
            listed = snapshot.items
            if fault is not None:
                gone = fault.dropped(snapshot.ids)
                listed = [
                    row for row, tid in zip(listed, snapshot.ids, strict=True) if tid not in gone
                ]
            items = listed[offset : offset + limit]
        if not items:
            if gone and fault is not None and fault.kind is FaultKind.PARTIAL_LIST:
                # The glitch answers success with an empty page, unlike TorBox's empty-list 404.
                return raw_envelope("[]", "Torrent list retrieved successfully.")
            return not_found_quirk(_NO_TORRENTS)
        return raw_envelope("[" + ",".join(items) + "]", "Torrent list retrieved successfully.")

    def _one(
        self, account: Account, torrent_id: int, bypass: bool, fault: Fault | None
    ) -> str | None:
        if not bypass:
            snapshot = self._snapshot(account)
            position = snapshot.index.get(torrent_id)
            if position is None or (
                fault is not None and torrent_id in fault.dropped(snapshot.ids)
            ):
                return None
            return snapshot.items[position]
        torrent = account.torrents.get(torrent_id)
        if torrent is None:
            return None
        if fault is not None and torrent_id in fault.dropped([t.id for t in account.ordered()]):
            return None
        return account.renderer(self.clock).torrent(torrent)

    def _snapshot(self, account: Account) -> Snapshot:
        """TorBox's cached copy of the list, refreshed once it is cache_seconds old."""
        now = time.monotonic()
        snapshot = account.snapshot
        if snapshot is None or now - snapshot.taken >= self.config.cache_seconds:
            renderer = account.renderer(self.clock)
            torrents = account.ordered()
            snapshot = Snapshot(
                now,
                [renderer.torrent(torrent) for torrent in torrents],
                {torrent.id: position for position, torrent in enumerate(torrents)},
                [torrent.id for torrent in torrents],
            )
            account.snapshot = snapshot
        return snapshot

    # --- controltorrent -------------------------------------------------------------------

    async def control_torrent(self, request: web.Request, account: Account) -> web.Response:
        """POST /torrents/controltorrent: reannounce, delete, resume, pause or stop_seeding."""
        endpoint = "torrents/controltorrent"
        body = await json_object(request)
        operation = body_str(body, "operation")
        torrent_id = body_int(body, "torrent_id")
        every = body_bool(body, "all", False)

        def done(response: web.Response, result: str) -> web.Response:
            self._log(account, endpoint, operation, torrent_id, every, response.status, result)
            return response

        if operation not in TORRENT_OPERATIONS:
            return done(
                failure(
                    400,
                    "INVALID_OPTION",
                    "Operation must be 'reannounce', 'delete', 'resume', 'pause' or "
                    "'stop_seeding'.",
                ),
                "INVALID_OPTION",
            )
        if every:
            targets = list(account.torrents.values())
        elif torrent_id is None:
            return done(
                failure(400, "MISSING_REQUIRED_OPTION", "You must provide a torrent ID."),
                "MISSING_REQUIRED_OPTION",
            )
        else:
            torrent = account.torrents.get(torrent_id)
            if torrent is None:
                return done(*self._not_yours(torrent_id))
            targets = [torrent]
        for target in targets:
            self._operate(account, target, operation)
        return done(envelope(None, detail="Torrent operationd successfully."), "ok")

    # --- edittorrent -----------------------------------------------------------------------

    async def edit_torrent(self, request: web.Request, account: Account) -> web.Response:
        """PUT /torrents/edittorrent: name, tags, alternative hashes and the Airlock flag.

        Each field given replaces the torrent's (which is why clients send back the current
        name, tags and hashes with a new flag); the control log records the flag as `operation`.
        """
        endpoint = "torrents/edittorrent"
        body = await json_object(request)
        torrent_id = body_int(body, "torrent_id")
        airlocked = body.get("airlocked")
        if airlocked is not None:
            airlocked = body_bool(body, "airlocked", False)
        operation = "edit" if airlocked is None else ("airlock" if airlocked else "unairlock")

        def done(response: web.Response, result: str) -> web.Response:
            self._log(account, endpoint, operation, torrent_id, False, response.status, result)
            return response

        if torrent_id is None:
            return done(
                failure(400, "MISSING_REQUIRED_OPTION", "You must provide a torrent ID."),
                "MISSING_REQUIRED_OPTION",
            )
        torrent = account.torrents.get(torrent_id)
        if torrent is None:
            return done(*self._not_yours(torrent_id))
        name = body.get("name")
        torrent.edit(
            name=name.strip() if isinstance(name, str) and name.strip() else None,
            tags=_strings(body, "tags"),
            alternative_hashes=_strings(body, "alternative_hashes"),
            airlocked=airlocked,
            wall_now=time.time(),
        )
        account.snapshot = None  # TorBox's cached list shows the edit too
        return done(envelope(None, detail="Torrent edited successfully."), "ok")

    def _operate(self, account: Account, torrent: Torrent, operation: str) -> None:
        sim_now, wall_now = self.clock.now(), time.time()
        if operation == "delete":
            self.registry.remove_torrent(account, torrent)
        elif operation == "pause":
            torrent.put_on_hold(Hold.PAUSED, sim_now, wall_now)
        elif operation == "stop_seeding":
            torrent.put_on_hold(Hold.STOPPED, sim_now, wall_now)
        elif operation == "resume":
            torrent.resume(sim_now, wall_now)
        # reannounce changes nothing visible; the control log is its only trace.

    def _not_yours(self, torrent_id: int) -> tuple[web.Response, str]:
        """Ids are global: someone else's torrent is NOT_OWNER, a missing one ITEM_NOT_FOUND."""
        if torrent_id in self.registry.owners:
            code = "NOT_OWNER"
            return failure(409, code, "You are not the owner of this torrent."), code
        code = "ITEM_NOT_FOUND"
        return failure(404, code, "The torrent could not be found."), code

    # --- createtorrent --------------------------------------------------------------------

    async def create_torrent(self, request: web.Request, account: Account) -> web.Response:
        """POST /torrents/createtorrent: multipart or urlencoded, from a magnet or a file."""
        endpoint = "torrents/createtorrent"
        form = await request.post()
        magnet = form.get("magnet")
        upload = form.get("file")
        name = form.get("name")
        seed_pref = to_int(form.get("seed", "1"), ("body", "seed"))
        allow_zip = to_bool(form.get("allow_zip", "true"), ("body", "allow_zip"))
        as_queued = to_bool(form.get("as_queued", "false"), ("body", "as_queued"))
        only_cached = to_bool(
            form.get("add_only_if_cached", "false"), ("body", "add_only_if_cached")
        )

        def done(response: web.Response, result: str, new_id: int | None = None) -> web.Response:
            self._log(account, endpoint, "create", new_id, False, response.status, result)
            return response

        has_magnet = isinstance(magnet, str) and bool(magnet.strip())
        has_file = isinstance(upload, web.FileField)
        if has_magnet and has_file:
            return done(
                failure(400, "TOO_MANY_OPTIONS", "You can only provide a file or a magnet link."),
                "TOO_MANY_OPTIONS",
            )
        if seed_pref not in (1, 2, 3):
            return done(
                failure(400, "INVALID_OPTION", "Seed must be 1 (auto), 2 (seed) or 3 (no seed)."),
                "INVALID_OPTION",
            )
        torrent_file: bytes | None = None
        try:
            if isinstance(magnet, str) and has_magnet:
                source = read_magnet(magnet.strip())
            elif isinstance(upload, web.FileField):
                torrent_file = upload.file.read()
                source = read_torrent_file(torrent_file)
            else:
                return done(
                    failure(
                        400,
                        "MISSING_REQUIRED_OPTION",
                        "You must provide either a file or magnet link.",
                    ),
                    "MISSING_REQUIRED_OPTION",
                )
        except BadTorrent:
            return done(
                failure(400, "BOZO_TORRENT", "The torrent or magnet link is not valid."),
                "BOZO_TORRENT",
            )
        if source.info_hash in account.hashes:
            # TorBox sends this business error as a 500, not as a 4xx.
            return done(
                failure(500, "DUPLICATE_ITEM", "This torrent already exists in your account."),
                "DUPLICATE_ITEM",
            )
        cached = source.info_hash in self.registry.cached_hashes
        if only_cached and not cached:
            return done(
                failure(400, "DOWNLOAD_NOT_CACHED", "This download is not cached on TorBox."),
                "DOWNLOAD_NOT_CACHED",
            )
        spent: dict[str, str] = {}
        if not cached:
            if account.budget.exhausted("torrent", time.monotonic()):
                refused = over_budget(account.budget, "torrent", self.config.uncached_429_headers)
                return done(refused, "RATE_LIMITED")
            spent = account.budget.spend("torrent", time.monotonic())
        title = name.strip() if isinstance(name, str) and name.strip() else source.name
        blueprint = added(
            seed=self.config.seed,
            info_hash=source.info_hash,
            name=title,
            magnet=magnet.strip() if isinstance(magnet, str) and has_magnet else None,
            torrent_file=torrent_file,
            seed_pref=seed_pref,
            allow_zip=allow_zip,
            cached=cached,
        )
        auth_id = account.identity.auth_id
        if as_queued:
            item = self.registry.add_queued(account, blueprint)
            data = {"hash": source.info_hash, "queued_id": item.id, "auth_id": auth_id}
            answer = envelope(data, detail="Torrent queued successfully.")
            answer.headers.update(spent)
            return done(answer, "ok", item.id)
        torrent = self.registry.add_torrent(account, blueprint)
        data = {"hash": source.info_hash, "torrent_id": torrent.id, "auth_id": auth_id}
        detail = (
            "Found Cached Torrent. Using Cached Torrent."
            if cached
            else "Torrent Added Successfully"
        )
        answer = envelope(data, detail=detail)
        answer.headers.update(spent)
        return done(answer, "ok", torrent.id)

    # --- usenet and web downloads -----------------------------------------------------------

    async def create_usenet(self, request: web.Request, account: Account) -> web.Response:
        """POST /usenet/createusenetdownload: an NZB file or link."""
        form = await request.post()
        return self._create_download(account, "usenet", form, creates.nzb_problem(form))

    async def create_webdl(self, request: web.Request, account: Account) -> web.Response:
        """POST /webdl/createwebdownload: a link (a password is accepted and ignored)."""
        form = await request.post()
        return self._create_download(account, "webdl", form, creates.link_problem(form))

    def _create_download(
        self,
        account: Account,
        kind: str,
        form: Any,
        content: tuple[bytes, str] | web.Response,
    ) -> web.Response:
        endpoint = "usenet/createusenetdownload" if kind == "usenet" else "webdl/createwebdownload"
        if isinstance(content, web.Response):
            self._log(account, endpoint, "create", None, False, content.status, "refused")
            return content
        data, default_name = content
        digest = creates.identity(data)
        if digest in account.downloads.by_hash:
            refused = creates.duplicate(kind)
            self._log(account, endpoint, "create", None, False, 500, "DUPLICATE_ITEM")
            return refused
        now = time.monotonic()
        cached = digest in self.registry.cached_hashes
        spent: dict[str, str] = {}
        if not cached:
            if account.budget.exhausted(kind, now):
                refused = over_budget(account.budget, kind, self.config.uncached_429_headers)
                self._log(account, endpoint, "create", None, False, 429, "RATE_LIMITED")
                return refused
            spent = account.budget.spend(kind, now)
        name = form.get("name")
        item = creates.Download(
            id=self.registry.next_download_id,
            name=name.strip() if isinstance(name, str) and name.strip() else default_name,
            hash=digest,
            auth_id=account.identity.auth_id,
            created_at=time.time(),
            queued=to_bool(form.get("as_queued", "false"), ("body", "as_queued")),
            password=password if isinstance(password := form.get("password"), str) else None,
            kind=kind,
            born=self.clock.now(),
            original_url=_link(form),
        )
        self.registry.next_download_id += 1
        if item.queued:
            item.size = None  # TorBox knows a queued download's size only once it starts
        account.downloads.add(item)
        answer = creates.created(kind, item, cached)
        answer.headers.update(spent)
        self._log(account, endpoint, "create", item.id, False, 200, "ok")
        return answer

    async def usenet_list(self, request: web.Request, account: Account) -> web.Response:
        """GET /usenet/mylist: the account's usenet downloads, newest first."""
        return self._download_list(request, account, "usenet")

    async def webdl_list(self, request: web.Request, account: Account) -> web.Response:
        """GET /webdl/mylist: the account's web downloads, newest first."""
        return self._download_list(request, account, "webdl")

    def _download_list(self, request: web.Request, account: Account, kind: str) -> web.Response:
        """Paged like mylist; queued items are in the queue, not here; ?id= gives one object."""
        query = request.query
        query_bool(query, "bypass_cache", False)
        wanted = query_int(query, "id", None)
        offset = max(0, query_int(query, "offset", 0) or 0)
        limit = min(max(1, query_int(query, "limit", PAGE_LIMIT) or PAGE_LIMIT), PAGE_LIMIT)
        now = self.clock.now()
        items = [d for d in account.downloads.ordered(kind) if not d.queued]
        if wanted is not None:
            match = next((d for d in items if d.id == wanted), None)
            if match is None:
                return not_found_quirk("No downloads found for this user.")
            return envelope(match.render(now), detail="Download retrieved successfully.")
        page = [d.render(now) for d in items[offset : offset + limit]]
        return envelope(page, detail="Downloads retrieved successfully.")

    async def control_usenet(self, request: web.Request, account: Account) -> web.Response:
        """POST /usenet/controlusenetdownload: delete (or pause, resume) usenet downloads."""
        return await self._control_download(request, account, "usenet")

    async def control_webdl(self, request: web.Request, account: Account) -> web.Response:
        """POST /webdl/controlwebdownload: delete (or pause, resume) web downloads."""
        return await self._control_download(request, account, "webdl")

    async def _control_download(
        self, request: web.Request, account: Account, kind: str
    ) -> web.Response:
        endpoint = CONTROL_PATHS[kind]
        id_field = "usenet_id" if kind == "usenet" else "webdl_id"
        body = await json_object(request)
        operation = body_str(body, "operation")
        target = body_int(body, id_field)
        every = body_bool(body, "all", False)

        def done(response: web.Response, result: str) -> web.Response:
            self._log(account, endpoint, operation, target, every, response.status, result, kind)
            return response

        if operation not in DOWNLOAD_OPERATIONS:
            return done(
                failure(400, "INVALID_OPTION", "Operation must be 'delete', 'pause' or 'resume'."),
                "INVALID_OPTION",
            )
        items = account.downloads.items[kind]
        listed = [d for d in items.values() if not d.queued]
        if every:
            chosen = listed
        else:
            item = items.get(target) if target is not None else None
            if item is None or item.queued:
                return done(
                    failure(404, "ITEM_NOT_FOUND", "The download could not be found."),
                    "ITEM_NOT_FOUND",
                )
            chosen = [item]
        if operation == "delete":
            for item in chosen:
                account.downloads.remove(item)
        return done(envelope(None, detail="Download controlled successfully."), "ok")

    # --- exportdata -----------------------------------------------------------------------

    async def export_data(self, request: web.Request, account: Account) -> web.Response:
        """GET /torrents/exportdata: the magnet (type=magnet) or the uploaded .torrent file."""
        torrent_id = query_int(request.query, "torrent_id", None)
        if torrent_id is None:
            raise FieldProblem(("query", "torrent_id"), "missing", "Field required", None)
        kind = request.query.get("type", "magnet")
        if kind not in ("magnet", "file"):
            return failure(400, "INVALID_OPTION", "Type must be 'magnet' or 'file'.")
        torrent = account.torrents.get(torrent_id)
        if torrent is None:
            return self._not_yours(torrent_id)[0]
        content = torrent.content
        if kind == "magnet":
            return envelope(content.magnet_uri(), detail="Magnet exported successfully.")
        if content.torrent_file is None:
            return failure(404, "ITEM_NOT_FOUND", "There is no torrent file for this torrent.")
        return web.Response(
            body=content.torrent_file,
            content_type="application/x-bittorrent",
            headers={"Content-Disposition": f'attachment; filename="{content.hash}.torrent"'},
        )

    # --- queue ----------------------------------------------------------------------------

    async def get_queued(self, request: web.Request, account: Account) -> web.Response:
        """GET /queued/getqueued: queued torrents, newest first; other types are always empty."""
        query = request.query
        query_bool(query, "bypass_cache", False)  # Validated like TorBox; the queue is never stale.
        wanted = query_int(query, "id", None)
        offset = max(0, query_int(query, "offset", 0) or 0)
        limit = min(max(1, query_int(query, "limit", PAGE_LIMIT) or PAGE_LIMIT), PAGE_LIMIT)
        kind = query.get("type", "torrent")
        if kind not in ("torrent", "usenet", "webdl"):
            return failure(400, "INVALID_OPTION", "Type must be 'torrent', 'usenet' or 'webdl'.")
        if kind != "torrent":
            return self._queued_downloads(account, kind, wanted, offset, limit)
        items = account.ordered_queue()
        renderer = account.renderer(self.clock)
        auth_id = account.identity.auth_id
        if wanted is not None:
            match = next((item for item in items if item.id == wanted), None)
            if match is None:
                return not_found_quirk("No queued items found.")
            return envelope(
                renderer.queued(match, auth_id), detail="Queued item retrieved successfully."
            )
        page = [renderer.queued(item, auth_id) for item in items[offset : offset + limit]]
        # An empty queue is a 200 with an empty list (TBM's tests expect it), not the 404 quirk.
        return envelope(page, detail="Queued items retrieved successfully.")

    def _queued_downloads(
        self, account: Account, kind: str, wanted: int | None, offset: int, limit: int
    ) -> web.Response:
        """getqueued for usenet or webdl: the queued downloads of that type, newest first."""
        items = [d for d in account.downloads.ordered(kind) if d.queued]
        if wanted is not None:
            match = next((d for d in items if d.id == wanted), None)
            if match is None:
                return not_found_quirk("No queued items found.")
            return envelope(match.render_queued(), detail="Queued item retrieved successfully.")
        page = [d.render_queued() for d in items[offset : offset + limit]]
        return envelope(page, detail="Queued items retrieved successfully.")

    async def control_queued(self, request: web.Request, account: Account) -> web.Response:
        """POST /queued/controlqueued: start (into mylist) or delete queued items."""
        endpoint = "queued/controlqueued"
        body = await json_object(request)
        operation = body_str(body, "operation")
        queued_id = body_int(body, "queued_id")
        every = body_bool(body, "all", False)
        kind = body.get("type", "torrent")
        if kind in ("usenet", "webdl") and operation in QUEUED_OPERATIONS and not every:
            return self._control_queued_download(account, kind, operation, queued_id)

        def done(response: web.Response, result: str) -> web.Response:
            self._log(account, endpoint, operation, queued_id, every, response.status, result)
            return response

        if operation not in QUEUED_OPERATIONS:
            return done(
                failure(400, "INVALID_OPTION", "Operation must be 'start' or 'delete'."),
                "INVALID_OPTION",
            )
        if every and operation == "start":
            return done(
                failure(400, "INVALID_OPTION", "You cannot start all queued items at once."),
                "INVALID_OPTION",
            )
        if every:
            for queued in list(account.queued.values()):
                self.registry.remove_queued(account, queued)
            return done(envelope(None, detail="Queued items deleted successfully."), "ok")
        if queued_id is None:
            return done(
                failure(400, "MISSING_REQUIRED_OPTION", "You must provide a queued ID."),
                "MISSING_REQUIRED_OPTION",
            )
        item = account.queued.get(queued_id)
        if item is None:
            return done(
                failure(404, "ITEM_NOT_FOUND", "The queued item could not be found."),
                "ITEM_NOT_FOUND",
            )
        if operation == "start":
            self.registry.start_queued(account, item)
            return done(envelope(None, detail="Queued item started successfully."), "ok")
        self.registry.remove_queued(account, item)
        return done(envelope(None, detail="Queued item deleted successfully."), "ok")

    def _control_queued_download(
        self, account: Account, kind: str, operation: str | None, queued_id: int | None
    ) -> web.Response:
        """controlqueued with type usenet or webdl: start moves it to mylist under a new id."""
        endpoint = "queued/controlqueued"
        item = account.downloads.items[kind].get(queued_id) if queued_id is not None else None
        if item is None or not item.queued:
            response = failure(404, "ITEM_NOT_FOUND", "The queued item could not be found.")
            self._log(account, endpoint, operation, queued_id, False, 404, "ITEM_NOT_FOUND", kind)
            return response
        if operation == "start":
            account.downloads.start(item, self.registry.next_download_id, self.clock.now())
            self.registry.next_download_id += 1
            detail = "Queued item started successfully."
        else:
            account.downloads.remove(item)
            detail = "Queued item deleted successfully."
        self._log(account, endpoint, operation, queued_id, False, 200, "ok", kind)
        return envelope(None, detail=detail)

    # --- leftovers ------------------------------------------------------------------------

    async def deprecated_getqueued(self, _request: web.Request) -> web.Response:
        """The old queue endpoint, gone since early 2025."""
        self.registry.stats.count("torrents/getqueued", None, 410)
        return failure(
            410,
            "DEPRECATED",
            "This endpoint is now deprecated. Please use /v1/api/queued/getqueued instead.",
        )

    async def unknown_path(self, _request: web.Request) -> web.Response:
        """Any path no route knows."""
        self.registry.stats.count("unknown", None, 404)
        return endpoint_not_found()


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...] | None:
    """An optional list of strings in an edit body (None: not given, leave it as it is)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FieldProblem(("body", name), "list_type", "Input should be a valid list", value)
    return tuple(value)


def _truncated(response: web.Response) -> web.Response:
    """The malformed_json fault: status 200 and only the first half of the JSON body."""
    body = response.body if isinstance(response.body, bytes) else b"{}"
    return web.Response(
        body=body[: max(1, len(body) // 2)], status=200, content_type="application/json"
    )
