"""REST handlers for per-torrent automation status: telemetry, event history, seeding limits."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import grpc
from aiohttp import web
from pydantic import BaseModel, ConfigDict
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb

from gateway import bodies
from gateway.api import Answer, Query, Route, answer, flag, query, whole
from gateway.handlers import Handlers
from gateway.inputs import path_id
from gateway.jsonview import to_json


class Torrents(Answer):
    """Every torrent's derived telemetry, last action and why, and protection."""

    torrents: list[dict[str, Any]]
    observed_at: str | None


class TorrentEvents(Answer):
    """One torrent's synthetic event history, newest first."""

    events: list[dict[str, Any]]


class History(Answer):
    """One torrent's transfer history: byte counters and speeds at each kept sample."""

    samples: list[dict[str, Any]]
    observed_since: str | None


class Polling(BaseModel):
    """The scheduler's view of the caller's polling (it owns time): the next poll, key health.

    ``next_poll_at`` is null when no poll is scheduled (a key not synced yet, stopped after
    refusals, or removed); ``key_health`` is healthy, degraded, failing, auth_failed, or
    unknown before the key's first fetch.
    """

    model_config = ConfigDict(frozen=True)

    scheduled: bool
    next_poll_at: str | None
    interval_seconds: float | None
    key_health: str
    consecutive_failures: int
    last_error_code: str | None
    last_success_at: str | None
    last_failure_at: str | None
    # True while TorBox is down for most users: due polls are skipped until it answers again.
    paused: bool


class AccountState(BaseModel):
    """What the backend knows of the caller's automation: polling and the rules' reach.

    ``polling`` is null when the scheduler did not answer in time (unknown, not "no poll").
    """

    model_config = ConfigDict(frozen=True)

    status: str
    last_poll_at: str | None
    last_seen_at: str | None
    torrent_count: int
    has_enabled_rules: bool
    created_at: str | None
    polling: Polling | None


class Account(Answer):
    """The caller's automation health."""

    account: AccountState


class AccountEvents(Answer):
    """The caller's account-level events (AUTOMATION_HELD: actions held and why), newest first."""

    events: list[dict[str, Any]]


class Limits(Answer):
    """The torrent's own seeding limits (null when it has none)."""

    limits: dict[str, Any] | None


AssetTypeName = Literal["torrent", "usenet", "webdl"]
_ASSET_TYPES = {
    "torrent": tpb.ASSET_TYPE_TORRENT,
    "usenet": tpb.ASSET_TYPE_USENET,
    "webdl": tpb.ASSET_TYPE_WEBDL,
}


class TorrentsQuery(Query):
    """Whether items no longer on the account are listed too, and which types.

    `type` is ours (TBM's frontend never sends it): without it only torrents are listed, in
    the shape TBM knows; `usenet`, `webdl` or `all` list those types, each item with its
    `asset_type` (absent on a torrent).
    """

    include_removed: Annotated[bool, flag()] = False
    type: Literal["torrent", "usenet", "webdl", "all"] = "torrent"


class EventsQuery(Query):
    """How many events to return, and the type the id belongs to (a torrent by default)."""

    limit: Annotated[int, whole(1, 1000)] = 100
    type: AssetTypeName = "torrent"


# The scheduler answers from memory; a slow one leaves the polling unknown, not the page waiting.
POLLING_TIMEOUT = 3.0


def _torrent_id(request: web.Request) -> int:
    return path_id(request, "torrent_id")


async def torrents(h: Handlers, request: web.Request) -> web.Response:
    """Per-torrent automation status."""
    caller = await h.caller(request)
    wanted = query(request, TorrentsQuery)
    types = list(_ASSET_TYPES.values()) if wanted.type == "all" else [_ASSET_TYPES[wanted.type]]
    response = await h.b.userstore(caller.auth_id).ListTorrents(
        pb.ListTorrentsRequest(
            auth_id=caller.auth_id, include_removed=wanted.include_removed, asset_types=types
        ),
        **h.b.opts(),
    )
    body = to_json(response)
    return answer(Torrents(torrents=body["torrents"], observed_at=body["observed_at"]))


async def torrent_events(h: Handlers, request: web.Request) -> web.Response:
    """One torrent's event history."""
    caller = await h.caller(request)
    torrent_id = _torrent_id(request)
    wanted = query(request, EventsQuery)
    response = await h.b.userstore(caller.auth_id).ListTorrentEvents(
        pb.ListTorrentEventsRequest(
            auth_id=caller.auth_id,
            torrent_id=torrent_id,
            limit=wanted.limit,
            asset_type=_ASSET_TYPES[wanted.type],
        ),
        **h.b.opts(),
    )
    return answer(TorrentEvents(events=to_json(response)["events"]))


async def torrent_history(h: Handlers, request: web.Request) -> web.Response:
    """One torrent's transfer history."""
    caller = await h.caller(request)
    response = await h.b.userstore(caller.auth_id).GetTorrentHistory(
        pb.GetTorrentHistoryRequest(auth_id=caller.auth_id, torrent_id=_torrent_id(request)),
        **h.b.opts(),
    )
    body = to_json(response)
    return answer(History(samples=body["samples"], observed_since=body["observed_since"]))


async def _polling(h: Handlers, auth_id: str) -> Polling | None:
    """The scheduler's view of the user's polling; None when it does not answer in time."""
    try:
        response = await h.b.scheduler(auth_id).GetUserPolling(
            spb.GetUserPollingRequest(auth_id=auth_id), **h.b.opts(POLLING_TIMEOUT)
        )
    except grpc.aio.AioRpcError:
        return None
    body = to_json(response)
    return Polling(
        scheduled=body["scheduled"],
        next_poll_at=body["next_poll_at"],
        interval_seconds=body["poll_interval_seconds"],
        key_health=body["key_health"],
        consecutive_failures=body["consecutive_failures"],
        last_error_code=body["last_error_code"],
        last_success_at=body["last_success_at"],
        last_failure_at=body["last_failure_at"],
        paused=body["polling_paused"],
    )


async def account(h: Handlers, request: web.Request) -> web.Response:
    """The caller's automation health."""
    caller = await h.caller(request)
    response, polling = await asyncio.gather(
        h.b.userstore(caller.auth_id).GetUser(
            pb.GetUserRequest(auth_id=caller.auth_id), **h.b.opts()
        ),
        _polling(h, caller.auth_id),
    )
    user = to_json(response.user)
    return answer(
        Account(
            account=AccountState(
                status=str(user["status"]).removeprefix("USER_STATUS_").lower(),
                last_poll_at=user["last_poll_at"],
                last_seen_at=user["last_seen_at"],
                torrent_count=user["torrent_count"],
                has_enabled_rules=user["has_enabled_rules"],
                created_at=user["created_at"],
                polling=polling,
            )
        )
    )


async def account_events(h: Handlers, request: web.Request) -> web.Response:
    """The caller's account-level events."""
    caller = await h.caller(request)
    limit = query(request, EventsQuery).limit
    response = await h.b.userstore(caller.auth_id).ListAccountEvents(
        pb.ListAccountEventsRequest(auth_id=caller.auth_id, limit=limit), **h.b.opts()
    )
    return answer(AccountEvents(events=to_json(response)["events"]))


async def get_limits(h: Handlers, request: web.Request) -> web.Response:
    """The torrent's own seeding limits."""
    caller = await h.caller(request)
    response = await h.b.userstore(caller.auth_id).GetTorrentLimits(
        pb.GetTorrentLimitsRequest(auth_id=caller.auth_id, torrent_id=_torrent_id(request)),
        **h.b.opts(),
    )
    return answer(Limits(limits=to_json(response)["limits"]))


async def set_limits(h: Handlers, request: web.Request) -> web.Response:
    """Set seeding limits that override rules until reached."""
    caller = await h.caller(request)
    torrent_id = _torrent_id(request)
    body = await bodies.read(request, bodies.SetLimits)
    message = pb.SetTorrentLimitsRequest(auth_id=caller.auth_id, torrent_id=torrent_id)
    if body.seed_ratio is not None:
        message.seed_ratio = body.seed_ratio
    if body.seed_time_hours is not None:
        message.seed_time_hours = body.seed_time_hours
    response = await h.b.userstore(caller.auth_id).SetTorrentLimits(message, **h.b.opts())
    return answer(Limits(limits=to_json(response)["limits"]))


async def clear_limits(h: Handlers, request: web.Request) -> web.Response:
    """Remove the torrent's seeding limits."""
    caller = await h.caller(request)
    await h.b.userstore(caller.auth_id).SetTorrentLimits(
        pb.SetTorrentLimitsRequest(
            auth_id=caller.auth_id, torrent_id=_torrent_id(request), clear=True
        ),
        **h.b.opts(),
    )
    return answer(Limits(limits=None))


_LIMITS = "/api/automation/torrents/{torrent_id}/limits"

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/automation/account",
        account,
        "The caller's automation health: key status and health, last and next poll, torrents, "
        "whether a rule is on",
        answer=Account,
        tag="torrents",
    ),
    Route(
        "GET",
        "/api/automation/account/events",
        account_events,
        "The caller's account-level events, newest first: AUTOMATION_HELD says which actions a "
        "safety cap held and why",
        query=EventsQuery,
        answer=AccountEvents,
        tag="torrents",
    ),
    Route(
        "GET",
        "/api/automation/torrents",
        torrents,
        "Per-torrent automation status: derived telemetry, last action and why, protection; "
        "?type=usenet|webdl|all lists usenet and web downloads (ours: TBM never sends it)",
        query=TorrentsQuery,
        answer=Torrents,
        tag="torrents",
    ),
    Route(
        "GET",
        "/api/automation/torrents/{torrent_id}/events",
        torrent_events,
        "One torrent's synthetic event history, newest first",
        query=EventsQuery,
        answer=TorrentEvents,
        tag="torrents",
    ),
    Route(
        "GET",
        "/api/automation/torrents/{torrent_id}/history",
        torrent_history,
        "One torrent's transfer history, oldest first: byte counters at each kept sample (a "
        "week, thinned by age) and the average speeds since the previous one",
        answer=History,
        tag="torrents",
    ),
    Route(
        "GET",
        _LIMITS,
        get_limits,
        "The torrent's own seeding limits",
        answer=Limits,
        tag="torrents",
    ),
    Route(
        "PUT",
        _LIMITS,
        set_limits,
        "Set seeding limits that override rules until reached",
        body=bodies.SetLimits,
        answer=Limits,
        tag="torrents",
    ),
    Route(
        "DELETE",
        _LIMITS,
        clear_limits,
        "Remove the torrent's seeding limits",
        answer=Limits,
        tag="torrents",
    ),
)
