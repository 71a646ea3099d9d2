"""REST handlers for per-torrent automation status: telemetry, event history, seeding limits."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
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
