"""Answers arrive inside TBM's proxy timeouts, and work the user was not told failed goes on."""

from __future__ import annotations

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import assert_error, rule

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_a_slow_manual_run_answers_in_time_and_still_finishes(make_user: MakeUser) -> None:
    """TorBox slower than the run's deadline: 200 "still running", and the run is logged later."""
    person = await make_user()
    stack = person.stack
    base = await stack.start_gateway("gateway-short-run", RUN_TIMEOUT_SECONDS="3")
    status, body, _ = await stack.call(
        base, "POST", "/api/automation/rules", key=person.key, json={"rules": [rule("slow run")]}
    )
    assert status == 200, body
    rule_id = body["rules"][0]["id"]
    await stack.sim(
        "POST",
        "/_sim/faults",
        json={"api_key": person.key, "kind": "slow", "endpoint": "mylist", "delay": 6},
    )
    status, body, _ = await stack.call(
        base, "POST", f"/api/automation/rules/{rule_id}/run", key=person.key
    )
    assert status == 200, body
    assert body["result"]["reason"].startswith("still running"), body
    assert body["result"]["executed"] is False

    async def logged() -> bool:
        logs = await person.ok("GET", f"/api/automation/rules/{rule_id}/logs")
        return any(log["items_processed"] >= 0 and log["dry_run"] == 0 for log in logs["logs"])

    # The run went on after the answer: its log row appears once TorBox answers.
    await eventually(logged, timeout=30, what="the slow run's log row")


async def test_ensure_db_gives_up_before_storing_anything(make_user: MakeUser) -> None:
    """TorBox too slow to validate a new key: 503 TORBOX_TIMEOUT, and no user was registered."""
    person = await make_user(register=False)
    stack = person.stack
    base = await stack.start_gateway("gateway-short-ensure", ENSURE_TIMEOUT_SECONDS="2")
    await stack.sim(
        "POST",
        "/_sim/faults",
        json={"api_key": person.key, "kind": "slow", "endpoint": "user", "delay": 5},
    )
    reply = await stack.call(base, "POST", "/api/backend/api-key/ensure-db", key=person.key)
    assert_error(reply, 503, code="TORBOX_TIMEOUT")
    assert_error(await person.call("GET", "/api/automation/rules"), 404)
    await stack.sim("DELETE", f"/_sim/faults/{person.key}")
    assert (await person.ok("POST", "/api/backend/api-key/ensure-db"))["wasCreated"] is True
