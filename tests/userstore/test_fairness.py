"""One user with the largest rule set allowed must not stall the other users of a shard."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from torbox.automation.v1 import userstore_service_pb2 as pb

from bench.stats import percentile
from bench.userstore import ChildUserstore
from bench.workload import Account, auth_id
from userstore_svc.core.rules.schema import MAX_CONDITIONS, MAX_USER_CONDITIONS

pytestmark = pytest.mark.e2e

ORDINARY = 8
ORDINARY_TORRENTS = 100
HEAVY_TORRENTS = 1_000
# The scheduler polls a user at most every 30 s (MIN_POLL_INTERVAL_SECONDS); 60 times as often
# here, so every phase sees several heavy polls.
HEAVY_EVERY = 0.5
ROUNDS = 30  # per phase; two phases each way: 480 samples per p99
# On a loaded 2-core machine an idle shard's p99 can be a few ms one run and 10 the next; below
# this a 2x comparison measures the machine, not the shard.
FLOOR_MS = 15.0


def heavy_rules() -> list[dict[str, Any]]:
    """The largest rule set a user may save: every condition a `contains` that never matches.

    Under OR nothing short-cuts, so every condition is tested on every torrent on every poll
    (the shape the reliability probe found stalled a shard).
    """
    return [
        {
            "name": f"heavy {r}",
            "enabled": True,
            "trigger": {"type": "interval", "value": 0},
            "dry_run": True,
            "action": {"type": "delete"},
            "groups": [
                {
                    "logicOperator": "or",
                    "conditions": [
                        {"type": "NAME", "operator": "contains", "value": f"no-such-{r}-{c}"}
                        for c in range(MAX_CONDITIONS)
                    ],
                }
            ],
        }
        for r in range(MAX_USER_CONDITIONS // MAX_CONDITIONS)
    ]


async def _timed_round(
    child: ChildUserstore, ids: list[str], accounts: list[Account]
) -> list[float]:
    """One poll of every ordinary user at once; each one's snapshot-to-plan time in ms."""

    async def one(user: str, account: Account) -> float:
        account.advance()
        request = account.ingest_request(f"{user[:8]}-{account.now}", user)
        started = time.perf_counter()
        await child.poll(user, account, request)
        return (time.perf_counter() - started) * 1e3

    return list(await asyncio.gather(*(one(u, a) for u, a in zip(ids, accounts, strict=True))))


async def _heavy_polls(
    child: ChildUserstore, user: str, account: Account, count: list[int]
) -> None:
    """Poll the heavy user every HEAVY_EVERY seconds (back to back if slower) until cancelled."""
    while True:
        started = time.perf_counter()
        account.advance()
        await child.poll(user, account)
        count[0] += 1
        await asyncio.sleep(max(0.0, HEAVY_EVERY - (time.perf_counter() - started)))


async def test_a_heavy_user_leaves_ordinary_users_p99_within_twice(tmp_path: Path) -> None:
    child = ChildUserstore(tmp_path, max_open=50)
    await child.start()
    try:
        ids = [auth_id(i, "fair") for i in range(ORDINARY)]
        await child.register(ids)
        accounts = [Account(seed=i, torrents=ORDINARY_TORRENTS) for i in range(ORDINARY)]
        heavy = auth_id(0, "fair-heavy")
        await child.stub.RegisterUser(pb.RegisterUserRequest(auth_id=heavy, key_ciphertext=b"k"))
        await child.stub.SaveRules(
            pb.SaveRulesRequest(auth_id=heavy, rules_json=json.dumps(heavy_rules()))
        )
        heavy_account = Account(seed=99, torrents=HEAVY_TORRENTS, first_id=10_000)
        for user, account in [*zip(ids, accounts, strict=True), (heavy, heavy_account)]:
            await child.poll(user, account)  # the baseline poll of each user
        await _timed_round(child, ids, accounts)  # warm: every database open

        alone: list[float] = []
        beside: list[float] = []
        heavy_done = [0]
        # Alternate the two conditions so a change in the machine's load hits both alike.
        for _ in range(2):
            for _ in range(ROUNDS):
                alone += await _timed_round(child, ids, accounts)
            hog = asyncio.create_task(_heavy_polls(child, heavy, heavy_account, heavy_done))
            await asyncio.sleep(0.2)  # the heavy user's first poll is under way
            for _ in range(ROUNDS):
                beside += await _timed_round(child, ids, accounts)
            hog.cancel()
            await asyncio.gather(hog, return_exceptions=True)
            await asyncio.sleep(0.5)  # let its last poll finish before measuring alone again

        p99_alone, p99_beside = percentile(alone, 99), percentile(beside, 99)
        report = (
            f"ordinary p99 alone {p99_alone:.1f} ms, beside the heavy user {p99_beside:.1f} ms "
            f"(p50 {percentile(alone, 50):.1f} / {percentile(beside, 50):.1f} ms, "
            f"{heavy_done[0]} heavy polls)"
        )
        # The figures, for the run's output (-s) and every failure message.
        sys.stdout.write(report + "\n")
        assert heavy_done[0] >= 2, report
        assert p99_beside <= 2.0 * max(p99_alone, FLOOR_MS), report
    finally:
        await child.stop()
