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
ROUNDS = 25  # per phase: 200 samples per phase's p99
# More snapshots than a phase can send (a heavy poll takes well over 0.1 s): never runs out.
HEAVY_PER_PHASE = 40
PAIRS = 4  # alone/beside phase pairs; the verdict is their median ratio (one noisy phase is not it)
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


async def _send(child: ChildUserstore, poll_id: str, request: bytes) -> None:
    assert child.ingest is not None
    response = await child.ingest.send(poll_id, request)
    assert response.WhichOneof("kind") == "plan", response
    assert response.plan.applied, response


def _next_request(user: str, account: Account) -> tuple[str, bytes]:
    """The account's next snapshot, encoded (outside any timed span: it is the client's work)."""
    account.advance()
    poll_id = f"{user[:8]}-{account.now}"
    return poll_id, account.ingest_request(poll_id, user)


async def _timed_round(
    child: ChildUserstore, ids: list[str], accounts: list[Account]
) -> list[float]:
    """One poll of every ordinary user at once; each one's snapshot-to-plan time in ms."""
    requests = [_next_request(u, a) for u, a in zip(ids, accounts, strict=True)]

    async def one(poll_id: str, request: bytes) -> float:
        started = time.perf_counter()
        await _send(child, poll_id, request)
        return (time.perf_counter() - started) * 1e3

    return list(await asyncio.gather(*(one(p, r) for p, r in requests)))


async def _heavy_polls(
    child: ChildUserstore, requests: list[tuple[str, bytes]], count: list[int]
) -> None:
    """Poll the heavy user every HEAVY_EVERY seconds (back to back if slower) until cancelled.

    Its snapshots are encoded beforehand: encoding 1,000 torrents in this process would stall
    the client that times the ordinary users, and measure the client instead of the shard.
    """
    for poll_id, request in requests:
        started = time.perf_counter()
        await _send(child, poll_id, request)
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

        ratios: list[float] = []
        heavy_done = [0]
        lines = []
        # Alternate the two conditions so a change in the machine's load hits both alike.
        for _ in range(PAIRS):
            alone: list[float] = []
            beside: list[float] = []
            for _ in range(ROUNDS):
                alone += await _timed_round(child, ids, accounts)
            heavy_requests = [_next_request(heavy, heavy_account) for _ in range(HEAVY_PER_PHASE)]
            hog = asyncio.create_task(_heavy_polls(child, heavy_requests, heavy_done))
            await asyncio.sleep(0.2)  # the heavy user's first poll is under way
            for _ in range(ROUNDS):
                beside += await _timed_round(child, ids, accounts)
            hog.cancel()
            await asyncio.gather(hog, return_exceptions=True)
            await asyncio.sleep(0.5)  # let its last poll finish before measuring alone again
            p99_alone, p99_beside = percentile(alone, 99), percentile(beside, 99)
            ratios.append(p99_beside / max(p99_alone, FLOOR_MS))
            lines.append(
                f"p99 alone {p99_alone:.1f} ms, beside {p99_beside:.1f} ms "
                f"(p50 {percentile(alone, 50):.1f} / {percentile(beside, 50):.1f} ms)"
            )
        verdict = sorted(ratios)[len(ratios) // 2 - 1 : len(ratios) // 2 + 1]
        median_ratio = sum(verdict) / len(verdict)
        report = (
            "; ".join(lines) + f"; median ratio {median_ratio:.2f}, {heavy_done[0]} heavy polls"
        )
        # The figures, for the run's output (-s) and every failure message.
        sys.stdout.write(report + "\n")
        assert heavy_done[0] >= 2 * PAIRS, report
        # Issue 20's bound. Measured 1.02-1.40x with the heavy thread taking turns (turns.py),
        # 1.77-2.00x on the same machine and day without them, 12.6x with no heavy thread at all.
        assert median_ratio <= 2.0, report
    finally:
        await child.stop()
