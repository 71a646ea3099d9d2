"""Fault injection through POST /_sim/faults: each kind, its scope and its lifetime."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.simulator.conftest import API, Sim, SimFactory


async def seeded(sim: Sim) -> tuple[str, int]:
    account = await sim.account(mix={"seeding": 1})
    return account["api_key"], account["torrent_ids"][0]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("http_500", 500, "UNKNOWN_ERROR"),
        ("auth_error_500", 500, "AUTH_ERROR"),
        ("business_500", 500, "ACTIVE_LIMIT"),
        ("revoked", 403, "BAD_TOKEN"),
    ],
)
async def test_enveloped_faults_hit_once(sim: Sim, kind: str, status: int, code: str) -> None:
    """Enveloped faults answer their status and code once, then service is normal again."""
    key, _ = await seeded(sim)
    await sim.fault(key, kind)
    reply = await sim.fresh(key)
    assert reply.status == status
    assert (reply.json["success"], reply.json["error"]) == (False, code)
    assert (await sim.fresh(key)).status == 200


async def test_business_500_carries_limit_data(sim: Sim) -> None:
    """The business error names the active limit in its data, as TorBox does."""
    key, _ = await seeded(sim)
    await sim.fault(key, "business_500")
    data = (await sim.fresh(key)).json["data"]
    assert set(data) == {"active_limit", "current_active_downloads"}


async def test_bad_gateway_is_a_cloudflare_html_page(sim: Sim) -> None:
    """bad_gateway_html answers 502 with an HTML page, not JSON."""
    key, _ = await seeded(sim)
    await sim.fault(key, "bad_gateway_html")
    reply = await sim.fresh(key)
    assert reply.status == 502
    assert reply.headers["Content-Type"].startswith("text/html")
    assert b"cloudflare" in reply.body.lower()
    assert b"502" in reply.body
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(reply.body)


async def test_unavailable_503_with_retry_after(sim: Sim) -> None:
    """unavailable_503 answers 503 and passes retry_after on as a header."""
    key, _ = await seeded(sim)
    await sim.fault(key, "unavailable_503", retry_after=7)
    reply = await sim.fresh(key)
    assert reply.status == 503
    assert reply.headers["retry-after"] == "7"


async def test_injected_429(sim: Sim) -> None:
    """rate_limit_429 answers the limiter's bare 429 body with the chosen retry-after."""
    key, _ = await seeded(sim)
    await sim.fault(key, "rate_limit_429", retry_after=2.5)
    reply = await sim.fresh(key)
    assert reply.status == 429
    assert reply.json == {"detail": "300 per 1 minute"}
    assert reply.headers["retry-after"] == "3"
    assert "x-ratelimit-reset" in reply.headers


async def test_malformed_json_is_a_truncated_200(sim: Sim) -> None:
    """malformed_json answers 200 with a JSON body cut short."""
    key, _ = await seeded(sim)
    await sim.fault(key, "malformed_json")
    reply = await sim.fresh(key)
    assert reply.status == 200
    assert reply.body.startswith(b'{"success":true')
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)


async def test_empty_once_affects_mylist_only(sim: Sim) -> None:
    """empty_once makes one mylist call answer the empty-list quirk and spares other endpoints."""
    key, _ = await seeded(sim)
    await sim.fault(key, "empty_once")
    assert (await sim.call("GET", f"{API}/user/me", key=key)).status == 200
    reply = await sim.fresh(key)
    assert (reply.status, reply.json["success"], reply.json["error"]) == (
        404,
        True,
        "ITEM_NOT_FOUND",
    )
    assert (await sim.fresh(key)).status == 200


async def test_slow_still_answers(sim: Sim) -> None:
    """slow delays the answer but then serves the request normally."""
    key, _ = await seeded(sim)
    await sim.fault(key, "slow", delay=0.05)
    reply = await sim.fresh(key)
    assert reply.status == 200
    assert len(reply.json["data"]) == 1


async def test_timeout_hangs_until_the_client_gives_up(sim: Sim) -> None:
    """timeout keeps the request hanging, so a client with a short timeout fails."""
    key, _ = await seeded(sim)
    await sim.fault(key, "timeout", delay=5)
    with pytest.raises(asyncio.TimeoutError):
        await sim.client.get(
            f"{API}/torrents/mylist",
            headers={"Authorization": f"Bearer {key}"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )


async def test_timeout_ends_with_a_gateway_timeout(sim: Sim) -> None:
    """A timeout fault that outlasts its hang answers 504, as the gateway would."""
    key, _ = await seeded(sim)
    await sim.fault(key, "timeout", delay=0.05)
    reply = await sim.fresh(key)
    assert reply.status == 504
    assert reply.headers["Content-Type"].startswith("text/html")


async def test_count_and_clear(sim: Sim) -> None:
    """count sets how many requests fail; DELETE /_sim/faults/{key} clears what is left."""
    key, _ = await seeded(sim)
    await sim.fault(key, "http_500", count=2)
    assert [(await sim.fresh(key)).status for _ in range(2)] == [500, 500]
    assert (await sim.fresh(key)).status == 200
    await sim.fault(key, "http_500", count=5)
    cleared = await sim.call("DELETE", f"/_sim/faults/{key}")
    assert cleared.json == {"api_key": key, "cleared": 1}
    assert (await sim.fresh(key)).status == 200


async def test_seconds_means_every_request_until_it_expires(sim: Sim) -> None:
    """A fault with seconds and no count fails every request while it lasts."""
    key, _ = await seeded(sim)
    await sim.fault(key, "unavailable_503", seconds=60)
    assert [(await sim.fresh(key)).status for _ in range(4)] == [503] * 4
    pending = (await sim.state(key))["faults"]
    assert pending[0]["kind"] == "unavailable_503"
    assert pending[0]["count"] is None
    assert 0 < pending[0]["seconds"] <= 60


async def test_endpoint_scope(sim: Sim) -> None:
    """A fault scoped to control spares mylist and is logged against the control request."""
    key, tid = await seeded(sim)
    await sim.fault(key, "http_500", endpoint="control")
    assert (await sim.fresh(key)).status == 200
    reply = await sim.control(key, torrent_id=tid, operation="stop_seeding")
    assert reply.status == 500
    log = (await sim.state(key))["requests"]
    assert [(e["operation"], e["id"], e["status"], e["result"]) for e in log] == [
        ("stop_seeding", tid, 500, "fault:http_500")
    ]
    assert (await sim.torrent(key, tid))["download_state"] == "uploading"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"api_key": "nobody-0000000000"}, 404),
        ({"api_key": None}, 400),
        ({"kind": "meteor_strike"}, 400),
        ({"endpoint": "everything"}, 400),
        ({"count": 0}, 400),
        ({"kind": "slow", "delay": -1}, 400),
    ],
)
async def test_bad_fault_requests(sim: Sim, extra: dict[str, Any], status: int) -> None:
    """Unknown keys, kinds or endpoints and bad numbers are refused with a JSON error."""
    key, _ = await seeded(sim)
    body = {"api_key": key, "kind": "http_500", **extra}
    reply = await sim.call("POST", "/_sim/faults", json_body=body)
    assert reply.status == status
    assert "error" in reply.json


async def listed(sim: Sim, key: str, *, fresh: bool = True, **params: str) -> list[int]:
    reply = await (sim.fresh(key, **params) if fresh else sim.mylist(key, **params))
    assert reply.status == 200, reply.body
    return [t["id"] for t in reply.json["data"]]


@pytest.mark.parametrize("fresh", [True, False])
async def test_hide_torrents_for_one_poll(sim: Sim, fresh: bool) -> None:
    """A hidden torrent is missing from one 200 list, fresh or cached, then back."""
    account = await sim.account(mix={"seeding": 3})
    key, ids = account["api_key"], account["torrent_ids"]
    everything = await listed(sim, key, fresh=fresh)
    added = await sim.fault(key, "hide_torrents", ids=[ids[1]])
    assert added["fault"]["ids"] == [ids[1]]
    assert await listed(sim, key, fresh=fresh) == [i for i in everything if i != ids[1]]
    assert await listed(sim, key, fresh=fresh) == everything


async def test_hide_torrents_by_hash_for_a_duration(sim: Sim) -> None:
    """Hashes (any case) name torrents too; with seconds, every poll in the window misses them."""
    account = await sim.account(mix={"seeding": 2})
    key, ids = account["api_key"], account["torrent_ids"]
    target = await sim.torrent(key, ids[0])
    await sim.fault(key, "hide_torrents", hashes=[target["hash"].upper()], seconds=60)
    for _ in range(3):
        assert await listed(sim, key) == [ids[1]]
    pending = (await sim.state(key))["faults"]
    assert (pending[0]["kind"], pending[0]["ids"], pending[0]["count"]) == (
        "hide_torrents",
        [ids[0]],
        None,
    )


async def test_hidden_torrent_by_id_is_the_not_found_quirk(sim: Sim) -> None:
    """mylist?id= for a hidden torrent answers like a missing one; others are served."""
    account = await sim.account(mix={"seeding": 2})
    key, ids = account["api_key"], account["torrent_ids"]
    await sim.fault(key, "hide_torrents", ids=[ids[0]], count=2)
    hidden = await sim.fresh(key, id=str(ids[0]))
    assert (hidden.status, hidden.json["success"], hidden.json["error"]) == (
        404,
        True,
        "ITEM_NOT_FOUND",
    )
    assert (await sim.fresh(key, id=str(ids[1]))).status == 200
    assert (await sim.fresh(key, id=str(ids[0]))).status == 200


async def test_hiding_everything_is_the_empty_list_quirk(sim: Sim) -> None:
    """With every torrent hidden, mylist answers as TorBox does for an empty list."""
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    await sim.fault(key, "hide_torrents", ids=account["torrent_ids"])
    reply = await sim.fresh(key)
    assert (reply.status, reply.json["error"]) == (404, "ITEM_NOT_FOUND")


async def test_hidden_torrents_leave_no_hole_in_the_pages(sim: Sim) -> None:
    """Paging happens after hiding, as if the torrent were not on the account."""
    account = await sim.account(mix={"finished_inactive": 4})
    key = account["api_key"]
    everything = await listed(sim, key)
    await sim.fault(key, "hide_torrents", ids=[everything[0]])
    assert await listed(sim, key, offset="0", limit="2") == everything[1:3]


async def test_list_faults_spare_other_endpoints(sim: Sim) -> None:
    """A list fault neither fires on nor is spent by other endpoints."""
    account = await sim.account(mix={"seeding": 2})
    key, ids = account["api_key"], account["torrent_ids"]
    await sim.fault(key, "hide_torrents", ids=[ids[0]])
    await sim.fault(key, "partial_list", fraction=0.5)
    assert (await sim.call("GET", f"{API}/user/me", key=key)).status == 200
    assert ids[0] not in await listed(sim, key)
    assert len(await listed(sim, key)) == 1
    assert len(await listed(sim, key)) == 2


async def test_partial_list_drops_a_share_and_answers_200(sim: Sim) -> None:
    """partial_list leaves out ceil(fraction x N) torrents from each response while it lasts."""
    account = await sim.account(mix={"finished_inactive": 10})
    key = account["api_key"]
    everything = await listed(sim, key, fresh=False)
    await sim.fault(key, "partial_list", fraction=0.25, count=2)
    for fresh in (True, False):
        part = await listed(sim, key, fresh=fresh)
        assert len(part) == 7
        assert set(part) < set(everything)
        assert part == [i for i in everything if i in part]
    assert await listed(sim, key) == everything
    described = (await sim.fault(key, "partial_list", fraction=0.1))["fault"]
    assert described["fraction"] == 0.1
    assert len(await listed(sim, key)) == 9


async def test_partial_list_of_everything_is_a_200_with_no_data(sim: Sim) -> None:
    """fraction 1 answers success with data [], unlike TorBox's empty-list 404."""
    key = (await sim.account(mix={"seeding": 3}))["api_key"]
    await sim.fault(key, "partial_list", fraction=1)
    reply = await sim.fresh(key)
    assert reply.status == 200
    assert (reply.json["success"], reply.json["error"], reply.json["data"]) == (True, None, [])


async def test_partial_list_by_id(sim: Sim) -> None:
    """mylist?id= for a torrent the glitch leaves out is the not-found quirk."""
    account = await sim.account(mix={"seeding": 1})
    key, tid = account["api_key"], account["torrent_ids"][0]
    await sim.fault(key, "partial_list", fraction=1)
    assert (await sim.fresh(key, id=str(tid))).status == 404


async def test_partial_list_is_repeatable_for_a_seed(make_sim: SimFactory) -> None:
    """The same seed and the same steps drop the same torrents."""
    dropped: list[list[int]] = []
    for _ in range(2):
        sim = await make_sim(seed=11)
        account = await sim.account(mix={"finished_inactive": 20})
        key = account["api_key"]
        await sim.fault(key, "partial_list", fraction=0.5, count=2)
        first, second = await listed(sim, key), await listed(sim, key)
        assert first != second
        dropped.append(first + second)
    assert dropped[0] == dropped[1]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"kind": "hide_torrents"}, "ids or hashes"),
        ({"kind": "hide_torrents", "ids": [1]}, "[1]"),
        ({"kind": "hide_torrents", "ids": "1"}, "ids"),
        ({"kind": "hide_torrents", "ids": [True]}, "ids"),
        ({"kind": "hide_torrents", "hashes": ["ab" * 20]}, "ab" * 20),
        ({"kind": "hide_torrents", "hashes": [1]}, "hashes"),
        ({"kind": "hide_torrents", "fraction": 0.5, "ids": []}, "fraction"),
        ({"kind": "partial_list"}, "fraction"),
        ({"kind": "partial_list", "fraction": 0}, "fraction"),
        ({"kind": "partial_list", "fraction": 1.5}, "fraction"),
        ({"kind": "partial_list", "fraction": "half"}, "fraction"),
        ({"kind": "partial_list", "fraction": 0.5, "ids": []}, "ids"),
        ({"kind": "partial_list", "fraction": 0.5, "endpoint": "control"}, "mylist"),
        ({"kind": "http_500", "fraction": 0.5}, "fraction"),
        ({"kind": "http_500", "colour": "red"}, "colour"),
    ],
)
async def test_bad_list_faults(sim: Sim, extra: dict[str, Any], words: str) -> None:
    """List-fault fields are checked strictly, and each error names what is wrong."""
    key, _ = await seeded(sim)
    reply = await sim.call("POST", "/_sim/faults", json_body={"api_key": key, **extra})
    assert reply.status == 400
    assert words in reply.json["error"]
