"""POST /torrents/createtorrent (multipart and urlencoded) and GET /torrents/exportdata."""

from __future__ import annotations

import hashlib

from aiohttp import FormData

from tests.simulator.conftest import API, Reply, Sim

HASH = "3f9a1c0d2b7e4a5f8c6d1e0b9a7c5d3e1f2a4b6c"
MAGNET = f"magnet:?xt=urn:btih:{HASH}&dn=Big.Buck.Bunny.2008.1080p"


def form(multipart: bool, **fields: str) -> FormData:
    data = FormData(default_to_multipart=multipart)
    for name, value in fields.items():
        data.add_field(name, value)
    return data


async def create(sim: Sim, key: str, data: FormData) -> Reply:
    return await sim.call("POST", f"{API}/torrents/createtorrent", key=key, data=data)


async def test_multipart_magnet_creates_a_downloading_torrent(sim: Sim) -> None:
    """A multipart magnet add answers hash, torrent_id and auth_id, and the torrent is in mylist."""
    key = (await sim.account())["api_key"]
    reply = await create(sim, key, form(True, magnet=MAGNET))
    assert reply.status == 200
    assert reply.json["success"] is True
    data = reply.json["data"]
    assert set(data) == {"hash", "torrent_id", "auth_id"}
    assert data["hash"] == HASH
    torrent = await sim.torrent(key, data["torrent_id"])
    assert torrent["hash"] == HASH
    assert torrent["name"] == "Big.Buck.Bunny.2008.1080p"
    assert torrent["magnet"] == MAGNET
    assert torrent["auth_id"] == data["auth_id"]
    assert torrent["download_state"] == "downloading"
    assert torrent["download_finished"] is False


async def test_urlencoded_magnet_with_name_override(sim: Sim) -> None:
    """An urlencoded add works too, and `name` overrides the magnet's display name."""
    key = (await sim.account())["api_key"]
    reply = await create(
        sim, key, form(False, magnet=MAGNET, name="Custom", seed="3", allow_zip="false")
    )
    assert reply.status == 200
    torrent = await sim.torrent(key, reply.json["data"]["torrent_id"])
    assert torrent["name"] == "Custom"
    assert torrent["seed_torrent"] is False
    assert torrent["allow_zipped"] is False


async def test_torrent_file_upload(sim: Sim) -> None:
    """A .torrent upload is hashed from its info dictionary and flagged torrent_file."""
    info = b"d6:lengthi1024e4:name6:Sintel12:piece lengthi16384ee"
    payload = b"d4:info" + info + b"e"
    data = FormData()
    data.add_field("file", payload, filename="x.torrent", content_type="application/x-bittorrent")
    key = (await sim.account())["api_key"]
    reply = await create(sim, key, data)
    assert reply.status == 200
    assert reply.json["data"]["hash"] == hashlib.sha1(info).hexdigest()
    torrent = await sim.torrent(key, reply.json["data"]["torrent_id"])
    assert torrent["torrent_file"] is True
    assert torrent["name"] == "Sintel"
    assert torrent["magnet"] is None
    exported = await sim.call(
        "GET",
        f"{API}/torrents/exportdata",
        key=key,
        params={"torrent_id": str(torrent["id"]), "type": "file"},
    )
    assert exported.status == 200
    assert exported.body == payload


async def test_missing_magnet_and_file(sim: Sim) -> None:
    """Neither magnet nor file is 400 MISSING_REQUIRED_OPTION."""
    key = (await sim.account())["api_key"]
    reply = await create(sim, key, form(True, name="nothing"))
    assert reply.status == 400
    assert (reply.json["success"], reply.json["error"]) == (False, "MISSING_REQUIRED_OPTION")


async def test_invalid_magnet_is_bozo(sim: Sim) -> None:
    """A magnet without a usable info-hash is 400 BOZO_TORRENT."""
    key = (await sim.account())["api_key"]
    reply = await create(sim, key, form(True, magnet="magnet:?dn=nothing"))
    assert (reply.status, reply.json["error"]) == (400, "BOZO_TORRENT")


async def test_duplicate_is_a_500_business_error(sim: Sim) -> None:
    """Adding a hash the account already has answers HTTP 500 DUPLICATE_ITEM ("already exists")."""
    key = (await sim.account())["api_key"]
    assert (await create(sim, key, form(True, magnet=MAGNET))).status == 200
    reply = await create(sim, key, form(True, magnet=MAGNET))
    assert reply.status == 500
    assert (reply.json["success"], reply.json["error"]) == (False, "DUPLICATE_ITEM")
    assert "already exists" in reply.json["detail"]


async def test_as_queued_answers_queued_id(sim: Sim) -> None:
    """as_queued puts the torrent in the queue and answers queued_id instead of torrent_id."""
    key = (await sim.account())["api_key"]
    reply = await create(sim, key, form(True, magnet=MAGNET, as_queued="true"))
    assert reply.status == 200
    data = reply.json["data"]
    assert "queued_id" in data
    assert "torrent_id" not in data
    assert data["hash"] == HASH
    queued = await sim.call("GET", f"{API}/queued/getqueued", key=key)
    assert [item["id"] for item in queued.json["data"]] == [data["queued_id"]]
    assert (await sim.fresh(key)).status == 404


async def test_add_only_if_cached(sim: Sim) -> None:
    """Uncached hashes are DOWNLOAD_NOT_CACHED; a finished torrent deleted elsewhere is a hit."""
    key = (await sim.account())["api_key"]
    refused = await create(sim, key, form(True, magnet=MAGNET, add_only_if_cached="true"))
    assert (refused.status, refused.json["error"]) == (400, "DOWNLOAD_NOT_CACHED")

    account = await sim.account(torrents=[{"profile": "seeding", "hash": HASH}])
    other = account["api_key"]
    await sim.control(other, torrent_id=account["torrent_ids"][0], operation="delete")
    hit = await create(sim, key, form(True, magnet=MAGNET, add_only_if_cached="true"))
    assert hit.status == 200
    torrent = await sim.torrent(key, hit.json["data"]["torrent_id"])
    assert torrent["download_finished"] is True
    assert torrent["cached"] is True


async def test_restore_after_archive_gives_the_same_content(sim: Sim) -> None:
    """Deleting a torrent and re-adding its exported magnet gives the same name, size and files."""
    account = await sim.account(torrents=[{"profile": "finished_inactive"}])
    key, tid = account["api_key"], account["torrent_ids"][0]
    original = await sim.torrent(key, tid)
    exported = await sim.call(
        "GET",
        f"{API}/torrents/exportdata",
        key=key,
        params={"torrent_id": str(tid), "type": "magnet"},
    )
    assert exported.status == 200
    assert exported.json["data"] == original["magnet"]
    await sim.control(key, torrent_id=tid, operation="delete")
    reply = await create(sim, key, form(True, magnet=exported.json["data"]))
    restored = await sim.torrent(key, reply.json["data"]["torrent_id"])
    assert restored["id"] != tid
    for field in ("hash", "name", "size", "files"):
        assert restored[field] == original[field], field


async def test_exportdata_errors(sim: Sim) -> None:
    """exportdata wants a torrent_id (422), a known type (400) and an existing torrent (404)."""
    account = await sim.account(mix={"seeding": 1})
    key, tid = account["api_key"], account["torrent_ids"][0]
    path = f"{API}/torrents/exportdata"
    assert (await sim.call("GET", path, key=key)).status == 422
    bad_type = await sim.call("GET", path, key=key, params={"torrent_id": str(tid), "type": "zip"})
    assert (bad_type.status, bad_type.json["error"]) == (400, "INVALID_OPTION")
    missing = await sim.call("GET", path, key=key, params={"torrent_id": "5"})
    assert (missing.status, missing.json["error"]) == (404, "ITEM_NOT_FOUND")
