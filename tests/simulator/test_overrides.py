"""Forced fields (download_state, active, nulls) at creation and through PATCH, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.render import TORRENT_FIELDS
from tests.simulator.conftest import Sim, SimFactory

MIB = 1024**2
DOWNLOADING = {"profile": "downloading", "size": 100 * MIB, "progress": 0.2, "download_rate": MIB}


async def one(sim: Sim, **spec: Any) -> tuple[str, int]:
    account = await sim.account(torrents=[spec])
    return account["api_key"], account["torrent_ids"][0]


async def test_queued_dl_that_is_active(sim: Sim) -> None:
    """A raw qBittorrent state with active true, while the life goes on underneath."""
    key, tid = await one(sim, **DOWNLOADING, download_state="queuedDL", active=True)
    torrent = await sim.torrent(key, tid)
    assert (torrent["download_state"], torrent["active"]) == ("queuedDL", True)
    assert torrent["download_finished"] is False
    await sim.advance(10)
    later = await sim.torrent(key, tid)
    assert later["download_state"] == "queuedDL"
    assert later["total_downloaded"] == torrent["total_downloaded"] + 10 * MIB


async def test_completed_that_is_still_active(sim: Sim) -> None:
    """ "completed" on an unfinished torrent with active true: the text contradicts the flags."""
    key, tid = await one(sim, profile="stalled", download_state="completed", active=True)
    torrent = await sim.torrent(key, tid)
    assert (torrent["download_state"], torrent["active"]) == ("completed", True)
    assert (torrent["download_finished"], torrent["cached"]) == (False, False)
    assert torrent["progress"] < 1


async def test_inactive_override_on_a_seed(sim: Sim) -> None:
    """active false on a live seed, which keeps uploading underneath."""
    key, tid = await one(sim, profile="seeding", active=False, download_state="stoppedUP")
    torrent = await sim.torrent(key, tid)
    assert (torrent["download_state"], torrent["active"]) == ("stoppedUP", False)
    assert torrent["download_finished"] is True


@pytest.mark.parametrize(("style", "true"), [("int", 1), ("string", "true")])
async def test_active_override_follows_the_active_as_knob(
    sim: Sim, style: str, true: object
) -> None:
    """The forced flag is rendered in the account's style, like the real one."""
    account = await sim.account(
        torrents=[{"profile": "finished_inactive", "active": True}], knobs={"active_as": style}
    )
    torrent = await sim.torrent(account["api_key"], account["torrent_ids"][0])
    assert torrent["active"] == true


async def test_any_text_is_valid_json(sim: Sim) -> None:
    """download_state is free text: quotes, backslashes and non-ASCII survive as valid JSON."""
    text = 'stalled "odd" \\ état'
    key, tid = await one(sim, profile="dead_seed", download_state=text)
    assert (await sim.torrent(key, tid))["download_state"] == text
    key, tid = await one(sim, profile="dead_seed", download_state="")
    assert (await sim.torrent(key, tid))["download_state"] == ""


async def test_nulls_render_as_null_and_nothing_else_changes(sim: Sim) -> None:
    """Named fields, fixed or live, are null; every other field is still there and typed."""
    nulls = ["seeds", "progress", "size", "eta", "availability", "total_uploaded", "magnet"]
    key, tid = await one(sim, profile="seeding", nulls=[*nulls, "download_state"])
    torrent = await sim.torrent(key, tid)
    assert set(torrent) == TORRENT_FIELDS
    assert {name for name, value in torrent.items() if value is None} >= {
        *nulls,
        "download_state",
    }
    assert torrent["files"]
    assert isinstance(torrent["ratio"], float)
    assert torrent["active"] is True


async def test_nulls_win_over_a_forced_state(sim: Sim) -> None:
    """A field both forced and nulled is null."""
    key, tid = await one(sim, profile="seeding", download_state="cached", nulls=["download_state"])
    assert (await sim.torrent(key, tid))["download_state"] is None


async def test_nulls_hold_on_the_settled_fast_path(sim: Sim) -> None:
    """A torrent time cannot change is rendered from its memo, nulls and all."""
    key, tid = await one(sim, profile="finished_inactive", nulls=["progress", "cached_at"])
    renders = [await sim.torrent(key, tid) for _ in range(3)]
    await sim.advance(10_000)
    renders.append(await sim.torrent(key, tid))
    assert all(r == renders[0] for r in renders)
    assert (renders[0]["progress"], renders[0]["cached_at"]) == (None, None)
    assert renders[0]["download_state"] == "completed"


async def test_nulls_hold_while_the_torrent_moves(sim: Sim) -> None:
    """A moving torrent is rendered afresh each time, and its nulls stay null."""
    key, tid = await one(sim, **DOWNLOADING, nulls=["progress", "eta"])
    first = await sim.torrent(key, tid)
    await sim.advance(30)
    second = await sim.torrent(key, tid)
    assert second["total_downloaded"] > first["total_downloaded"]
    assert [(t["progress"], t["eta"]) for t in (first, second)] == [(None, None)] * 2


async def test_overrides_show_in_the_cached_list_too(make_sim: SimFactory) -> None:
    """The plain (cached) mylist renders the same forced fields."""
    sim = await make_sim(cache_seconds=0)
    key, _ = await one(sim, profile="seeding", download_state="uploading (no peers)", nulls=["eta"])
    torrent = (await sim.mylist(key)).json["data"][0]
    assert (torrent["download_state"], torrent["eta"]) == ("uploading (no peers)", None)


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"profile": "seeding", "nulls": ["sedes"]}, "sedes"),
        ({"profile": "seeding", "nulls": "seeds"}, "nulls"),
        ({"profile": "seeding", "nulls": [1]}, "nulls"),
        ({"profile": "seeding", "download_state": 3}, "download_state"),
        ({"profile": "seeding", "active": "yes"}, "active"),
        ({"profile": "queued", "download_state": "queuedDL"}, "queued"),
        ({"profile": "queued", "nulls": ["size"]}, "queued"),
    ],
)
async def test_bad_overrides_are_refused(sim: Sim, spec: dict[str, Any], names: str) -> None:
    """Wrong types, unknown field names and overrides on queued items are a 400 naming them."""
    reply = await sim.call("POST", "/_sim/accounts", json_body={"torrents": [spec]})
    assert reply.status == 400
    assert names in reply.json["error"]


async def test_patch_sets_keeps_and_drops_overrides(sim: Sim) -> None:
    """PATCH changes only the keys it names; null and [] drop an override."""
    key, tid = await one(sim, profile="seeding")
    reply = await sim.patch(key, tid, download_state="checkingUP", active=False)
    assert reply.status == 200
    assert reply.json == {
        "torrent_id": tid,
        "download_state": "checkingUP",
        "active": False,
        "nulls": [],
    }
    assert (await sim.patch(key, tid, nulls=["seeds", "peers"])).json["active"] is False
    torrent = await sim.torrent(key, tid)
    assert (torrent["download_state"], torrent["active"]) == ("checkingUP", False)
    assert (torrent["seeds"], torrent["peers"]) == (None, None)
    dropped = await sim.patch(key, tid, download_state=None, active=None, nulls=[])
    assert dropped.json == {"torrent_id": tid, "download_state": None, "active": None, "nulls": []}
    torrent = await sim.torrent(key, tid)
    assert (torrent["download_state"], torrent["active"]) == ("uploading", True)
    assert isinstance(torrent["seeds"], int)
    assert (await sim.state(key))["overrides"] == {}


async def test_patch_reaches_a_settled_torrent_at_once(sim: Sim) -> None:
    """The render memo and the fixed fragment are rebuilt, so a patch on an idle torrent shows."""
    key, tid = await one(sim, profile="finished_inactive")
    before = await sim.torrent(key, tid)
    await sim.patch(key, tid, nulls=["size", "files", "name"])
    after = await sim.torrent(key, tid)
    assert (after["size"], after["files"], after["name"]) == (None, None, None)
    await sim.patch(key, tid, nulls=[])
    assert await sim.torrent(key, tid) == before


async def test_patch_sticks_through_pause_and_resume(sim: Sim) -> None:
    """A forced state outlives actions: a test decides what TorBox says until it patches again."""
    key, tid = await one(sim, **DOWNLOADING)
    await sim.patch(key, tid, download_state="stalledDL")
    assert (await sim.control(key, torrent_id=tid, operation="pause")).status == 200
    paused = await sim.torrent(key, tid)
    assert (paused["download_state"], paused["active"]) == ("stalledDL", False)
    await sim.control(key, torrent_id=tid, operation="resume")
    assert (await sim.torrent(key, tid))["download_state"] == "stalledDL"


async def test_patch_waits_for_the_cached_snapshot(sim: Sim) -> None:
    """Like any change, the cached list shows a patch only after its snapshot is refreshed."""
    key, tid = await one(sim, profile="seeding")
    await sim.mylist(key)
    await sim.patch(key, tid, download_state="missingFiles")
    assert (await sim.mylist(key)).json["data"][0]["download_state"] == "uploading"
    assert (await sim.fresh(key)).json["data"][0]["download_state"] == "missingFiles"


async def test_account_state_lists_overrides(sim: Sim) -> None:
    """GET /_sim/accounts/{key} reports the overrides in force, by torrent id."""
    account = await sim.account(
        torrents=[{"profile": "seeding", "nulls": ["eta", "seeds"]}, {"profile": "seeding"}]
    )
    state = await sim.state(account["api_key"])
    assert state["overrides"] == {
        str(account["torrent_ids"][0]): {
            "download_state": None,
            "active": None,
            "nulls": ["eta", "seeds"],
        }
    }


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"nulls": ["sedes"]}, 400, "sedes"),
        ({"colour": "red"}, 400, "colour"),
        ({"active": 1}, 400, "active"),
        ({"download_state": ["x"]}, 400, "download_state"),
    ],
)
async def test_bad_patches(sim: Sim, body: dict[str, Any], status: int, words: str) -> None:
    """A bad PATCH body is a 400 that names the field, and changes nothing."""
    key, tid = await one(sim, profile="seeding")
    before = await sim.torrent(key, tid)
    reply = await sim.patch(key, tid, **body)
    assert reply.status == status
    assert words in reply.json["error"]
    assert await sim.torrent(key, tid) == before


async def test_patch_unknown_targets_are_404(sim: Sim) -> None:
    """Unknown accounts, unknown ids, someone else's torrent and a non-number id are 404."""
    key, tid = await one(sim, profile="seeding")
    other_key, other_tid = await one(sim, profile="seeding")
    for path in (
        f"/_sim/accounts/nobody/torrents/{tid}",
        f"/_sim/accounts/{key}/torrents/1",
        f"/_sim/accounts/{key}/torrents/{other_tid}",
        f"/_sim/accounts/{key}/torrents/abc",
    ):
        reply = await sim.call("PATCH", path, json_body={"active": True})
        assert reply.status == 404, path
        assert "error" in reply.json
    assert other_key != key
