"""Crash safety: SIGKILL the userstore mid-stream; each database stays whole at a committed poll."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common import grpc_client
from common.processes import ManagedProcess
from userstore_svc.store import user_db

pytestmark = pytest.mark.e2e

T0 = 1_800_000_000.0
USERS = 12
TORRENTS = 40


def _snapshot(auth_id: str, poll: int) -> pb.Snapshot:
    """Poll `poll` of a user: every torrent's counter says which poll it came from."""
    return pb.Snapshot(
        poll_id=f"{auth_id[:8]}-{poll}",
        auth_id=auth_id,
        observed_at=T0 + poll,
        complete=True,
        poll_interval_seconds=1,
        torrents=[
            tpb.Torrent(
                id=k,
                hash=f"{k:040x}",
                name=f"t{k}",
                active=True,
                download_state="downloading",
                size=10**9,
                total_downloaded=poll * 1000 + k,
            )
            for k in range(1, TORRENTS + 1)
        ],
    )


async def test_sigkill_mid_stream_leaves_every_database_whole(tmp_path: Path) -> None:
    """After SIGKILL and restart, each database passes integrity_check and holds one whole poll,
    at least the last one acknowledged."""
    env = {
        "USERSTORE_PORT": "0",
        "USER_DB_DIR": str(tmp_path / "users"),
        "MASTER_DB_PATH": str(tmp_path / "master.sqlite"),
        "LOG_FORMAT": "json",
    }
    process = ManagedProcess("userstore", "userstore_svc", env)
    port = await process.start()
    users = [hashlib.sha256(f"crash-{n}".encode()).hexdigest() for n in range(USERS)]
    acked: dict[str, int] = dict.fromkeys(users, 0)
    sent: dict[str, int] = dict.fromkeys(users, 0)
    channel = grpc_client.channel(f"127.0.0.1:{port}")
    stub = pb_grpc.UserstoreServiceStub(channel)
    for auth_id in users:
        await stub.RegisterUser(
            pb.RegisterUserRequest(auth_id=auth_id, key_ciphertext=b"x"), timeout=10
        )

    outbox: asyncio.Queue[pb.IngestRequest] = asyncio.Queue()

    async def requests() -> AsyncIterator[pb.IngestRequest]:
        while True:
            yield await outbox.get()

    call = stub.Ingest(requests())
    plans = 0

    async def produce() -> None:
        poll = 0
        while True:
            poll += 1
            for auth_id in users:
                sent[auth_id] = poll
                await outbox.put(pb.IngestRequest(snapshot=_snapshot(auth_id, poll)))
            await asyncio.sleep(0.005)

    async def consume() -> None:
        nonlocal plans
        async for response in call:
            if response.WhichOneof("kind") == "plan" and response.plan.applied:
                poll = int(response.plan.poll_id.rsplit("-", 1)[1])
                acked[response.plan.auth_id] = max(acked[response.plan.auth_id], poll)
                plans += 1

    producer = asyncio.create_task(produce())
    consumer = asyncio.create_task(consume())
    while plans < 300:
        await asyncio.sleep(0.05)
    await process.kill()
    producer.cancel()
    await asyncio.gather(producer, consumer, return_exceptions=True)
    await channel.close()

    for auth_id in users:
        path = tmp_path / "users" / f"user_{auth_id}.sqlite"
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            (observed,) = conn.execute(
                "SELECT value FROM meta WHERE key='last_observed_at'"
            ).fetchone()
            poll = round(float(observed) - T0)
            assert acked[auth_id] <= poll <= sent[auth_id]
            counters = {
                (state.snap.total_downloaded or 0) - state.snap.id
                for state in map(user_db.state_from_row, conn.execute(user_db.SELECT_TORRENTS))
            }
            # Every row comes from the same (last committed) poll: nothing half-written.
            assert counters == {poll * 1000}
        finally:
            conn.close()

    restarted = ManagedProcess("userstore", "userstore_svc", env)
    port = await restarted.start()
    channel = grpc_client.channel(f"127.0.0.1:{port}")
    stub = pb_grpc.UserstoreServiceStub(channel)
    try:
        call = stub.Ingest()
        await call.write(pb.IngestRequest(snapshot=_snapshot(users[0], sent[users[0]] + 1)))
        response = await call.read()
        assert isinstance(response, pb.IngestResponse)
        assert response.plan.applied
        await call.done_writing()
        listed = await stub.ListTorrents(pb.ListTorrentsRequest(auth_id=users[0]), timeout=10)
        assert len(listed.torrents) == TORRENTS
    finally:
        await channel.close()
        assert await restarted.stop() == 0
