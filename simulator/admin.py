"""The /_sim admin API: set up accounts and torrents, inject faults, read stats, move the clock."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.accounts import Account, Registry
from simulator.creates import PROFILES, Download
from simulator.faults import ENDPOINT_GROUPS, LIST_SHAPING, Fault, FaultKind
from simulator.model import Profile
from simulator.render import Knobs
from simulator.responses import json_response
from simulator.specs import OVERRIDE_FIELDS, SpecError, TorrentSpec, parse_overrides
from simulator.torrents import Torrent

# Enough for 1,000 x 100 and 100 x 1,000 with room to spare, but not a typo'd billion.
MAX_BULK_TORRENTS = 1_000_000
_BULK_SLICE_TORRENTS = 2_000
# The body fields that only list-shaping kinds take, by kind.
_SHAPING_FIELDS = {
    FaultKind.HIDE_TORRENTS: frozenset({"ids", "hashes"}),
    FaultKind.PARTIAL_LIST: frozenset({"fraction"}),
}
_ANY_SHAPING_FIELD = frozenset().union(*_SHAPING_FIELDS.values())
_FAULT_FIELDS = (
    frozenset({"api_key", "kind", "endpoint", "count", "seconds", "retry_after", "delay"})
    | _ANY_SHAPING_FIELD
)

_DOWNLOAD_FIELDS = frozenset(
    {"type", "profile", "name", "size", "rate", "progress", "created_ago", "original_url"}
)

AdminHandler = Callable[[web.Request], Awaitable[web.Response]]


class AdminError(Exception):
    """A bad admin request; answered as {"error": message} with the given status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def setup(app: web.Application, registry: Registry) -> None:
    """Register the admin routes on the simulator's application."""
    admin = Admin(registry)
    routes = (
        ("POST", "/_sim/accounts", admin.create_account),
        ("GET", "/_sim/accounts/{api_key}", admin.get_account),
        ("DELETE", "/_sim/accounts/{api_key}", admin.delete_account),
        ("POST", "/_sim/accounts/{api_key}/torrents", admin.add_torrent),
        ("PATCH", "/_sim/accounts/{api_key}/torrents/{torrent_id}", admin.patch_torrent),
        ("POST", "/_sim/accounts/{api_key}/downloads", admin.add_download),
        ("POST", "/_sim/bulk", admin.bulk),
        ("POST", "/_sim/faults", admin.add_fault),
        ("DELETE", "/_sim/faults/{api_key}", admin.clear_faults),
        ("GET", "/_sim/stats", admin.stats),
        ("GET", "/_sim/clock", admin.clock),
        ("POST", "/_sim/clock/advance", admin.advance_clock),
    )
    for method, path, handler in routes:
        app.router.add_route(method, path, _errors_as_json(handler))


def _errors_as_json(handler: AdminHandler) -> AdminHandler:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            response = await handler(request)
        except AdminError as exc:
            return json_response({"error": exc.message}, exc.status)
        except SpecError as exc:
            return json_response({"error": str(exc)}, 400)
        return response

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise AdminError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise AdminError(400, "the body must be a JSON object")
    return body


def _count(body: dict[str, Any], name: str, default: int, low: int = 0) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise AdminError(400, f"{name} must be an integer >= {low}")
    return value


def _seconds(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise AdminError(400, f"{name} must be a number >= 0")
    return float(value)


def _download(body: dict[str, Any], registry: Registry, account: Account, now: float) -> Download:
    """A download from an add_download body (raises AdminError naming the bad field)."""
    unknown = set(body) - _DOWNLOAD_FIELDS
    if unknown:
        raise AdminError(400, f"unknown fields: {sorted(unknown)}")
    kind = body.get("type")
    if kind not in ("usenet", "webdl"):
        raise AdminError(400, "type must be usenet or webdl")
    profile = body.get("profile", "downloading")
    if profile not in PROFILES:
        raise AdminError(400, f"profile must be one of {', '.join(PROFILES)}")
    name = body.get("name", f"{kind} download")
    url = body.get("original_url")
    if not isinstance(name, str) or not name or (url is not None and not isinstance(url, str)):
        raise AdminError(400, "name and original_url must be strings")
    progress = _seconds(body, "progress") or 0.0
    if progress > 1.0:
        raise AdminError(400, "progress is a fraction from 0 to 1")
    queued = profile == "queued"
    size: int | None = None if queued and kind == "usenet" else 1_000_000_000
    if "size" in body:
        size = _count(body, "size", 0, 1)
    download_id = registry.next_download_id
    registry.next_download_id += 1
    return Download(
        id=download_id,
        name=name,
        hash=f"{download_id:032x}",
        auth_id=account.identity.auth_id,
        created_at=time.time() - (_seconds(body, "created_ago") or 0.0),
        queued=queued,
        kind=kind,
        profile=profile,
        size=size,
        rate=_count(body, "rate", 10_000_000, 1),
        start_progress=progress,
        born=now,
        original_url=url,
    )


class Admin:
    """Handlers for the admin routes; no auth, JSON in and out."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.sim_clock = registry.clock

    def _account(self, api_key: str) -> Account:
        account = self.registry.lookup(api_key)
        if account is None:
            raise AdminError(404, f"no account with key {api_key!r}")
        return account

    async def create_account(self, request: web.Request) -> web.Response:
        """POST /_sim/accounts: a new account with listed torrents and/or a mix of profiles."""
        body = await _body(request)
        api_key = body.get("api_key")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise AdminError(400, "api_key must be a non-empty string")
        try:
            knobs = Knobs.parse(body.get("knobs"))
        except ValueError as exc:
            raise AdminError(400, str(exc)) from None
        raw_specs = body.get("torrents") or []
        if not isinstance(raw_specs, list):
            raise AdminError(400, "torrents must be a list of torrent specs")
        specs = [TorrentSpec.parse(raw) for raw in raw_specs]
        specs.extend(_mix(body.get("mix")))
        try:
            account = self.registry.create_account(api_key, knobs)
        except KeyError:
            raise AdminError(409, "an account with this api_key already exists") from None
        torrent_ids: list[int] = []
        queued_ids: list[int] = []
        for spec in specs:
            added = self.registry.add_spec(account, spec)
            (torrent_ids if isinstance(added, Torrent) else queued_ids).append(added.id)
        return json_response(
            {"api_key": account.api_key, "torrent_ids": torrent_ids, "queued_ids": queued_ids}
        )

    async def add_torrent(self, request: web.Request) -> web.Response:
        """POST /_sim/accounts/{api_key}/torrents: one more torrent (or queued item)."""
        account = self._account(request.match_info["api_key"])
        spec = TorrentSpec.parse(await _body(request))
        added = self.registry.add_spec(account, spec)
        key = "torrent_id" if isinstance(added, Torrent) else "queued_id"
        return json_response({key: added.id})

    async def add_download(self, request: web.Request) -> web.Response:
        """POST /_sim/accounts/{api_key}/downloads: one usenet or web download.

        Body: type ("usenet" or "webdl"), profile (queued, downloading, stalled, failed,
        completed; downloading by default), name, size (bytes; a queued usenet item has none
        unless given), rate (bytes a simulated second), progress (the starting fraction),
        created_ago (wall seconds before now), original_url. A queued one is in the queue
        (getqueued?type=...), not in mylist.
        """
        account = self._account(request.match_info["api_key"])
        body = await _body(request)
        item = _download(body, self.registry, account, self.sim_clock.now())
        account.downloads.add(item)
        key = "queued_id" if item.queued else "id"
        return json_response({key: item.id, "type": item.kind})

    async def patch_torrent(self, request: web.Request) -> web.Response:
        """PATCH /_sim/accounts/{api_key}/torrents/{torrent_id}: change a torrent's overrides.

        The body holds any of download_state (a string, or null to drop it), active (a boolean,
        or null) and nulls (a list of field names, [] for none); a key left out keeps its value.
        The answer is the overrides now in force. bypass_cache shows them at once; the cached
        list once its snapshot is refreshed, like any other change.
        """
        account = self._account(request.match_info["api_key"])
        torrent = self._torrent(account, request.match_info["torrent_id"])
        body = await _body(request)
        unknown = set(body) - OVERRIDE_FIELDS
        if unknown:
            raise AdminError(400, f"unknown fields: {sorted(unknown)}")
        overrides = parse_overrides(body, torrent.overrides)
        torrent.override(overrides)
        return json_response({"torrent_id": torrent.id, **overrides.describe()})

    @staticmethod
    def _torrent(account: Account, raw_id: str) -> Torrent:
        torrent = account.torrents.get(int(raw_id)) if raw_id.isdigit() else None
        if torrent is None:
            raise AdminError(404, f"no torrent {raw_id} on this account")
        return torrent

    async def get_account(self, request: web.Request) -> web.Response:
        """GET /_sim/accounts/{api_key}: everything, rendered fresh, plus the control log."""
        account = self._account(request.match_info["api_key"])
        renderer = account.renderer(self.sim_clock)
        ordered = account.ordered()
        torrents = json.loads("[" + ",".join(renderer.torrent(t) for t in ordered) + "]")
        auth_id = account.identity.auth_id
        now = time.monotonic()
        sim_now = self.sim_clock.now()
        return json_response(
            {
                "api_key": account.api_key,
                "knobs": {
                    "id_returns_list": account.knobs.id_returns_list,
                    "legacy_dates": account.knobs.legacy_dates,
                    "active_as": account.knobs.active_as,
                    "active_updated_at_now": account.knobs.active_updated_at_now,
                },
                "torrents": torrents,
                "profiles": {str(t.id): t.profile.value for t in ordered},
                "overrides": {str(t.id): t.overrides.describe() for t in ordered if t.overrides},
                "queued": [renderer.queued(item, auth_id) for item in account.ordered_queue()],
                "usenet": [
                    {**d.render(sim_now), "queued": d.queued, "password": d.password}
                    for d in account.downloads.items["usenet"].values()
                ],
                "webdl": [
                    {**d.render(sim_now), "queued": d.queued, "password": d.password}
                    for d in account.downloads.items["webdl"].values()
                ],
                "calls": dict(account.calls),
                "requests": account.requests,
                "faults": [fault.describe(now) for fault in account.faults.pending(now)],
            }
        )

    async def delete_account(self, request: web.Request) -> web.Response:
        """DELETE /_sim/accounts/{api_key}: the key is revoked (BAD_TOKEN) from now on."""
        account = self._account(request.match_info["api_key"])
        self.registry.delete_account(account)
        return json_response({"api_key": account.api_key, "deleted": True})

    async def bulk(self, request: web.Request) -> web.Response:
        """POST /_sim/bulk: many accounts with a realistic mix, for benchmarks."""
        body = await _body(request)
        accounts = _count(body, "accounts", 0)
        per_account = _count(body, "torrents_per_account", 0)
        prefix = body.get("key_prefix", "bench")
        if not isinstance(prefix, str):
            raise AdminError(400, "key_prefix must be a string")
        if accounts * per_account > MAX_BULK_TORRENTS:
            raise AdminError(400, f"at most {MAX_BULK_TORRENTS} torrents per bulk request")
        try:
            knobs = Knobs.parse(body.get("knobs"))
        except ValueError as exc:
            raise AdminError(400, str(exc)) from None
        keys: list[str] = []
        while len(keys) < accounts:
            # A large bulk takes seconds; building it in slices keeps the server answering.
            chunk = min(accounts - len(keys), max(1, _BULK_SLICE_TORRENTS // max(1, per_account)))
            keys.extend(self.registry.bulk(chunk, per_account, prefix, knobs))
            await asyncio.sleep(0)
        return json_response({"api_keys": keys})

    async def add_fault(self, request: web.Request) -> web.Response:
        """POST /_sim/faults: schedule a fault for the next requests of one key.

        Body: api_key, kind, endpoint (a group of ENDPOINT_GROUPS, "any" by default), count (how
        many requests, 1 by default), seconds (how long; alone it means every request for that
        long), retry_after and delay (for the kinds that use them). Faults of a key fire in the
        order they were added, one per request. The list kinds fire on mylist only:

        - empty_once: the empty-list answer (404, ITEM_NOT_FOUND, success true).
        - hide_torrents: ids (torrent ids) and/or hashes (info-hashes, resolved to ids now), all
          on the account: mylist answers as if those torrents did not exist (200 with the rest;
          ?id= for one of them, or nothing left, is the empty-list 404).
        - partial_list: fraction in (0, 1]: each response leaves out ceil(fraction x N) of the N
          torrents, picked at random (repeatable for a seed), and still answers 200, with data
          [] when nothing is left on the page; ?id= for a left-out torrent is the empty-list 404.
        """
        body = await _body(request)
        unknown = set(body) - _FAULT_FIELDS
        if unknown:
            raise AdminError(400, f"unknown fault fields: {sorted(unknown)}")
        api_key = body.get("api_key")
        if not isinstance(api_key, str):
            raise AdminError(400, "api_key is required")
        account = self._account(api_key)
        try:
            kind = FaultKind(str(body.get("kind")))
        except ValueError:
            raise AdminError(400, f"kind must be one of {[k.value for k in FaultKind]}") from None
        endpoint = body.get("endpoint", "any")
        if endpoint not in ENDPOINT_GROUPS:
            raise AdminError(400, f"endpoint must be one of {list(ENDPOINT_GROUPS)}")
        _check_shaping_fields(body, kind, endpoint)
        seconds = _seconds(body, "seconds")
        # A duration alone means "every request for that long"; otherwise one request by default.
        default_count = math.inf if seconds is not None else 1
        count = _count(body, "count", 1, low=1) if "count" in body else default_count
        now = time.monotonic()
        fault = Fault(
            kind=kind,
            endpoint=endpoint,
            remaining=count,
            until=now + seconds if seconds is not None else math.inf,
            retry_after=_seconds(body, "retry_after"),
            delay=_seconds(body, "delay"),
            hidden=_hidden(body, account) if kind is FaultKind.HIDE_TORRENTS else frozenset(),
            fraction=_fraction(body) if kind is FaultKind.PARTIAL_LIST else 0.0,
            # Its own stream: the account's generator shapes torrents added later.
            rng=random.Random(f"{self.registry.config.seed}:{api_key}:{account.faults.added}"),
        )
        account.faults.add(fault)
        return json_response(
            {"api_key": api_key, "fault": fault.describe(now), "pending": len(account.faults)}
        )

    async def clear_faults(self, request: web.Request) -> web.Response:
        """DELETE /_sim/faults/{api_key}: drop every pending fault of the key."""
        account = self._account(request.match_info["api_key"])
        return json_response({"api_key": account.api_key, "cleared": account.faults.clear()})

    async def stats(self, _request: web.Request) -> web.Response:
        """GET /_sim/stats: request counts per endpoint, per key and per status."""
        return json_response(self.registry.stats.report())

    async def clock(self, _request: web.Request) -> web.Response:
        """GET /_sim/clock: the simulated time and its scale."""
        return json_response(self._clock_state())

    async def advance_clock(self, request: web.Request) -> web.Response:
        """POST /_sim/clock/advance: move simulated time forward by hand."""
        seconds = _seconds(await _body(request), "seconds")
        if seconds is None:
            raise AdminError(400, "seconds is required")
        self.sim_clock.advance(seconds)
        return json_response(self._clock_state())

    def _clock_state(self) -> dict[str, float]:
        return {"sim_seconds": self.sim_clock.now(), "time_scale": self.sim_clock.time_scale}


def _check_shaping_fields(body: dict[str, Any], kind: FaultKind, endpoint: str) -> None:
    """List-fault fields go with their own kind only, and list faults with mylist only."""
    stray = body.keys() & (_ANY_SHAPING_FIELD - _SHAPING_FIELDS.get(kind, frozenset()))
    if stray:
        raise AdminError(400, f"{sorted(stray)} do not apply to {kind.value}")
    if kind in LIST_SHAPING and endpoint not in ("any", "mylist"):
        raise AdminError(400, f"{kind.value} applies to the mylist endpoint only")


def _hidden(body: dict[str, Any], account: Account) -> frozenset[int]:
    """The torrent ids a hide_torrents fault names by id or by hash; each must be on the account."""
    ids = body.get("ids", [])
    hashes = body.get("hashes", [])
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise AdminError(400, "ids must be a list of torrent ids")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise AdminError(400, "hashes must be a list of info-hashes")
    missing = [i for i in ids if i not in account.torrents]
    if missing:
        raise AdminError(400, f"ids not on this account: {missing}")
    by_hash = {t.content.hash: t.id for t in account.torrents.values()}
    unknown = [h for h in hashes if h.lower() not in by_hash]
    if unknown:
        raise AdminError(400, f"hashes not on this account: {unknown}")
    hidden = frozenset(ids) | {by_hash[h.lower()] for h in hashes}
    if not hidden:
        raise AdminError(400, "hide_torrents needs ids or hashes")
    return hidden


def _fraction(body: dict[str, Any]) -> float:
    value = body.get("fraction")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise AdminError(400, "fraction must be a number in (0, 1]")
    return float(value)


def _mix(raw: object) -> list[TorrentSpec]:
    """Specs for a {"profile": count} mix, in the order given."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise AdminError(400, "mix must be an object of profile -> count")
    specs: list[TorrentSpec] = []
    for name, count in raw.items():
        try:
            profile = Profile(name)
        except ValueError:
            raise AdminError(400, f"unknown profile in mix: {name!r}") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise AdminError(400, f"mix count for {name} must be an integer >= 0")
        specs.extend(TorrentSpec(profile=profile) for _ in range(count))
    return specs
