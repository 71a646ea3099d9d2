"""Whole polls: the scheduler (in this event loop) against the simulated TorBox over HTTP and a
real userstore process, observed through the simulator, the userstore's gRPC and GetStatus."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import grpc
import pytest
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import userstore_service_pb2 as upb

from common.auth import auth_id_for
from tests.e2e.stack import eventually
from tests.scheduler.conftest import (
    REANNOUNCE_ALL,
    Scheduler,
    SchedulerFactory,
    SimServer,
    first_poll,
)

pytestmark = pytest.mark.e2e

MYLIST = "torrents/mylist"
CONTROL = "torrents/controltorrent"


async def registered(sim: SimServer, scheduler: Scheduler, **spec: Any) -> dict[str, Any]:
    """A simulated account, registered through ensure-db and polled once."""
    account = await sim.account(**spec)
    response = await scheduler.ensure(account["api_key"])
    assert response.was_created
    await first_poll(scheduler, account["api_key"])
    return account


async def test_a_registered_user_is_polled_and_ingested(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """ensure-db schedules the user at once; every poll's snapshot reaches the userstore."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 3, "queued": 1})
    key = account["api_key"]
    listed = await scheduler.torrents(key)
    assert {t.torrent_id for t in listed.torrents if not t.queued} == set(account["torrent_ids"])
    assert {t.torrent_id for t in listed.torrents if t.queued} == set(account["queued_ids"])
    status = await scheduler.status()
    assert status.users_scheduled == 1
    assert status.keys_healthy == 1
    before = await scheduler.applied()
    await eventually(
        lambda: _more_than(scheduler, before + 2), timeout=30, what="later polls applied"
    )


async def _more_than(scheduler: Scheduler, count: int) -> bool:
    return await scheduler.applied() >= count


async def _snapshot_state(scheduler: Scheduler, key: str) -> tuple[float, list[tuple[Any, ...]]]:
    listed = await scheduler.torrents(key)
    rows = sorted(
        (t.torrent_id, t.present, t.last_seen_at, t.HasField("removed_at")) for t in listed.torrents
    )
    return listed.observed_at, rows


@pytest.mark.parametrize(
    "kind", ["http_500", "bad_gateway_html", "unavailable_503", "malformed_json", "timeout"]
)
async def test_a_failed_fetch_ingests_nothing_and_sends_no_action(
    sim: SimServer, make_scheduler: SchedulerFactory, kind: str
) -> None:
    """While mylist fails, no snapshot reaches the userstore and a live rule sends nothing."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 3})
    key = account["api_key"]
    await sim.fault(key, kind, endpoint="mylist", count=100_000, delay=3)

    # Once a poll has failed, the poll before it is complete (one user's polls never overlap):
    # from here on nothing may be applied.
    await eventually(
        lambda: _true(scheduler.poller.stats.failed >= 1), timeout=30, what="a failed poll"
    )
    applied = await scheduler.applied()
    state = await _snapshot_state(scheduler, key)
    # A rule that would act on every torrent the moment a snapshot got through.
    await scheduler.save_rules(key, [REANNOUNCE_ALL])
    failed = scheduler.poller.stats.failed
    await eventually(
        lambda: _true(scheduler.poller.stats.failed >= failed + 2),
        timeout=60,
        what="two more failed polls",
    )
    assert await scheduler.applied() == applied
    assert await _snapshot_state(scheduler, key) == state
    assert (await sim.state(key))["requests"] == []
    assert sim.of(key, CONTROL) == []

    # The same scheduler and rule act as soon as TorBox answers again.
    await sim.clear_faults(key)
    await eventually(
        lambda: _control_ops(sim, key, expected=3), timeout=60, what="the rule's actions"
    )
    assert await scheduler.applied() > applied


async def test_the_empty_list_quirk_removes_nothing(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """A one-off 404 "no torrents" answer for a full account leaves every torrent present."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 3, "downloading": 2})
    key = account["api_key"]
    await sim.fault(key, "empty_once", endpoint="mylist")
    quirk = await eventually(
        lambda: _first([h for h in sim.of(key, MYLIST) if h.status == 404]),
        what="the empty answer",
    )
    await eventually(
        lambda: scheduler.polled_after(key, quirk.ended + 1.5), timeout=30, what="later polls"
    )
    listed = await scheduler.torrents(key, include_removed=True)
    assert {t.torrent_id for t in listed.torrents} == set(account["torrent_ids"])
    assert all(t.present and not t.HasField("removed_at") for t in listed.torrents)


async def test_three_auth_failures_stop_polling_until_ensure_db(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """Three refused polls mark the user auth_failed and stop it; ensure-db brings it back."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 2})
    witness = await registered(sim, scheduler, mix={"seeding": 1})
    key = account["api_key"]
    await sim.fault(key, "revoked", endpoint="mylist", count=3)

    async def stopped() -> bool:
        return (await scheduler.user(key)).status == 2  # USER_STATUS_AUTH_FAILED

    await eventually(stopped, timeout=30, what="the user marked auth_failed")
    status = await scheduler.status()
    assert status.keys_auth_failed == 1
    assert status.users_scheduled == 1
    assert [h.status for h in sim.polls(key)][-3:] == [403, 403, 403]

    # Not polled any more, while the other user's polls go on.
    polls = len(sim.polls(key))
    witnessed = len(sim.polls(witness["api_key"]))
    await eventually(
        lambda: _true(len(sim.polls(witness["api_key"])) >= witnessed + 3),
        timeout=30,
        what="three polls of the other user",
    )
    assert len(sim.polls(key)) == polls

    response = await scheduler.ensure(key)
    assert response.reactivated
    assert (await scheduler.user(key)).status == 1  # USER_STATUS_ACTIVE
    since = time.time()
    await eventually(lambda: scheduler.polled_after(key, since), timeout=30, what="polls again")
    status = await scheduler.status()
    assert status.keys_auth_failed == 0
    assert status.users_scheduled == 2


async def test_a_poll_slower_than_the_interval_never_overlaps_itself(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """A 4.5 s fetch at a 1 s interval: no second poll starts meanwhile, missed runs coalesce."""
    scheduler = await make_scheduler(TORBOX_TIMEOUT_SECONDS="10")
    account = await registered(sim, scheduler, mix={"seeding": 2})
    key = account["api_key"]
    await sim.fault(key, "slow", endpoint="mylist", delay=4.5)
    slow = await eventually(
        lambda: _first([h for h in sim.of(key, MYLIST) if h.ended - h.started >= 4]),
        timeout=30,
        what="the slow fetch",
    )
    await eventually(
        lambda: _first([h for h in sim.polls(key) if h.started > slow.ended + 1.0]),
        timeout=30,
        what="polling to go on after the slow fetch",
    )
    assert sim.max_in_flight[(key, MYLIST)] == 1
    assert [h for h in sim.polls(key) if slow.started < h.started < slow.ended] == []
    # Four runs were missed while it hung. Queued, they would start back to back once it ended;
    # coalesced, the next 0.9 s hold one run (two if the loop fired one late).
    assert len([h for h in sim.polls(key) if slow.ended <= h.started < slow.ended + 0.9]) <= 2
    assert scheduler.poller.stats.failed == 0


async def test_a_429_holds_the_users_polls_to_the_second(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """After a 429 with retry-after: 3, the user's next request waits the three seconds."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 2})
    key = account["api_key"]
    await sim.fault(key, "rate_limit_429", endpoint="mylist", retry_after=3)
    limited = await eventually(
        lambda: _first([h for h in sim.of(key) if h.status == 429]), what="the 429"
    )
    await eventually(
        lambda: scheduler.polled_after(key, limited.ended), timeout=30, what="a poll after it"
    )
    later = [h for h in sim.of(key) if h.started > limited.started]
    assert min(h.started for h in later) >= limited.ended + 3.0
    assert (await scheduler.status()).keys_healthy == 1


async def test_an_outage_opens_the_breaker_pausing_polls_and_actions_until_a_probe_succeeds(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """Every call failing opens the breaker: only probes go out; when TorBox is back, all resume."""
    scheduler = await make_scheduler()
    accounts = [await registered(sim, scheduler, mix={"seeding": 2}) for _ in range(3)]
    keys = [a["api_key"] for a in accounts]
    for key in keys:
        await sim.fault(key, "bad_gateway_html", count=100_000)

    async def breaker(state: str) -> bool:
        return (await scheduler.status()).breaker_state == state

    await eventually(lambda: breaker("open"), timeout=60, what="the breaker to open")
    await eventually(
        lambda: _true(scheduler.poller.stats.in_flight == 0), timeout=30, what="polls to end"
    )
    quiet = time.time()
    applied = await scheduler.applied()
    for key in keys:
        await scheduler.save_rules(key, [REANNOUNCE_ALL])

    def after(endpoints: set[str]) -> list[Any]:
        return [h for h in sim.hits if h.started > quiet and h.endpoint in endpoints]

    await eventually(
        lambda: _true(len(after({"user/me"})) >= 2), timeout=30, what="two probes while open"
    )
    assert after({MYLIST, "queued/getqueued", CONTROL}) == []
    assert await scheduler.applied() == applied
    assert await breaker("open")

    for key in keys:
        await sim.clear_faults(key)
    await eventually(lambda: breaker("closed"), timeout=30, what="a probe to close it")
    for key in keys:
        await eventually(
            lambda key=key: _control_ops(sim, key, expected=2),  # type: ignore[misc]
            timeout=60,
            what="the rule's actions after recovery",
        )


async def test_actions_are_sent_and_each_outcome_is_recorded_with_torboxs_code(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """A business error is recorded with its code and not retried; an *_ERROR one is retried."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 4})
    key = account["api_key"]
    await sim.fault(key, "business_500", endpoint="control")
    await sim.fault(key, "http_500", endpoint="control")
    await scheduler.save_rules(key, [REANNOUNCE_ALL])

    async def settled() -> list[Any] | None:
        listed = await scheduler.torrents(key)
        actions = [t.last_action for t in listed.torrents if t.HasField("last_action")]
        done = len(actions) == 4 and all(a.status != "pending" for a in actions)
        return actions if done else None

    actions = await eventually(settled, timeout=30, what="every outcome recorded")
    assert sorted((a.action, a.status, a.error_code) for a in actions) == [
        ("reannounce", "failed", "ACTIVE_LIMIT"),
        ("reannounce", "succeeded", ""),
        ("reannounce", "succeeded", ""),
        ("reannounce", "succeeded", ""),
    ]
    sent: dict[int, int] = {}
    for request in (await sim.state(key))["requests"]:
        sent[request["id"]] = sent.get(request["id"], 0) + 1
    assert set(sent) == set(account["torrent_ids"])
    assert sorted(sent.values()) == [1, 1, 1, 2]
    status = await scheduler.status()
    assert status.actions_sent == 3
    assert status.actions_failed == 1


async def test_a_plans_early_poll_is_honoured_but_never_sooner_than_the_minimum(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """A rule due every 0.6 s asks for early polls: they come, but at least 2 s apart."""
    scheduler = await make_scheduler(
        POLL_INTERVAL_SECONDS="60", IDLE_POLL_INTERVAL_SECONDS="60", MIN_POLL_INTERVAL_SECONDS="2"
    )
    account = await registered(sim, scheduler, mix={"seeding": 1})
    key = account["api_key"]
    rule = {**REANNOUNCE_ALL, "trigger": {"type": "interval", "value": 0.01}}
    await scheduler.save_rules(key, [rule])
    saved = json_rules(await scheduler.userstore.ListRules(_list_rules(key), timeout=10))
    # A manual run polls now; its plan asks for the next poll in 0.6 s.
    await scheduler.stub.RunRule(_run_rule(key, saved[0]["id"]), timeout=30)
    run_started = sim.polls(key)[-1].started
    early = await eventually(
        lambda: _at_least([h for h in sim.polls(key) if h.started >= run_started], 4),
        timeout=40,  # well inside the 60 s interval: these polls are the plan's early ones
        what="early polls",
    )
    gaps = [b.started - a.started for a, b in itertools.pairwise(early)]
    assert min(gaps) >= 2.0, gaps


async def test_rule_changes_and_removals_are_followed_without_a_restart(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """Enabling a rule moves a user to the active interval and back; a removed user stops."""
    scheduler = await make_scheduler(IDLE_POLL_INTERVAL_SECONDS="60")
    account = await registered(sim, scheduler, mix={"seeding": 1})
    witness = await registered(sim, scheduler, mix={"seeding": 1})
    key, clock = account["api_key"], witness["api_key"]
    # The witness has a rule, so it is polled every second: it is the test's clock.
    await scheduler.save_rules(clock, [{**REANNOUNCE_ALL, "enabled": False}, REANNOUNCE_ALL])

    async def ticks(count: int) -> None:
        start = len(sim.polls(clock))
        await eventually(
            lambda: _true(len(sim.polls(clock)) >= start + count), timeout=60, what="clock ticks"
        )

    await ticks(2)
    idle = len(sim.polls(key))
    await ticks(4)
    assert len(sim.polls(key)) <= idle + 1  # at most the poll already due

    await scheduler.save_rules(key, [REANNOUNCE_ALL])
    active = len(sim.polls(key))
    await eventually(
        lambda: _true(len(sim.polls(key)) >= active + 3),
        timeout=40,  # inside the 60 s idle interval: only the active interval gets these
        what="polls at the active interval",
    )

    await scheduler.save_rules(key, [])
    await ticks(2)  # the registry sync (or the next plan) saw the change
    back_to_idle = len(sim.polls(key))
    await ticks(4)
    assert len(sim.polls(key)) <= back_to_idle + 1

    # Removed behind the scheduler's back (another replica handled it): the sync drops the user.
    await scheduler.userstore.RemoveUser(upb.RemoveUserRequest(auth_id=auth_id_for(clock)))
    await eventually(
        lambda: _scheduled(scheduler, 1), timeout=30, what="the removed user unscheduled"
    )
    gone = len(sim.polls(clock))
    await scheduler.save_rules(key, [REANNOUNCE_ALL])
    start = len(sim.polls(key))
    await eventually(
        lambda: _true(len(sim.polls(key)) >= start + 4), timeout=40, what="the other user polled"
    )
    assert len(sim.polls(clock)) == gone


async def test_a_user_being_moved_between_shards_is_not_polled_until_the_move_ends(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """A user frozen for a move (status moving) is unscheduled; an aborted move resumes it."""
    scheduler = await make_scheduler()
    account = await registered(sim, scheduler, mix={"seeding": 1})
    witness = await registered(sim, scheduler, mix={"seeding": 1})
    key, clock = account["api_key"], witness["api_key"]
    await scheduler.userstore.BeginMove(upb.BeginMoveRequest(auth_id=auth_id_for(key)))
    await eventually(lambda: _scheduled(scheduler, 1), timeout=30, what="the mover unscheduled")
    frozen = len(sim.polls(key))
    start = len(sim.polls(clock))
    await eventually(
        lambda: _true(len(sim.polls(clock)) >= start + 3), timeout=30, what="the other user polled"
    )
    assert len(sim.polls(key)) == frozen
    await scheduler.userstore.AbortMove(upb.AbortMoveRequest(auth_id=auth_id_for(key)))
    since = time.time()
    await eventually(lambda: scheduler.polled_after(key, since), timeout=30, what="polled again")


# Helpers ----------------------------------------------------------------------------------------


async def _true(value: bool) -> bool:
    return value


async def _scheduled(scheduler: Scheduler, count: int) -> bool:
    return (await scheduler.status()).users_scheduled == count


async def _at_least(items: list[Any], count: int) -> list[Any] | None:
    return items if len(items) >= count else None


def _list_rules(key: str) -> Any:
    return upb.ListRulesRequest(auth_id=auth_id_for(key))


def _run_rule(key: str, rule_id: int) -> Any:
    return spb.RunRuleRequest(auth_id=auth_id_for(key), rule_id=rule_id)


def json_rules(response: Any) -> list[dict[str, Any]]:
    return [json.loads(text) for text in response.rules_json]


async def _first(items: list[Any]) -> Any:
    return items[0] if items else None


async def _control_ops(sim: SimServer, key: str, *, expected: int) -> bool:
    log = (await sim.state(key))["requests"]
    done = {r["id"] for r in log if r["operation"] == "reannounce" and r["status"] == 200}
    return len(done) >= expected


async def test_user_polling_says_when_the_next_poll_is_and_leaves_unknown_unknown(
    sim: SimServer, make_scheduler: SchedulerFactory
) -> None:
    """GetUserPolling: a stranger's next poll and key health are unknown (never 0); a polled
    user has a next poll and a healthy key; a user stopped after refusals has no next poll."""
    scheduler = await make_scheduler()

    async def polling(key: str) -> spb.GetUserPollingResponse:
        response: spb.GetUserPollingResponse = await scheduler.stub.GetUserPolling(
            spb.GetUserPollingRequest(auth_id=auth_id_for(key)), timeout=10
        )
        return response

    stranger = await polling("never-registered-key")
    assert not stranger.scheduled
    assert not stranger.HasField("next_poll_at")
    assert not stranger.HasField("poll_interval_seconds")
    assert stranger.key_health == "unknown"

    account = await registered(sim, scheduler, mix={"seeding": 2})
    key = account["api_key"]
    known = await eventually(
        lambda: _healthy(polling, key), timeout=30, what="a healthy, scheduled user"
    )
    assert known.HasField("next_poll_at")
    assert known.poll_interval_seconds == 1.0
    assert known.HasField("last_success_at")
    assert not known.HasField("last_error_code")
    assert not known.polling_paused

    await sim.fault(key, "revoked", endpoint="mylist", count=3)

    async def stopped() -> spb.GetUserPollingResponse | None:
        answer = await polling(key)
        return answer if answer.key_health == "auth_failed" else None

    gone = await eventually(stopped, timeout=30, what="the user stopped after refusals")
    assert not gone.scheduled
    assert not gone.HasField("next_poll_at")
    assert gone.consecutive_failures == 3
    assert gone.HasField("last_error_code")

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await scheduler.stub.GetUserPolling(
            spb.GetUserPollingRequest(auth_id="not-an-auth-id"), timeout=10
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _healthy(polling: Any, key: str) -> spb.GetUserPollingResponse | None:
    answer: spb.GetUserPollingResponse = await polling(key)
    return answer if answer.scheduled and answer.key_health == "healthy" else None
