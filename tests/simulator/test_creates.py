"""The create endpoints as the upload queue meets them: budget, 429s, duplicates, bad input."""

from __future__ import annotations

import asyncio
import time

from aiohttp import FormData

from tests.simulator.conftest import API, Reply, Sim, SimFactory


def magnet(i: int) -> str:
    """A distinct, valid magnet."""
    return f"magnet:?xt=urn:btih:{i:040x}&dn=Item.{i}"


def form(**fields: str | tuple[str, bytes]) -> FormData:
    """A multipart body as TBM's worker sends it (a tuple is a file: name and bytes)."""
    data = FormData()
    for name, value in fields.items():
        if isinstance(value, tuple):
            data.add_field(name, value[1], filename=value[0])
        else:
            data.add_field(name, value)
    return data


async def create(sim: Sim, key: str, endpoint: str, **fields: str | tuple[str, bytes]) -> Reply:
    """One create call."""
    return await sim.call("POST", f"{API}/{endpoint}", key=key, data=form(**fields))


async def test_uncached_budget_headers_then_bare_429_then_reopens(make_sim: SimFactory) -> None:
    """Each uncached create shows the 60-style envelope; past it a bare 429; the window reopens."""
    sim = await make_sim(uncached_per_hour=3, uncached_window_seconds=1.0)
    key = (await sim.account())["api_key"]
    remaining = []
    for i in range(3):
        reply = await create(sim, key, "torrents/createtorrent", magnet=magnet(i))
        assert reply.status == 200, reply.json
        assert reply.headers["x-ratelimit-limit"] == "3"
        assert float(reply.headers["x-ratelimit-reset"]) > time.time() - 1
        remaining.append(int(reply.headers["x-ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    refused = await create(sim, key, "torrents/createtorrent", magnet=magnet(9))
    assert refused.status == 429
    assert refused.json == {"detail": "3 per 1 hour"}
    assert "x-ratelimit-limit" not in refused.headers
    # Usenet has its own budget.
    nzb = ("a.nzb", b"<?xml version='1.0'?><nzb></nzb>")
    assert (await create(sim, key, "usenet/createusenetdownload", file=nzb)).status == 200
    await asyncio.sleep(1.1)
    assert (await create(sim, key, "torrents/createtorrent", magnet=magnet(9))).status == 200


async def test_budget_429_may_carry_headers(make_sim: SimFactory) -> None:
    """With the flag, the budget's 429 carries x-ratelimit-* and retry-after."""
    sim = await make_sim(uncached_per_hour=1, uncached_429_headers=True)
    key = (await sim.account())["api_key"]
    assert (await create(sim, key, "torrents/createtorrent", magnet=magnet(1))).status == 200
    refused = await create(sim, key, "torrents/createtorrent", magnet=magnet(2))
    assert refused.status == 429
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) >= 1


async def test_cached_creates_spend_no_budget(make_sim: SimFactory) -> None:
    """A cached torrent is added at once and answers the per-minute envelope (limit 300)."""
    sim = await make_sim(uncached_per_hour=1)
    seeded = await sim.account(mix={"seeding": 1})
    torrent = (await sim.fresh(seeded["api_key"])).json["data"][0]
    key = (await sim.account())["api_key"]
    assert (await create(sim, key, "torrents/createtorrent", magnet=magnet(1))).status == 200
    cached = await create(
        sim, key, "torrents/createtorrent", magnet=f"magnet:?xt=urn:btih:{torrent['hash']}"
    )
    assert cached.status == 200, cached.json
    assert "Cached" in cached.json["detail"]
    assert cached.headers["x-ratelimit-limit"] == "300"


async def test_duplicates_and_business_errors(sim: Sim) -> None:
    """DUPLICATE_ITEM (as a 500) for the same content; TorBox's refusals for bad input."""
    key = (await sim.account())["api_key"]
    link = "https://example.com/files/a.zip"
    first = await create(sim, key, "webdl/createwebdownload", link=link, password="pw")
    assert first.status == 200
    assert set(first.json["data"]) == {"webdownload_id", "hash", "auth_id"}
    again = await create(sim, key, "webdl/createwebdownload", link=link)
    assert (again.status, again.json["error"]) == (500, "DUPLICATE_ITEM")
    assert "already exists" in again.json["detail"]
    bad_link = await create(sim, key, "webdl/createwebdownload", link="ftp:nope")
    assert (bad_link.status, bad_link.json["error"]) == (400, "INVALID_OPTION")
    bad_nzb = await create(sim, key, "usenet/createusenetdownload", file=("x.nzb", b"hello"))
    assert (bad_nzb.status, bad_nzb.json["error"]) == (400, "BOZO_NZB")
    not_torrent = await create(sim, key, "torrents/createtorrent", file=("x.torrent", b"nope"))
    assert (not_torrent.status, not_torrent.json["error"]) == (400, "BOZO_TORRENT")
    bad_magnet = await create(sim, key, "torrents/createtorrent", magnet="magnet:?xt=nothing")
    assert (bad_magnet.status, bad_magnet.json["error"]) == (400, "BOZO_TORRENT")
    await create(sim, key, "torrents/createtorrent", magnet=magnet(5))
    dup = await create(sim, key, "torrents/createtorrent", magnet=magnet(5))
    assert (dup.status, dup.json["error"]) == (500, "DUPLICATE_ITEM")


async def test_new_items_appear_in_their_lists(sim: Sim) -> None:
    """Created usenet and web downloads show in their mylists; as_queued torrents in the queue."""
    key = (await sim.account())["api_key"]
    nzb = ("show.nzb", b"<nzb><file/></nzb>")
    made = await create(sim, key, "usenet/createusenetdownload", file=nzb, name="Show")
    usenet_id = made.json["data"]["usenetdownload_id"]
    listed = await sim.call("GET", f"{API}/usenet/mylist", key=key)
    assert [(d["id"], d["name"]) for d in listed.json["data"]] == [(usenet_id, "Show")]
    queued = await create(sim, key, "torrents/createtorrent", magnet=magnet(7), as_queued="true")
    queued_id = queued.json["data"]["queued_id"]
    items = (await sim.call("GET", f"{API}/queued/getqueued", key=key)).json["data"]
    assert [q["id"] for q in items] == [queued_id]
    again = await create(sim, key, "torrents/createtorrent", magnet=magnet(7))
    assert again.json["error"] == "DUPLICATE_ITEM"


async def test_a_late_answer_still_creates(sim: Sim) -> None:
    """late_answer serves the create first, then holds the answer back: the work is done even
    when the caller gives up."""
    key = (await sim.account())["api_key"]
    fault = {"api_key": key, "kind": "late_answer", "endpoint": "create", "delay": 5.0}
    assert (await sim.call("POST", "/_sim/faults", json_body=fault)).status == 200
    call = asyncio.create_task(create(sim, key, "torrents/createtorrent", magnet=magnet(3)))
    await asyncio.sleep(0.3)
    call.cancel()
    listed = await sim.call(
        "GET", f"{API}/torrents/mylist", key=key, params={"bypass_cache": "true"}
    )
    assert [t["hash"] for t in listed.json["data"]] == [f"{3:040x}"]
