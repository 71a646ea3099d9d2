"""The /_sim admin API: accounts, specs, bulk set-up, stats and the clock."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.simulator.conftest import API, Sim

UUID_LIKE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GIB = 1024**3


async def test_generated_key_is_uuid_like(sim: Sim) -> None:
    """Without api_key the account gets a 36-character UUID-like key."""
    account = await sim.account()
    assert UUID_LIKE.match(account["api_key"])
    assert account == {"api_key": account["api_key"], "torrent_ids": [], "queued_ids": []}


async def test_chosen_key_and_duplicate(sim: Sim) -> None:
    """A chosen api_key is used as given; creating it twice is 409."""
    account = await sim.account(api_key="my-test-key-0000001")
    assert account["api_key"] == "my-test-key-0000001"
    again = await sim.call("POST", "/_sim/accounts", json_body={"api_key": "my-test-key-0000001"})
    assert again.status == 409
    assert "error" in again.json


async def test_torrents_then_mix_in_order(sim: Sim) -> None:
    """Listed torrents come first, then the mix in the order given; queued items are separate."""
    account = await sim.account(
        torrents=[{"profile": "seeding"}, {"profile": "queued"}],
        mix={"stalled": 2, "queued": 1, "metadl": 1},
    )
    assert len(account["torrent_ids"]) == 4
    assert len(account["queued_ids"]) == 2
    state = await sim.state(account["api_key"])
    profiles = [state["profiles"][str(tid)] for tid in account["torrent_ids"]]
    assert profiles == ["seeding", "stalled", "stalled", "metadl"]


async def test_spec_values_are_honoured(sim: Sim) -> None:
    """Every given spec value shows up in the rendered torrent."""
    spec = {
        "profile": "seeding",
        "name": "My.Film.2020.1080p",
        "size": 2 * GIB,
        "ratio": 1.25,
        "private": True,
        "tracker": "https://tracker.example/announce",
        "seeds": 3,
        "peers": 11,
        "upload_rate": 1000,
    }
    account = await sim.account(torrents=[spec])
    torrent = (await sim.fresh(account["api_key"])).json["data"][0]
    expected = {
        "name": "My.Film.2020.1080p",
        "size": 2 * GIB,
        "ratio": 1.25,
        "private": True,
        "tracker": "https://tracker.example/announce",
        "seeds": 3,
        "peers": 11,
        "upload_speed": 1000,
    }
    assert {field: torrent[field] for field in expected} == expected


async def test_explicit_null_tracker_and_hash(sim: Sim) -> None:
    """tracker null hides the tracker even for a private torrent; a given hash is used."""
    spec = {"profile": "seeding", "private": True, "tracker": None, "hash": "AB" * 20}
    account = await sim.account(torrents=[spec])
    torrent = (await sim.fresh(account["api_key"])).json["data"][0]
    assert torrent["tracker"] is None
    assert torrent["hash"] == "ab" * 20


@pytest.mark.parametrize(
    "body",
    [
        {"torrents": [{"profile": "zombie"}]},
        {"torrents": [{"profile": "seeding", "colour": "red"}]},
        {"torrents": [{"profile": "seeding", "size": "big"}]},
        {"torrents": [{"profile": "seeding", "size": True}]},
        {"torrents": [{"profile": "stalled", "progress": 1.0}]},
        {"torrents": [{"profile": "downloading", "progress": 1.5}]},
        {"torrents": [{"profile": "seeding", "hash": "xyz"}]},
        {"torrents": {"profile": "seeding"}},
        {"mix": {"zombie": 1}},
        {"mix": {"seeding": -1}},
        {"knobs": {"active_as": "emoji"}},
        {"knobs": {"sparkles": True}},
        {"api_key": ""},
    ],
)
async def test_bad_account_requests(sim: Sim, body: dict[str, Any]) -> None:
    """Invalid specs, mixes and knobs are refused with 400 and a JSON error."""
    reply = await sim.call("POST", "/_sim/accounts", json_body=body)
    assert reply.status == 400
    assert isinstance(reply.json["error"], str)


async def test_add_torrent_to_an_account(sim: Sim) -> None:
    """POST .../torrents answers torrent_id, or queued_id for the queued profile."""
    key = (await sim.account())["api_key"]
    added = await sim.add(key, profile="downloading")
    queued = await sim.add(key, profile="queued")
    assert set(added) == {"torrent_id"}
    assert set(queued) == {"queued_id"}
    state = await sim.state(key)
    assert [t["id"] for t in state["torrents"]] == [added["torrent_id"]]
    assert [q["id"] for q in state["queued"]] == [queued["queued_id"]]


async def test_unknown_account_is_404(sim: Sim) -> None:
    """Admin routes on an unknown key answer 404."""
    for method, path in (
        ("GET", "/_sim/accounts/nobody"),
        ("DELETE", "/_sim/accounts/nobody"),
        ("POST", "/_sim/accounts/nobody/torrents"),
        ("DELETE", "/_sim/faults/nobody"),
    ):
        reply = await sim.call(method, path, json_body={"profile": "seeding"})
        assert reply.status == 404, path


async def test_account_state_shape(sim: Sim) -> None:
    """GET /_sim/accounts/{key} holds the rendered torrents, the queue, the log and the knobs."""
    account = await sim.account(mix={"seeding": 1, "queued": 1}, knobs={"active_as": "int"})
    state = await sim.state(account["api_key"])
    assert set(state) >= {"torrents", "queued", "requests"}
    assert state["torrents"][0]["active"] == 1
    assert state["knobs"] == {
        "id_returns_list": False,
        "legacy_dates": False,
        "active_as": "int",
        "active_updated_at_now": False,
    }
    assert state["requests"] == []
    assert state["faults"] == []


async def test_bulk_keys_and_mix(sim: Sim) -> None:
    """Bulk creates numbered keys with the requested torrent count and a realistic mix."""
    reply = await sim.call(
        "POST",
        "/_sim/bulk",
        json_body={"accounts": 3, "torrents_per_account": 200, "key_prefix": "b"},
    )
    keys = reply.json["api_keys"]
    assert keys == ["b-key-00000000-sim", "b-key-00000001-sim", "b-key-00000002-sim"]
    assert all(len(key) >= 16 for key in keys)
    state = await sim.state(keys[0])
    assert len(state["torrents"]) == 200
    profiles = list(state["profiles"].values())
    assert set(profiles) == {"downloading", "seeding", "finished_inactive", "dead_seed", "stalled"}
    moving = sum(p in ("downloading", "seeding") for p in profiles)
    assert 0.35 < moving / len(profiles) < 0.65
    more = await sim.call(
        "POST",
        "/_sim/bulk",
        json_body={"accounts": 1, "key_prefix": "b", "knobs": {"active_updated_at_now": True}},
    )
    assert more.json["api_keys"] == ["b-key-00000003-sim"]
    assert (await sim.state("b-key-00000003-sim"))["knobs"]["active_updated_at_now"] is True
    assert (await sim.fresh(keys[1], limit="5")).status == 200


async def test_bulk_refuses_absurd_sizes(sim: Sim) -> None:
    """Bulk refuses negative counts and more than a million torrents."""
    negative = await sim.call("POST", "/_sim/bulk", json_body={"accounts": -1})
    huge = await sim.call(
        "POST", "/_sim/bulk", json_body={"accounts": 10_000, "torrents_per_account": 10_000}
    )
    assert negative.status == 400
    assert huge.status == 400


async def test_stats_count_requests(sim: Sim) -> None:
    """Stats count TorBox requests per endpoint, per key and per status."""
    key = (await sim.account(mix={"seeding": 1}))["api_key"]
    await sim.fresh(key)
    await sim.fresh(key)
    await sim.call("GET", f"{API}/user/me")
    stats = (await sim.call("GET", "/_sim/stats")).json
    assert stats["requests"] == 3
    assert stats["by_endpoint"] == {"torrents/mylist": 2, "user/me": 1}
    assert stats["by_key"] == {key: 2}
    assert stats["by_status"] == {"200": 2, "403": 1}


async def test_clock_reads_and_advances(sim: Sim) -> None:
    """The clock reports simulated seconds and scale, and advances by hand."""
    before = (await sim.call("GET", "/_sim/clock")).json
    assert before == {"sim_seconds": 0.0, "time_scale": 0.0}
    after = await sim.call("POST", "/_sim/clock/advance", json_body={"seconds": 12.5})
    assert after.json == {"sim_seconds": 12.5, "time_scale": 0.0}
    for bad in ({"seconds": -1}, {}, {"seconds": "soon"}):
        assert (await sim.call("POST", "/_sim/clock/advance", json_body=bad)).status == 400


async def test_admin_body_must_be_a_json_object(sim: Sim) -> None:
    """A non-JSON or non-object admin body is a 400."""
    not_json = await sim.call("POST", "/_sim/accounts", data=b"{oops")
    a_list = await sim.call("POST", "/_sim/accounts", json_body=[1, 2])
    assert not_json.status == 400
    assert a_list.status == 400


async def test_large_bulk_is_built_in_slices_with_consecutive_keys(sim: Sim) -> None:
    """A bulk larger than one slice still yields every account, numbered without gaps."""
    reply = await sim.call(
        "POST", "/_sim/bulk", json_body={"accounts": 25, "torrents_per_account": 100}
    )
    keys = reply.json["api_keys"]
    assert keys == [f"bench-key-{i:08d}-sim" for i in range(25)]
    assert len((await sim.state(keys[-1]))["torrents"]) == 100
