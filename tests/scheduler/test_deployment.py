"""Whole deployments as real processes: replicas and shards split the users, and the scheduler's
stream to a userstore survives that userstore's restart."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from torbox.automation.v1 import scheduler_service_pb2 as spb
from torbox.automation.v1 import scheduler_service_pb2_grpc as spb_grpc
from torbox.automation.v1 import userstore_service_pb2 as upb
from torbox.automation.v1 import userstore_service_pb2_grpc as upb_grpc

from common import grpc_client
from common.auth import auth_id_for
from common.routing import owner_index
from tests.e2e.stack import Stack, eventually

pytestmark = pytest.mark.e2e

INTERVAL = 1.0
# APScheduler's jitter: each gap is the interval +- 5 %.
MIN_GAP = INTERVAL * 0.95


class Grpc:
    """Channels to every service of a stack, closed at the end."""

    def __init__(self) -> None:
        self.channels: list[grpc.aio.Channel] = []

    def scheduler(self, address: str) -> Any:
        self.channels.append(grpc_client.channel(address))
        return spb_grpc.SchedulerServiceStub(self.channels[-1])

    def userstore(self, address: str) -> Any:
        self.channels.append(grpc_client.channel(address))
        return upb_grpc.UserstoreServiceStub(self.channels[-1])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


@pytest.fixture
async def rpc() -> AsyncIterator[Grpc]:
    """gRPC stubs for the test."""
    stubs = Grpc()
    try:
        yield stubs
    finally:
        await stubs.close()


async def _requests_by_key(stack: Stack) -> dict[str, int]:
    stats = await stack.sim("GET", "/_sim/stats")
    by_key: dict[str, int] = stats["by_key"]
    return by_key


def _polls(requests: int) -> int:
    # A poll of a small account is two requests: mylist and getqueued.
    return math.ceil(requests / 2)


async def test_two_replicas_and_two_shards_split_the_users(tmp_path: Path, rpc: Grpc) -> None:
    """Each user is polled by its replica only, about once per interval, into its shard only."""
    stack = await Stack(tmp_path, shards=2, schedulers=2).start()
    try:
        keys: list[str] = []
        owner: dict[str, int] = {}
        while len(keys) < 8 or min(list(owner.values()).count(i) for i in (0, 1)) < 2:
            key = (await stack.account(mix={"seeding": 1}))["api_key"]
            await stack.register(key)
            keys.append(key)
            owner[key] = owner_index(auth_id_for(key), 2)

        # Each replica schedules exactly the users the shared routing function gives it.
        schedulers = [rpc.scheduler(stack.scheduler_addr(i)) for i in (0, 1)]

        async def split() -> bool:
            for index, stub in enumerate(schedulers):
                status = await stub.GetStatus(spb.GetStatusRequest(), timeout=10)
                if status.users_scheduled != list(owner.values()).count(index):
                    return False
            return True

        await eventually(split, timeout=30, what="each replica to schedule its users")

        # Each user's database exists on its shard and nowhere else.
        for key in keys:
            auth_id = auth_id_for(key)
            shard = owner_index(auth_id, 2)
            for index in (0, 1):
                path = tmp_path / f"shard{index}" / "users" / f"user_{auth_id}.sqlite"
                assert path.exists() == (index == shard), (index, shard)

        # Every user is polled, and never more often than once per interval.
        start = await _requests_by_key(stack)
        started = time.monotonic()

        async def polled_enough() -> dict[str, int] | None:
            now = await _requests_by_key(stack)
            done = all(_polls(now[k] - start[k]) >= 8 for k in keys)
            return now if done else None

        end = await eventually(polled_enough, timeout=120, what="eight polls of every user")
        elapsed = time.monotonic() - started
        # A user polled by both replicas would show about twice this many.
        most = elapsed / MIN_GAP + 3
        for key in keys:
            assert _polls(end[key] - start[key]) <= most, (end[key] - start[key], elapsed)

        # Stop replica 1: its users stop being polled while replica 0's go on.
        await stack.scheduler_procs[1].stop()
        frozen = await _requests_by_key(stack)

        async def replica_0_went_on() -> bool:
            now = await _requests_by_key(stack)
            return all(now[k] - frozen[k] >= 6 for k in keys if owner[k] == 0)

        await eventually(replica_0_went_on, timeout=60, what="replica 0's users polled on")
        now = await _requests_by_key(stack)
        for key in keys:
            if owner[key] == 1:
                assert now[key] == frozen[key]
    finally:
        await stack.stop()


async def test_the_stream_survives_a_userstore_restart(tmp_path: Path, rpc: Grpc) -> None:
    """The userstore restarts mid-stream: the stream reconnects, every user is polled again
    soon, and no snapshot is ever applied twice."""
    stack = await Stack(tmp_path).start()
    try:
        keys = []
        for _ in range(4):
            key = (await stack.account(mix={"seeding": 2, "downloading": 1}))["api_key"]
            await stack.register(key)
            keys.append(key)
        userstore = rpc.userstore(stack.userstore_addrs[0])

        async def last_polls(store: Any) -> dict[str, float]:
            polls: dict[str, float] = {}
            for key in keys:
                user = (
                    await store.GetUser(upb.GetUserRequest(auth_id=auth_id_for(key)), timeout=10)
                ).user
                polls[key] = user.last_poll_at if user.HasField("last_poll_at") else 0.0
            return polls

        async def all_polled() -> bool:
            return all(v > 0 for v in (await last_polls(userstore)).values())

        await eventually(all_polled, timeout=30, what="every user's first poll")

        process = stack.userstores[0]
        port = process.port
        assert await process.stop() == 0
        down_at = time.time()
        await stack.start_userstore(0, port=port)
        back = rpc.userstore(stack.userstore_addrs[0])

        async def polled_since_restart() -> bool:
            return all(v > down_at for v in (await last_polls(back)).values())

        await eventually(polled_since_restart, timeout=30, what="every user polled again")
        scheduler_log = stack.scheduler_procs[0].output()
        assert "ingest stream reconnected" in scheduler_log

        # Polling goes on, each snapshot newer than the last, and none arrives a second time.
        seen = await last_polls(back)

        async def moved_on() -> bool:
            now = await last_polls(back)
            return all(now[k] > seen[k] for k in keys)

        await eventually(moved_on, timeout=30, what="polling to go on")
        stats = await back.GetStats(upb.GetStatsRequest(), timeout=10)
        assert stats.snapshots_applied >= 2 * len(keys)
        assert stats.snapshots_replayed == 0
    finally:
        await stack.stop()
