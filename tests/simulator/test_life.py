"""Torrent life over simulated time, as mylist reports it (time scale 0, clock advanced by hand)."""

from __future__ import annotations

import pytest

from tests.simulator.conftest import Sim, SimFactory

MIB = 1024**2


async def test_downloading_moves_then_seeds(sim: Sim) -> None:
    """A download progresses at its rate, then seeds with a climbing ratio."""
    account = await sim.account(
        torrents=[
            {
                "profile": "downloading",
                "size": 100 * MIB,
                "progress": 0.5,
                "download_rate": MIB,
                "upload_rate": MIB // 2,
                "seeds": 4,
                "peers": 7,
            }
        ]
    )
    key, tid = account["api_key"], account["torrent_ids"][0]
    start = await sim.torrent(key, tid)
    assert (start["download_state"], start["active"], start["progress"]) == (
        "downloading",
        True,
        0.5,
    )
    assert start["total_downloaded"] == 50 * MIB
    assert start["download_speed"] == MIB
    assert start["eta"] == 50
    assert start["download_finished"] is False
    assert start["cached_at"] is None
    assert (start["seeds"], start["peers"]) == (4, 7)

    await sim.advance(10)
    moving = await sim.torrent(key, tid)
    assert moving["total_downloaded"] == 60 * MIB
    assert moving["eta"] == 40
    assert moving["progress"] == 0.6

    await sim.advance(60)
    seeding = await sim.torrent(key, tid)
    assert seeding["download_state"] == "uploading"
    assert seeding["active"] is True
    assert seeding["progress"] == 1.0
    assert seeding["total_downloaded"] == 100 * MIB
    assert seeding["download_finished"]
    assert seeding["download_present"]
    assert seeding["cached"]
    assert seeding["cached_at"] is not None
    assert seeding["upload_speed"] == MIB // 2
    assert seeding["download_speed"] == 0
    assert seeding["total_uploaded"] == 20 * (MIB // 2)
    assert seeding["ratio"] == seeding["total_uploaded"] / seeding["total_downloaded"]

    await sim.advance(100)
    later = await sim.torrent(key, tid)
    assert later["ratio"] > seeding["ratio"]


async def test_stalled_never_moves(sim: Sim) -> None:
    """A stalled torrent stays active with no seeds, no speed and frozen progress."""
    account = await sim.account(torrents=[{"profile": "stalled", "progress": 0.37}])
    key, tid = account["api_key"], account["torrent_ids"][0]
    before = await sim.torrent(key, tid)
    await sim.advance(86_400)
    after = await sim.torrent(key, tid)
    assert before == after
    assert (after["download_state"], after["active"], after["seeds"]) == (
        "stalled (no seeds)",
        True,
        0,
    )
    assert after["download_speed"] == 0
    assert after["eta"] == 8_640_000
    assert 0.36 < after["progress"] < 0.38
    assert after["download_finished"] is False


async def test_stalls_later_after_stall_after(sim: Sim) -> None:
    """stalls_later downloads normally, then freezes once stall_after seconds have passed."""
    spec = {
        "profile": "stalls_later",
        "size": 1000 * MIB,
        "progress": 0.0,
        "download_rate": MIB,
        "stall_after": 100,
    }
    account = await sim.account(torrents=[spec])
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.advance(50)
    early = await sim.torrent(key, tid)
    assert early["download_state"] == "downloading"
    assert early["total_downloaded"] == 50 * MIB
    await sim.advance(100)
    stalled = await sim.torrent(key, tid)
    assert stalled["download_state"] == "stalled (no seeds)"
    assert stalled["total_downloaded"] == 100 * MIB
    assert stalled["download_speed"] == 0
    await sim.advance(1000)
    assert (await sim.torrent(key, tid))["total_downloaded"] == 100 * MIB


async def test_seeding_ratio_climbs(sim: Sim) -> None:
    """A seeding torrent uploads at its rate, so total_uploaded and ratio climb."""
    spec = {"profile": "seeding", "size": 100 * MIB, "ratio": 1.0, "upload_rate": MIB}
    account = await sim.account(torrents=[spec])
    key, tid = account["api_key"], account["torrent_ids"][0]
    before = await sim.torrent(key, tid)
    assert before["ratio"] == 1.0
    assert before["upload_speed"] == MIB
    await sim.advance(50)
    after = await sim.torrent(key, tid)
    assert after["total_uploaded"] == before["total_uploaded"] + 50 * MIB
    assert after["ratio"] == 1.5
    assert (after["active"], after["download_state"], after["download_finished"]) == (
        True,
        "uploading",
        True,
    )


async def test_dead_seed_is_active_but_idle(sim: Sim) -> None:
    """A dead seed stays active and "uploading" with no peers and a constant ratio."""
    account = await sim.account(torrents=[{"profile": "dead_seed", "ratio": 0.4}])
    key, tid = account["api_key"], account["torrent_ids"][0]
    before = await sim.torrent(key, tid)
    await sim.advance(10_000)
    after = await sim.torrent(key, tid)
    assert before == after
    assert (after["active"], after["download_state"], after["peers"]) == (True, "uploading", 0)
    assert after["upload_speed"] == 0
    assert abs(after["ratio"] - 0.4) < 1e-6


async def test_finished_inactive(sim: Sim) -> None:
    """finished_inactive is complete, present and inactive ("completed")."""
    account = await sim.account(torrents=[{"profile": "finished_inactive"}])
    torrent = await sim.torrent(account["api_key"], account["torrent_ids"][0])
    assert (torrent["active"], torrent["download_state"]) == (False, "completed")
    assert torrent["download_present"]
    assert torrent["download_finished"]
    assert torrent["progress"] == 1.0


async def test_metadl_has_no_metadata(sim: Sim) -> None:
    """metadl reports size 0, no files, state metaDL and progress 0, and stays so."""
    account = await sim.account(torrents=[{"profile": "metadl", "size": 5 * MIB}])
    key, tid = account["api_key"], account["torrent_ids"][0]
    torrent = await sim.torrent(key, tid)
    assert (torrent["size"], torrent["files"], torrent["download_state"], torrent["progress"]) == (
        0,
        [],
        "metaDL",
        0.0,
    )
    assert (torrent["active"], torrent["seeds"], torrent["eta"]) == (True, 0, 8_640_000)
    assert (torrent["total_downloaded"], torrent["download_speed"]) == (0, 0)
    assert (torrent["download_present"], torrent["download_finished"]) == (False, False)
    assert torrent["cached_at"] is None
    await sim.advance(10**6)
    assert await sim.torrent(key, tid) == torrent


async def test_metadata_arrives_then_it_downloads_and_seeds(sim: Sim) -> None:
    """With metadata_after, size and files appear on time, then it downloads from zero."""
    spec = {
        "profile": "metadl",
        "metadata_after": 30,
        "size": 100 * MIB,
        "download_rate": MIB,
        "upload_rate": MIB,
        "seeds": 5,
    }
    account = await sim.account(torrents=[spec])
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.advance(29)
    waiting = await sim.torrent(key, tid)
    assert (waiting["download_state"], waiting["size"], waiting["files"]) == ("metaDL", 0, [])
    assert (waiting["progress"], waiting["seeds"]) == (0.0, 0)
    await sim.advance(11)
    known = await sim.torrent(key, tid)
    assert known["download_state"] == "downloading"
    assert known["size"] == 100 * MIB
    assert sum(entry["size"] for entry in known["files"]) == 100 * MIB
    assert known["total_downloaded"] == 10 * MIB
    assert (known["progress"], known["seeds"], known["eta"]) == (0.1, 5, 90)
    await sim.advance(100)
    seeding = await sim.torrent(key, tid)
    assert (seeding["download_state"], seeding["download_finished"]) == ("uploading", True)
    assert seeding["total_uploaded"] == 10 * MIB
    assert seeding["cached_at"] is not None
    assert (await sim.state(key))["profiles"] == {str(tid): "metadl"}


async def test_metadata_arrival_reaches_the_cached_list(make_sim: SimFactory) -> None:
    """The plain mylist shows the metadata too once its snapshot is refreshed."""
    sim = await make_sim(cache_seconds=0)
    spec = {"profile": "metadl", "metadata_after": 5, "size": 10 * MIB}
    key = (await sim.account(torrents=[spec]))["api_key"]
    assert (await sim.mylist(key)).json["data"][0]["size"] == 0
    await sim.advance(5)
    assert (await sim.mylist(key)).json["data"][0]["size"] == 10 * MIB


async def test_metadata_waits_while_paused(sim: Sim) -> None:
    """A paused metaDL torrent does not get its metadata; it arrives after resume, on time."""
    spec = {"profile": "metadl", "metadata_after": 10, "size": 10 * MIB}
    account = await sim.account(torrents=[spec])
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.advance(4)
    await sim.control(key, torrent_id=tid, operation="pause")
    await sim.advance(100)
    assert (await sim.torrent(key, tid))["size"] == 0
    await sim.control(key, torrent_id=tid, operation="resume")
    await sim.advance(5)
    assert (await sim.torrent(key, tid))["size"] == 0
    await sim.advance(1)
    assert (await sim.torrent(key, tid))["size"] == 10 * MIB


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"profile": "downloading", "metadata_after": 5}, "metadata_after"),
        ({"profile": "metadl", "metadata_after": -1}, "metadata_after"),
        ({"profile": "metadl", "progress": 0.5}, "progress"),
    ],
)
async def test_bad_metadl_specs(sim: Sim, spec: dict[str, object], words: str) -> None:
    """metadata_after is for metadl only and not negative; metadl has no progress to give."""
    reply = await sim.call("POST", "/_sim/accounts", json_body={"torrents": [spec]})
    assert reply.status == 400
    assert words in reply.json["error"]


async def test_queued_profile_lives_in_getqueued_only(sim: Sim) -> None:
    """The queued profile creates a queued item, not a mylist torrent."""
    account = await sim.account(torrents=[{"profile": "queued"}])
    assert account["torrent_ids"] == []
    assert len(account["queued_ids"]) == 1
    assert (await sim.fresh(account["api_key"])).status == 404


async def test_updated_at_is_now_for_moving_torrents_only(sim: Sim) -> None:
    """Moving torrents report a fresh updated_at; idle ones keep their last change."""
    specs = [
        {"profile": "seeding", "age_seconds": 86_400 * 3},
        {"profile": "dead_seed", "age_seconds": 86_400 * 3},
    ]
    account = await sim.account(torrents=specs)
    key = account["api_key"]
    seeding = await sim.torrent(key, account["torrent_ids"][0])
    dead = await sim.torrent(key, account["torrent_ids"][1])
    assert seeding["updated_at"] > seeding["created_at"]
    assert dead["updated_at"] == dead["created_at"]


async def test_time_scale_speeds_up_life(make_sim: SimFactory) -> None:
    """With a huge time scale, a tiny download is finished by the next request."""
    sim = await make_sim(time_scale=1e9)
    spec = {"profile": "downloading", "size": 10 * MIB, "progress": 0.0, "download_rate": MIB}
    account = await sim.account(torrents=[spec])
    torrent = await sim.torrent(account["api_key"], account["torrent_ids"][0])
    assert torrent["download_finished"] is True


async def test_same_seed_same_torrents(make_sim: SimFactory) -> None:
    """Two simulators with the same seed generate identical accounts and torrents."""
    first, second = await make_sim(seed=7), await make_sim(seed=7)
    mix = {"downloading": 2, "seeding": 2, "stalled": 1}
    a, b = await first.account(mix=mix), await second.account(mix=mix)
    assert a == b
    strip = ("created_at", "updated_at", "expires_at", "cached_at")

    def stable(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in row.items() if k not in strip} for row in rows]

    rows_a = (await first.fresh(a["api_key"])).json["data"]
    rows_b = (await second.fresh(b["api_key"])).json["data"]
    assert stable(rows_a) == stable(rows_b)
    other = await (await make_sim(seed=8)).account(mix=mix)
    assert other["api_key"] != a["api_key"]
