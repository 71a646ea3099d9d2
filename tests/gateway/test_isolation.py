"""Users are walled off: one user's ids used with another's key find nothing and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import User, assert_error, rule

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def snapshot(user: User, rule_ids: list[int], torrent_id: int) -> dict[str, Any]:
    """Everything a user can read about their own data (to compare before and after)."""
    volatile = {"last_evaluated_at", "last_executed_at", "execution_count", "updated_at"}
    rules = (await user.ok("GET", "/api/automation/rules"))["rules"]
    return {
        "rules": [{k: v for k, v in r.items() if k not in volatile} for r in rules],
        "logs": [
            [row["id"] for row in (await user.ok("GET", f"/api/automation/rules/{i}/logs"))["logs"]]
            for i in rule_ids
        ],
        "archived": (await user.ok("GET", "/api/archived-downloads"))["data"],
        "protected": (await user.ok("GET", "/api/downloads/protect"))["protected_ids"],
        "limits": (await user.ok("GET", f"/api/automation/torrents/{torrent_id}/limits"))["limits"],
    }


async def test_one_users_ids_are_invisible_to_another(make_user: MakeUser) -> None:
    """B using A's rule, log, archive and torrent ids gets 404s and empty lists; A is untouched."""
    alice = await make_user(mix={"seeding": 2})
    bob = await make_user(mix={"downloading": 1})

    doc = rule(
        "alice's", groups=[{"conditions": [{"type": "RATIO", "operator": "gte", "value": 0}]}]
    )
    saved = await alice.ok("POST", "/api/automation/rules", json={"rules": [doc, rule("second")]})
    rule_ids = [r["id"] for r in saved["rules"]]

    async def alice_polled() -> bool:
        body = await alice.ok("GET", "/api/automation/torrents")
        return len(body["torrents"]) == 2

    await eventually(alice_polled, timeout=30, what="alice's first poll")
    await alice.ok("POST", f"/api/automation/rules/{rule_ids[0]}/run")
    archive = (
        await alice.ok(
            "POST", "/api/archived-downloads", json={"torrent_id": 4242, "hash": "d" * 40}
        )
    )["data"]
    torrent_id = alice.torrent_ids[0]
    await alice.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": [torrent_id], "protected": True}
    )
    await alice.ok("PUT", f"/api/automation/torrents/{torrent_id}/limits", json={"seed_ratio": 3})
    before = await snapshot(alice, rule_ids, torrent_id)
    assert before["logs"][0]
    assert before["archived"]
    assert before["protected"]
    assert before["limits"]

    # Bob has no rules or archives: every one of Alice's ids is unknown to him.
    for rule_id in rule_ids:
        base = f"/api/automation/rules/{rule_id}"
        assert_error(await bob.call("GET", base), 404, code="RULE_NOT_FOUND")
        assert_error(await bob.call("PUT", base, json={"enabled": True}), 404)
        assert_error(await bob.call("DELETE", base), 404)
        assert_error(await bob.call("GET", f"{base}/logs"), 404)
        assert_error(await bob.call("DELETE", f"{base}/logs"), 404)
        assert_error(await bob.call("POST", f"{base}/run"), 404)
    assert_error(await bob.call("DELETE", f"/api/archived-downloads/{archive['id']}"), 404)
    reply = await bob.call("POST", f"/api/archived-downloads/{archive['id']}/restore")
    assert_error(reply, 404)

    # His lists hold only his own things.
    assert (await bob.ok("GET", "/api/automation/rules"))["rules"] == []
    assert (await bob.ok("GET", "/api/archived-downloads?search=dddd"))["data"] == []
    assert (await bob.ok("GET", "/api/downloads/protect"))["protected_ids"] == []
    assert (await bob.ok("GET", f"/api/automation/torrents/{torrent_id}/limits"))["limits"] is None
    events = await bob.ok("GET", f"/api/automation/torrents/{torrent_id}/events")
    assert events["events"] == []

    async def bob_polled() -> list[int] | None:
        body = await bob.ok("GET", "/api/automation/torrents?include_removed=true")
        ids = [t["torrent_id"] for t in body["torrents"]]
        return ids or None

    assert await eventually(bob_polled, timeout=30, what="bob's first poll") == bob.torrent_ids

    # Declaring Alice's auth id with Bob's key is refused outright.
    reply = await bob.call("GET", f"/api/automation/rules?authId={alice.auth_id}")
    assert_error(reply, 403, code="AUTH_ID_MISMATCH")
    reply = await bob.call("GET", "/api/automation/rules", headers={"x-auth-id": alice.auth_id})
    assert_error(reply, 403, code="AUTH_ID_MISMATCH")

    # Bob writing under the same ids touches only his own database.
    await bob.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": [torrent_id], "protected": False}
    )
    await bob.ok("DELETE", f"/api/automation/torrents/{torrent_id}/limits")
    bobs = await bob.ok("POST", "/api/automation/rules", json={"rules": [rule("bob's")]})
    (bob_rule,) = bobs["rules"]
    if bob_rule["id"] in rule_ids:  # ids are per user: the same number is Bob's own rule
        got = await bob.ok("GET", f"/api/automation/rules/{bob_rule['id']}")
        assert got["rule"]["name"] == "bob's"

    assert await snapshot(alice, rule_ids, torrent_id) == before
    assert [r["name"] for r in (await bob.ok("GET", "/api/automation/rules"))["rules"]] == ["bob's"]
