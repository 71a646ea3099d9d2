"""A key removed while a manual run of its user is in flight: the run answers "user gone"."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as upb

from common.auth import auth_id_for
from tests.e2e.stack import eventually
from tests.scheduler.conftest import REANNOUNCE_ALL, SchedulerFactory, SimServer, first_poll

pytestmark = pytest.mark.e2e


async def test_removing_a_key_during_a_manual_run_answers_not_found(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """The run's snapshot reaches a shard that no longer knows the user: 404, not 503."""
    scheduler = await make_scheduler(TORBOX_TIMEOUT_SECONDS="10", IDLE_POLL_INTERVAL_SECONDS="600")
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    await scheduler.ensure(key)
    await first_poll(scheduler, key)
    # Disabled: the user stays on the idle interval, so only the manual run polls.
    await scheduler.save_rules(key, [{**REANNOUNCE_ALL, "enabled": False}])
    rules = await scheduler.userstore.ListRules(
        upb.ListRulesRequest(auth_id=auth_id_for(key)), timeout=10
    )
    rule_id = json.loads(rules.rules_json[0])["id"]
    await sim.fault(key, "slow", endpoint="mylist", delay=2.0)
    before = sim.received[(key, "torrents/mylist")]
    run = asyncio.ensure_future(
        scheduler.stub.RunRule(
            spb.RunRuleRequest(auth_id=auth_id_for(key), rule_id=rule_id), timeout=30
        )
    )

    async def fetching() -> bool:
        return sim.received[(key, "torrents/mylist")] > before

    await eventually(fetching, timeout=10, what="the run's fetch in flight")
    removed = await scheduler.stub.RemoveKey(
        spb.RemoveKeyRequest(auth_id=auth_id_for(key)), timeout=10
    )
    assert removed.removed
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()
