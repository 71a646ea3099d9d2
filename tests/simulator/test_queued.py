"""GET /queued/getqueued and POST /queued/controlqueued."""

from __future__ import annotations

from typing import Any

from aiohttp import FormData

from tests.simulator.conftest import API, Reply, Sim

QUEUED_FIELDS = {"id", "auth_id", "created_at", "magnet", "torrent_file", "hash", "name", "type"}


async def get_queued(sim: Sim, key: str, **params: str) -> Reply:
    return await sim.call("GET", f"{API}/queued/getqueued", key=key, params=params)


async def control_queued(sim: Sim, key: str, **body: Any) -> Reply:
    return await sim.call("POST", f"{API}/queued/controlqueued", key=key, json_body=body)


async def test_queued_items_have_the_documented_fields(sim: Sim) -> None:
    """Queued items are small objects with id, auth_id, created_at, magnet, hash, name and type."""
    account = await sim.account(mix={"queued": 2})
    reply = await get_queued(sim, account["api_key"])
    assert reply.status == 200
    items = reply.json["data"]
    assert sorted(item["id"] for item in items) == sorted(account["queued_ids"])
    for item in items:
        assert set(item) == QUEUED_FIELDS
        assert item["type"] == "torrent"
        assert item["magnet"].startswith("magnet:?xt=urn:btih:")


async def test_empty_queue_is_an_empty_list(sim: Sim) -> None:
    """An empty queue answers 200 with an empty list (TBM's tests expect it; not mylist's 404)."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    reply = await get_queued(sim, key)
    assert (reply.status, reply.json["success"], reply.json["data"]) == (200, True, [])


async def test_id_and_other_types(sim: Sim) -> None:
    """id= picks one item as an object; usenet and webdl queues are empty here."""
    account = await sim.account(mix={"queued": 2})
    key, qid = account["api_key"], account["queued_ids"][1]
    one = await get_queued(sim, key, id=str(qid))
    assert one.status == 200
    assert one.json["data"]["id"] == qid
    assert (await get_queued(sim, key, type="usenet")).json["data"] == []


async def test_start_moves_the_item_into_mylist(sim: Sim) -> None:
    """start removes the queued item and adds a downloading torrent with a new id and same hash."""
    account = await sim.account(mix={"queued": 1})
    key, qid = account["api_key"], account["queued_ids"][0]
    item = (await get_queued(sim, key)).json["data"][0]
    reply = await control_queued(sim, key, queued_id=qid, operation="start")
    assert reply.status == 200
    assert reply.json["success"] is True
    assert (await get_queued(sim, key)).json["data"] == []
    torrents = (await sim.fresh(key)).json["data"]
    assert len(torrents) == 1
    torrent = torrents[0]
    assert torrent["hash"] == item["hash"]
    assert torrent["id"] != qid
    assert torrent["download_state"] == "downloading"
    assert torrent["active"] is True


async def test_delete_removes_the_item(sim: Sim) -> None:
    """delete drops the queued item without touching mylist."""
    account = await sim.account(mix={"queued": 2})
    key = account["api_key"]
    reply = await control_queued(sim, key, queued_id=account["queued_ids"][0], operation="delete")
    assert reply.status == 200
    remaining = [item["id"] for item in (await get_queued(sim, key)).json["data"]]
    assert remaining == [account["queued_ids"][1]]


async def test_delete_all(sim: Sim) -> None:
    """delete with all=true empties the queue."""
    key = (await sim.account(mix={"queued": 3}))["api_key"]
    assert (await control_queued(sim, key, operation="delete", all=True)).status == 200
    assert (await get_queued(sim, key)).json["data"] == []


async def test_controlqueued_errors(sim: Sim) -> None:
    """Unknown operations, start with all, a missing id and an unknown id are refused."""
    account = await sim.account(mix={"queued": 1})
    key, qid = account["api_key"], account["queued_ids"][0]
    cases = [
        ({"queued_id": qid, "operation": "pause"}, 400, "INVALID_OPTION"),
        ({"operation": "start", "all": True}, 400, "INVALID_OPTION"),
        ({"operation": "delete"}, 400, "MISSING_REQUIRED_OPTION"),
        ({"queued_id": 1, "operation": "delete"}, 404, "ITEM_NOT_FOUND"),
    ]
    for body, status, code in cases:
        reply = await control_queued(sim, key, **body)
        assert (reply.status, reply.json["error"]) == (status, code), body
    log = (await sim.state(key))["requests"]
    assert [entry["result"] for entry in log] == [code for _, _, code in cases]
    assert {entry["endpoint"] for entry in log} == {"queued/controlqueued"}


async def test_queued_torrent_file_upload_shape(sim: Sim) -> None:
    """A queued .torrent upload has a null magnet and torrent_file as a string, as TorBox sends."""
    info = b"d6:lengthi1024e4:name6:Sintel12:piece lengthi16384ee"
    data = FormData()
    data.add_field("file", b"d4:info" + info + b"e", filename="x.torrent")
    data.add_field("as_queued", "true")
    key = (await sim.account())["api_key"]
    reply = await sim.call("POST", f"{API}/torrents/createtorrent", key=key, data=data)
    assert reply.status == 200
    item = (await get_queued(sim, key)).json["data"][0]
    assert set(item) == QUEUED_FIELDS
    assert item["magnet"] is None
    assert isinstance(item["torrent_file"], str)
    assert (item["id"], item["hash"], item["name"]) == (
        reply.json["data"]["queued_id"],
        reply.json["data"]["hash"],
        "Sintel",
    )
