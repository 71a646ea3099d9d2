"""Usenet and web downloads: their lists, life on the simulated clock, queue and controls."""

from __future__ import annotations

from typing import Any

from tests.simulator.conftest import API, Reply, Sim

# TorBox's fields for a usenet or web download (mylist), as the simulator renders them.
DOWNLOAD_FIELDS = {
    "id", "auth_id", "server", "hash", "name", "size", "active", "created_at", "updated_at",
    "download_state", "progress", "download_speed", "upload_speed", "eta", "torrent_file",
    "expires_at", "download_present", "download_finished", "files", "inactive_check",
    "availability", "cached", "cached_at", "allow_zipped", "tags", "airlocked", "original_url",
    "error",
}  # fmt: skip


async def add(sim: Sim, key: str, **body: Any) -> dict[str, Any]:
    reply = await sim.call("POST", f"/_sim/accounts/{key}/downloads", json_body=body)
    assert reply.status == 200, reply.json
    return reply.json  # type: ignore[no-any-return]


async def listed(sim: Sim, key: str, kind: str) -> list[dict[str, Any]]:
    reply = await sim.call("GET", f"{API}/{kind}/mylist", key=key, params={"bypass_cache": "true"})
    assert reply.status == 200
    return reply.json["data"]  # type: ignore[no-any-return]


async def queued(sim: Sim, key: str, kind: str) -> Reply:
    return await sim.call("GET", f"{API}/queued/getqueued", key=key, params={"type": kind})


async def test_states_and_fields(sim: Sim) -> None:
    """Each profile renders TorBox's field set with the state, flags and progress it implies."""
    key = (await sim.account())["api_key"]
    for profile in ("downloading", "stalled", "failed", "completed"):
        await add(sim, key, type="usenet", profile=profile, name=profile, progress=0.25)
    items = {d["name"]: d for d in await listed(sim, key, "usenet")}
    assert all(set(d) == DOWNLOAD_FIELDS for d in items.values())
    assert items["downloading"]["download_state"] == "downloading"
    assert items["downloading"]["active"] is True
    assert items["stalled"]["download_state"] == "downloading"
    assert items["stalled"]["download_speed"] == 0
    assert (items["failed"]["download_state"], items["failed"]["active"]) == ("failed", False)
    assert items["failed"]["error"] == "Missing articles"
    done = items["completed"]
    assert (done["download_finished"], done["download_present"], done["progress"]) == (
        True,
        True,
        1.0,
    )
    assert await listed(sim, key, "webdl") == []


async def test_progress_moves_only_while_downloading(sim: Sim) -> None:
    """A downloading item's progress grows with the clock until it completes; a stalled one's
    stays where it was."""
    key = (await sim.account())["api_key"]
    await add(sim, key, type="webdl", name="moving", size=1000, rate=10)
    await add(sim, key, type="webdl", name="stuck", profile="stalled", progress=0.4)
    await sim.advance(50)
    items = {d["name"]: d for d in await listed(sim, key, "webdl")}
    assert 0.5 <= items["moving"]["progress"] < 0.6
    assert items["stuck"]["progress"] == 0.4
    await sim.advance(100)
    items = {d["name"]: d for d in await listed(sim, key, "webdl")}
    assert items["moving"]["download_state"] == "completed"
    assert items["stuck"]["progress"] == 0.4


async def test_queued_downloads_are_in_the_queue_of_their_type(sim: Sim) -> None:
    """A queued usenet item is in getqueued?type=usenet (no size), not in mylist; start moves it
    to mylist under a new id, and controlqueued delete removes it."""
    key = (await sim.account())["api_key"]
    first = (await add(sim, key, type="usenet", profile="queued", name="a"))["queued_id"]
    second = (await add(sim, key, type="usenet", profile="queued", name="b"))["queued_id"]
    assert await listed(sim, key, "usenet") == []
    items = (await queued(sim, key, "usenet")).json["data"]
    assert {q["id"] for q in items} == {first, second}
    assert all(q["type"] == "usenet" and "size" not in q for q in items)
    assert (await queued(sim, key, "webdl")).json["data"] == []
    assert (await queued(sim, key, "torrent")).json["data"] == []
    start = {"queued_id": first, "operation": "start", "type": "usenet"}
    reply = await sim.call("POST", f"{API}/queued/controlqueued", key=key, json_body=start)
    assert reply.status == 200
    [started] = await listed(sim, key, "usenet")
    assert started["name"] == "a"
    assert started["id"] != first
    drop = {"queued_id": second, "operation": "delete", "type": "usenet"}
    reply = await sim.call("POST", f"{API}/queued/controlqueued", key=key, json_body=drop)
    assert reply.status == 200
    assert (await queued(sim, key, "usenet")).json["data"] == []
    # The torrent queue does not know usenet ids.
    wrong = {"queued_id": second, "operation": "delete"}
    reply = await sim.call("POST", f"{API}/queued/controlqueued", key=key, json_body=wrong)
    assert reply.status == 404


async def test_control_endpoints_delete(sim: Sim) -> None:
    """controlusenetdownload and controlwebdownload delete by their own id field; the control
    log and the per-key call counts record them."""
    key = (await sim.account())["api_key"]
    usenet = (await add(sim, key, type="usenet", profile="failed"))["id"]
    web = (await add(sim, key, type="webdl"))["id"]
    body = {"usenet_id": usenet, "operation": "delete"}
    path = f"{API}/usenet/controlusenetdownload"
    assert (await sim.call("POST", path, key=key, json_body=body)).status == 200
    assert (await sim.call("POST", path, key=key, json_body=body)).status == 404
    body = {"webdl_id": web, "operation": "delete"}
    path = f"{API}/webdl/controlwebdownload"
    assert (await sim.call("POST", path, key=key, json_body=body)).status == 200
    assert await listed(sim, key, "usenet") == await listed(sim, key, "webdl") == []
    state = await sim.state(key)
    log = [(r["endpoint"], r["id"], r["result"], r.get("type")) for r in state["requests"]]
    assert log == [
        ("usenet/controlusenetdownload", usenet, "ok", "usenet"),
        ("usenet/controlusenetdownload", usenet, "ITEM_NOT_FOUND", "usenet"),
        ("webdl/controlwebdownload", web, "ok", "webdl"),
    ]
    assert state["calls"]["usenet/mylist"] == 1
    assert state["calls"]["usenet/controlusenetdownload"] == 2


async def test_bad_admin_bodies_are_refused(sim: Sim) -> None:
    """The admin route names what is wrong."""
    key = (await sim.account())["api_key"]
    path = f"/_sim/accounts/{key}/downloads"
    for body in (
        {"type": "torrent"},
        {"type": "usenet", "profile": "x"},
        {"type": "webdl", "z": 1},
    ):
        assert (await sim.call("POST", path, json_body=body)).status == 400
