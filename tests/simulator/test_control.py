"""POST /torrents/controltorrent: operations, their effects, errors and the control log."""

from __future__ import annotations

from tests.simulator.conftest import API, Sim

MIB = 1024**2
SEEDING = {"profile": "seeding", "size": 100 * MIB, "upload_rate": MIB, "ratio": 0.5}


async def test_stop_seeding_freezes_and_completes(sim: Sim) -> None:
    """stop_seeding makes a seed inactive and "completed", keeps its files, freezes its upload."""
    account = await sim.account(torrents=[SEEDING])
    key, tid = account["api_key"], account["torrent_ids"][0]
    reply = await sim.control(key, torrent_id=tid, operation="stop_seeding")
    assert reply.status == 200
    assert reply.json == {
        "success": True,
        "error": None,
        "detail": "Torrent operationd successfully.",
        "data": None,
    }
    stopped = await sim.torrent(key, tid)
    assert (stopped["active"], stopped["download_state"]) == (False, "completed")
    assert stopped["download_present"] is True
    assert stopped["upload_speed"] == 0
    await sim.advance(1000)
    assert (await sim.torrent(key, tid))["total_uploaded"] == stopped["total_uploaded"]


async def test_pause_then_resume(sim: Sim) -> None:
    """pause freezes a download (state "paused"); resume continues it from the same point."""
    spec = {"profile": "downloading", "size": 100 * MIB, "progress": 0.0, "download_rate": MIB}
    account = await sim.account(torrents=[spec])
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.advance(10)
    assert (await sim.control(key, torrent_id=tid, operation="pause")).status == 200
    paused = await sim.torrent(key, tid)
    assert (paused["download_state"], paused["active"], paused["download_speed"]) == (
        "paused",
        False,
        0,
    )
    await sim.advance(500)
    assert (await sim.torrent(key, tid))["total_downloaded"] == 10 * MIB
    assert (await sim.control(key, torrent_id=tid, operation="resume")).status == 200
    await sim.advance(5)
    resumed = await sim.torrent(key, tid)
    assert (resumed["download_state"], resumed["active"]) == ("downloading", True)
    assert resumed["total_downloaded"] == 15 * MIB


async def test_resume_a_paused_seed_seeds_again(sim: Sim) -> None:
    """A paused seed goes back to uploading on resume."""
    account = await sim.account(torrents=[SEEDING])
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.control(key, torrent_id=tid, operation="pause")
    await sim.control(key, torrent_id=tid, operation="resume")
    torrent = await sim.torrent(key, tid)
    assert (torrent["download_state"], torrent["active"]) == ("uploading", True)


async def test_delete_removes(sim: Sim) -> None:
    """delete removes the torrent; a second delete of the same id is ITEM_NOT_FOUND."""
    account = await sim.account(mix={"seeding": 2})
    key, tid = account["api_key"], account["torrent_ids"][0]
    assert (await sim.control(key, torrent_id=tid, operation="delete")).status == 200
    ids = [t["id"] for t in (await sim.fresh(key)).json["data"]]
    assert ids == [account["torrent_ids"][1]]
    again = await sim.control(key, torrent_id=tid, operation="delete")
    assert again.status == 404
    assert (again.json["success"], again.json["error"]) == (False, "ITEM_NOT_FOUND")


async def test_reannounce_changes_nothing_but_is_logged(sim: Sim) -> None:
    """reannounce succeeds, leaves the torrent as it was, and shows up in the control log."""
    account = await sim.account(torrents=[{"profile": "stalled"}])
    key, tid = account["api_key"], account["torrent_ids"][0]
    before = await sim.torrent(key, tid)
    assert (await sim.control(key, torrent_id=tid, operation="reannounce")).status == 200
    assert await sim.torrent(key, tid) == before
    log = (await sim.state(key))["requests"]
    assert [(e["endpoint"], e["operation"], e["id"], e["result"]) for e in log] == [
        ("torrents/controltorrent", "reannounce", tid, "ok")
    ]
    assert log[0]["status"] == 200
    assert log[0]["time"].endswith("Z")


async def test_all_applies_to_every_torrent(sim: Sim) -> None:
    """all=true without torrent_id applies the operation to the whole account."""
    account = await sim.account(mix={"seeding": 3})
    key = account["api_key"]
    assert (await sim.control(key, operation="stop_seeding", all=True)).status == 200
    states = {t["download_state"] for t in (await sim.fresh(key)).json["data"]}
    assert states == {"completed"}


async def test_unknown_operation_is_invalid_option(sim: Sim) -> None:
    """An operation TorBox does not know is 400 INVALID_OPTION."""
    account = await sim.account(mix={"seeding": 1})
    reply = await sim.control(
        account["api_key"], torrent_id=account["torrent_ids"][0], operation="explode"
    )
    assert reply.status == 400
    assert (reply.json["success"], reply.json["error"]) == (False, "INVALID_OPTION")


async def test_operation_names_are_case_sensitive(sim: Sim) -> None:
    """ "Delete" is not "delete": TorBox's check is exact."""
    account = await sim.account(mix={"seeding": 1})
    reply = await sim.control(
        account["api_key"], torrent_id=account["torrent_ids"][0], operation="Delete"
    )
    assert (reply.status, reply.json["error"]) == (400, "INVALID_OPTION")


async def test_no_id_and_not_all_is_missing_option(sim: Sim) -> None:
    """Neither torrent_id nor all=true is 400 MISSING_REQUIRED_OPTION."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    reply = await sim.control(key, operation="delete")
    assert (reply.status, reply.json["error"]) == (400, "MISSING_REQUIRED_OPTION")


async def test_non_integer_id_is_fastapi_422(sim: Sim) -> None:
    """A non-integer torrent_id answers FastAPI's 422 body with no envelope."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    reply = await sim.control(key, torrent_id="abc", operation="delete")
    assert reply.status == 422
    assert set(reply.json) == {"detail"}
    problem = reply.json["detail"][0]
    assert problem["loc"] == ["body", "torrent_id"]
    assert problem["type"] == "int_parsing"
    assert isinstance(problem["msg"], str)


async def test_numeric_string_id_is_accepted(sim: Sim) -> None:
    """pydantic's lax mode accepts "123" for an int, so the simulator does too."""
    account = await sim.account(mix={"seeding": 1})
    tid = account["torrent_ids"][0]
    reply = await sim.control(account["api_key"], torrent_id=str(tid), operation="reannounce")
    assert reply.status == 200


async def test_missing_operation_and_bad_json_are_422(sim: Sim) -> None:
    """A body without operation, or one that is not JSON, is a 422."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    missing = await sim.control(key, torrent_id=account["torrent_ids"][0])
    assert missing.status == 422
    assert missing.json["detail"][0]["type"] == "missing"
    garbage = await sim.call(
        "POST",
        f"{API}/torrents/controltorrent",
        key=key,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert garbage.status == 422
    assert garbage.json["detail"][0]["type"] == "json_invalid"


async def test_someone_elses_torrent_is_not_owner(sim: Sim) -> None:
    """Ids are global: acting on another account's torrent is 409 NOT_OWNER."""
    mine = await sim.account(mix={"seeding": 1})
    theirs = await sim.account(mix={"seeding": 1})
    reply = await sim.control(
        mine["api_key"], torrent_id=theirs["torrent_ids"][0], operation="delete"
    )
    assert (reply.status, reply.json["error"]) == (409, "NOT_OWNER")
    assert (await sim.fresh(theirs["api_key"])).status == 200


async def test_every_request_is_logged_with_its_result(sim: Sim) -> None:
    """Rejected requests are logged too, with the error code as result."""
    account = await sim.account(mix={"seeding": 1})
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.control(key, torrent_id=tid, operation="explode")
    await sim.control(key, torrent_id=999, operation="delete")
    await sim.control(key, torrent_id="abc", operation="delete")
    await sim.control(key, torrent_id=tid, operation="pause")
    log = (await sim.state(key))["requests"]
    assert [(e["operation"], e["id"], e["status"], e["result"]) for e in log] == [
        ("explode", tid, 400, "INVALID_OPTION"),
        ("delete", 999, 404, "ITEM_NOT_FOUND"),
        ("delete", "abc", 422, "VALIDATION_ERROR"),
        ("pause", tid, 200, "ok"),
    ]
