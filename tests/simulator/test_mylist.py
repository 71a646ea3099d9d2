"""GET /torrents/mylist: fields, formats, paging, the empty-list quirk, knobs and caching."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from simulator.render import TORRENT_FIELDS as TORRENT_NAMES
from tests.simulator.conftest import API, Sim, SimFactory

DATE_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DATE_LEGACY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")

TORRENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "auth_id": str,
    "server": int,
    "hash": str,
    "name": str,
    "magnet": (str, type(None)),
    "size": int,
    "active": bool,
    "created_at": str,
    "updated_at": str,
    "download_state": str,
    "seeds": int,
    "peers": int,
    "ratio": float,
    "progress": float,
    "download_speed": int,
    "upload_speed": int,
    "eta": int,
    "torrent_file": bool,
    "expires_at": (str, type(None)),
    "download_present": bool,
    "download_finished": bool,
    "files": list,
    "download_path": (str, type(None)),
    "inactive_check": int,
    "availability": float,
    "tracker": (str, type(None)),
    "tracker_message": (str, type(None)),
    "total_uploaded": int,
    "total_downloaded": int,
    "cached": bool,
    "cached_at": (str, type(None)),
    "owner": (str, type(None)),
    "seed_torrent": bool,
    "allow_zipped": bool,
    "long_term_seeding": bool,
    "private": bool,
    "alternative_hashes": list,
    "tags": list,
    "airlocked": bool,
}
FILE_FIELDS = {
    "id",
    "md5",
    "hash",
    "name",
    "size",
    "zipped",
    "s3_path",
    "infected",
    "mimetype",
    "short_name",
    "absolute_path",
    "opensubtitles_hash",
}


async def test_every_documented_field_with_its_type(sim: Sim) -> None:
    """Each torrent object carries every documented field, with the documented JSON type."""
    key = (await sim.account(mix={"downloading": 1, "seeding": 1, "stalled": 1}))["api_key"]
    reply = await sim.fresh(key)
    assert reply.status == 200
    body = reply.json
    assert (body["success"], body["error"]) == (True, None)
    assert len(body["data"]) == 3
    for torrent in body["data"]:
        assert set(torrent) == set(TORRENT_FIELDS)
        for field, kind in TORRENT_FIELDS.items():
            assert isinstance(torrent[field], kind), field
        assert re.fullmatch(r"[0-9a-f]{40}", torrent["hash"])
        assert 0.0 <= torrent["progress"] <= 1.0


async def test_files_array_shape(sim: Sim) -> None:
    """Files carry the documented keys, paths under the root folder, and sizes that add up."""
    key = (await sim.account(torrents=[{"profile": "seeding"}]))["api_key"]
    torrent = (await sim.fresh(key)).json["data"][0]
    assert torrent["files"]
    for entry in torrent["files"]:
        assert set(entry) == FILE_FIELDS
        assert entry["name"].startswith(torrent["name"] + "/")
        assert entry["hash"] == torrent["hash"]
        assert entry["name"].endswith(entry["short_name"])
    assert sum(entry["size"] for entry in torrent["files"]) == torrent["size"]


async def test_dates_use_z_format(sim: Sim) -> None:
    """Dates are UTC in %Y-%m-%dT%H:%M:%SZ."""
    key = (await sim.account(torrents=[{"profile": "seeding"}]))["api_key"]
    torrent = (await sim.fresh(key)).json["data"][0]
    for field in ("created_at", "updated_at", "expires_at", "cached_at"):
        assert DATE_Z.match(torrent[field]), field


async def test_legacy_dates_knob(sim: Sim) -> None:
    """With legacy_dates, dates carry microseconds and a +00:00 offset."""
    account = await sim.account(torrents=[{"profile": "seeding"}], knobs={"legacy_dates": True})
    torrent = (await sim.fresh(account["api_key"])).json["data"][0]
    for field in ("created_at", "updated_at", "expires_at", "cached_at"):
        assert DATE_LEGACY.match(torrent[field]), field


async def test_active_as_int_and_string(sim: Sim) -> None:
    """The active_as knob renders active as 1/0 or as "true"/"false"."""
    specs = [{"profile": "seeding"}, {"profile": "finished_inactive"}]
    as_int = await sim.account(torrents=specs, knobs={"active_as": "int"})
    as_str = await sim.account(torrents=specs, knobs={"active_as": "string"})
    ints = {t["id"]: t["active"] for t in (await sim.fresh(as_int["api_key"])).json["data"]}
    strs = {t["id"]: t["active"] for t in (await sim.fresh(as_str["api_key"])).json["data"]}
    assert [ints[i] for i in as_int["torrent_ids"]] == [1, 0]
    assert [strs[i] for i in as_str["torrent_ids"]] == ["true", "false"]


async def test_active_updated_at_now_knob(sim: Sim) -> None:
    """With active_updated_at_now, an active torrent whose bytes stand still is updated now."""
    specs = [
        {"profile": "dead_seed", "age_seconds": 86_400},
        {"profile": "finished_inactive", "age_seconds": 86_400},
    ]
    churning = await sim.account(torrents=specs, knobs={"active_updated_at_now": True})
    settled = await sim.account(torrents=specs)
    for account, dead_seed_is_now in ((churning, True), (settled, False)):
        listed = {t["id"]: t for t in (await sim.fresh(account["api_key"])).json["data"]}
        dead, inactive = (listed[i] for i in account["torrent_ids"])
        now = datetime.now(UTC)
        for torrent, is_now in ((dead, dead_seed_is_now), (inactive, False)):
            updated = datetime.fromisoformat(torrent["updated_at"].replace("Z", "+00:00"))
            assert (abs((now - updated).total_seconds()) < 60) is is_now, torrent["updated_at"]
    state = await sim.state(churning["api_key"])
    assert state["knobs"]["active_updated_at_now"] is True


async def test_empty_account_is_404_with_success_true(sim: Sim) -> None:
    """An account without torrents gets HTTP 404, ITEM_NOT_FOUND, and success true."""
    key = (await sim.account())["api_key"]
    for reply in (await sim.fresh(key), await sim.mylist(key)):
        assert reply.status == 404
        assert reply.json["success"] is True
        assert reply.json["error"] == "ITEM_NOT_FOUND"
        assert reply.json["data"] is None


async def test_id_returns_a_single_object(sim: Sim) -> None:
    """mylist?id= answers the torrent as an object, not a list."""
    account = await sim.account(mix={"seeding": 2})
    wanted = account["torrent_ids"][1]
    reply = await sim.fresh(account["api_key"], id=str(wanted))
    assert reply.status == 200
    assert isinstance(reply.json["data"], dict)
    assert reply.json["data"]["id"] == wanted


async def test_id_returns_list_knob(sim: Sim) -> None:
    """With id_returns_list, mylist?id= answers a one-element list (a quirk seen in the wild)."""
    account = await sim.account(mix={"seeding": 1}, knobs={"id_returns_list": True})
    wanted = account["torrent_ids"][0]
    data = (await sim.fresh(account["api_key"], id=str(wanted))).json["data"]
    assert isinstance(data, list)
    assert [t["id"] for t in data] == [wanted]


async def test_unknown_id_is_the_not_found_quirk(sim: Sim) -> None:
    """An id the account does not have answers like an empty list."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    reply = await sim.fresh(key, id="1")
    assert (reply.status, reply.json["error"]) == (404, "ITEM_NOT_FOUND")


async def test_newest_first(sim: Sim) -> None:
    """Torrents come newest first by creation date."""
    specs = [
        {"profile": "seeding", "age_seconds": 3600},
        {"profile": "seeding", "age_seconds": 60},
        {"profile": "seeding", "age_seconds": 86400},
    ]
    account = await sim.account(torrents=specs)
    old_to_new = [account["torrent_ids"][i] for i in (2, 0, 1)]
    data = (await sim.fresh(account["api_key"])).json["data"]
    assert [t["id"] for t in data] == old_to_new[::-1]
    created = [t["created_at"] for t in data]
    assert created == sorted(created, reverse=True)


async def test_offset_and_limit_page_through(sim: Sim) -> None:
    """offset/limit slice the newest-first list; a page past the end is the empty quirk."""
    account = await sim.account(mix={"finished_inactive": 5})
    key = account["api_key"]
    everything = [t["id"] for t in (await sim.fresh(key)).json["data"]]
    pages: list[Any] = []
    for offset in (0, 2, 4):
        reply = await sim.fresh(key, offset=str(offset), limit="2")
        pages.extend(t["id"] for t in reply.json["data"])
    assert pages == everything
    past = await sim.fresh(key, offset="5", limit="2")
    assert (past.status, past.json["error"], past.json["success"]) == (404, "ITEM_NOT_FOUND", True)


async def test_default_and_maximum_page_is_1000(sim: Sim) -> None:
    """Without limit a page holds 1000 items, and a larger limit is capped at 1000."""
    key = (await sim.account(mix={"finished_inactive": 1001}))["api_key"]
    assert len((await sim.fresh(key)).json["data"]) == 1000
    assert len((await sim.fresh(key, limit="5000")).json["data"]) == 1000
    assert len((await sim.fresh(key, offset="1000")).json["data"]) == 1


async def test_bad_query_values_are_fastapi_422(sim: Sim) -> None:
    """Unparsable query values answer FastAPI's 422 shape, without the TorBox envelope."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    reply = await sim.mylist(key, bypass_cache="maybe")
    assert reply.status == 422
    assert reply.json["detail"][0]["loc"] == ["query", "bypass_cache"]
    assert reply.json["detail"][0]["type"] == "bool_parsing"
    reply = await sim.mylist(key, limit="ten")
    assert reply.status == 422
    assert reply.json["detail"][0]["type"] == "int_parsing"


async def test_bypass_cache_accepts_python_style_true(sim: Sim) -> None:
    """bypass_cache=True (as C# clients send it) counts as true."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    before = (await sim.mylist(key)).json["data"]
    await sim.add(key, profile="seeding")
    assert len((await sim.mylist(key, bypass_cache="True")).json["data"]) == len(before) + 1


async def test_without_bypass_the_list_is_a_stale_snapshot(sim: Sim) -> None:
    """Without bypass_cache the list is served from a snapshot; bypass_cache shows the truth."""
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    first = (await sim.mylist(key)).json["data"]
    gone = account["torrent_ids"][0]
    assert (await sim.control(key, torrent_id=gone, operation="delete")).status == 200
    await sim.add(key, profile="downloading")
    await sim.advance(3600)
    assert (await sim.mylist(key)).json["data"] == first
    cached_one = await sim.mylist(key, id=str(gone))
    assert cached_one.status == 200
    assert cached_one.json["data"]["id"] == gone
    fresh = (await sim.fresh(key)).json["data"]
    assert gone not in [t["id"] for t in fresh]
    assert len(fresh) == 2


async def test_cache_seconds_zero_means_always_fresh(make_sim: SimFactory) -> None:
    """With cache_seconds 0 the plain list already reflects every change."""
    sim = await make_sim(cache_seconds=0)
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    assert len((await sim.mylist(key)).json["data"]) == 1
    await sim.add(key, profile="seeding")
    assert len((await sim.mylist(key)).json["data"]) == 2


async def test_envelope_detail_and_content_type(sim: Sim) -> None:
    """mylist answers JSON with the documented success detail."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    reply = await sim.call("GET", f"{API}/torrents/mylist", key=key)
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["detail"] == "Torrent list retrieved successfully."


async def test_nullable_names_are_exactly_the_rendered_fields(sim: Sim) -> None:
    """The names `nulls` accepts are the fields mylist renders, no more and no fewer."""
    key = (await sim.account(mix={"seeding": 1, "metadl": 1}))["api_key"]
    for torrent in (await sim.fresh(key)).json["data"]:
        assert set(torrent) == TORRENT_NAMES == set(TORRENT_FIELDS)
