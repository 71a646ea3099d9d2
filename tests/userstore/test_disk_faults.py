"""A full or unusable disk: 503 with the real error, readiness and stats say so, recovery is clean.

The userstore runs in this process (real gRPC server, real SQLite files); the disk fills through
SQLite's own ``PRAGMA max_page_count`` on the user's pooled connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common import grpc_client
from common.processes import ManagedProcess
from tests.e2e.stack import eventually
from tests.userstore.factory import T0, snap
from userstore_svc.app import SERVICE_NAME, UserstoreApp
from userstore_svc.config import UserstoreSettings
from userstore_svc.ingest import SnapshotIn

USER = hashlib.sha256(b"disk-user").hexdigest()
OTHER = hashlib.sha256(b"disk-other").hexdigest()
STOP = {
    "name": "stop",
    "trigger": {"type": "interval", "value": 0},
    "groups": [
        {"logicOperator": "and", "conditions": [{"type": "RATIO", "operator": "gte", "value": 1}]}
    ],
    "action": {"type": "stop_seeding"},
}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[UserstoreApp, Any, Any, int]]:
    settings = UserstoreSettings.from_env(
        {
            "USERSTORE_PORT": "0",
            "USER_DB_DIR": str(tmp_path / "users"),
            "MASTER_DB_PATH": str(tmp_path / "master.sqlite"),
        }
    )
    app = UserstoreApp(settings)
    port = await app.start()
    channel = grpc_client.channel(f"127.0.0.1:{port}")
    try:
        stub = pb_grpc.UserstoreServiceStub(channel)
        yield app, stub, health_pb2_grpc.HealthStub(channel), port
    finally:
        await channel.close()
        await app.stop()


async def _gateway_view(base: str) -> tuple[str, str, int]:
    """What an operator sees: status's storage, detailed health's database, readiness."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/backend/status") as reply:
            storage = (await reply.json())["storage"]
        async with http.get(f"{base}/api/health/detailed") as reply:
            database = (await reply.json())["database"]["status"]
        async with http.get(f"{base}/health") as reply:
            ready = reply.status
    return storage, database, ready


async def _status(health: health_pb2_grpc.HealthStub, service: str) -> int:
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


async def _set_max_pages(app: UserstoreApp, pages: int | None) -> None:
    assert app.pool is not None
    async with app.pool.use(USER) as handle:
        count = handle.conn.execute("PRAGMA page_count").fetchone()[0]
        handle.conn.execute(f"PRAGMA max_page_count = {pages or count}")


def _code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("error-code")


async def test_a_full_disk_is_503_unready_visible_and_recovers_with_nothing_lost_or_doubled(
    app: tuple[UserstoreApp, Any, Any, int], caplog: pytest.LogCaptureFixture
) -> None:
    store, stub, health, port = app
    serving = health_pb2.HealthCheckResponse.SERVING
    for auth_id in (USER, OTHER):
        await stub.RegisterUser(pb.RegisterUserRequest(auth_id=auth_id, key_ciphertext=b"c"))
    await stub.SaveRules(pb.SaveRulesRequest(auth_id=USER, rules_json=json.dumps([STOP])))
    assert await _status(health, SERVICE_NAME) == serving

    # A real gateway in front of this userstore (no scheduler: readiness is 503 anyway, so the
    # operator's view of the disk is read from the status and detailed health answers).
    gateway = ManagedProcess(
        "gateway-disk",
        "gateway",
        {
            "PORT": "0",
            "USERSTORE_ADDRS": f"127.0.0.1:{port}",
            "SCHEDULER_ADDR": f"127.0.0.1:{_closed_port()}",
        },
    )
    base = f"http://127.0.0.1:{await gateway.start()}"
    try:
        await _disk_fills_and_frees(store, stub, health, caplog, base)
    finally:
        await gateway.stop()


def _closed_port() -> int:
    """A port nothing listens on (the gateway's scheduler: not needed here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
    return found


async def _disk_fills_and_frees(
    store: UserstoreApp,
    stub: Any,
    health: Any,
    caplog: pytest.LogCaptureFixture,
    base: str,
) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    assert await _gateway_view(base) == ("ok", "healthy", 503)
    await _set_max_pages(store, None)  # full: not one more page
    big = [{**STOP, "name": f"rule {i}", "description": "x" * 2000} for i in range(40)]
    caplog.set_level(logging.ERROR)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SaveRules(pb.SaveRulesRequest(auth_id=USER, rules_json=json.dumps(big)))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _code(caught.value) == "STORAGE_UNAVAILABLE"
    assert "database or disk is full" in (caught.value.details() or "")
    # The log keeps the real error, not a failed ROLLBACK's.
    assert "database or disk is full" in caplog.text
    assert "cannot rollback" not in caplog.text

    async def unready() -> bool:
        return bool(await _status(health, SERVICE_NAME) != serving)

    await eventually(unready, timeout=5, what="readiness to fail while writes fail")
    assert await _status(health, "") == serving  # alive: a restart would not free the disk
    stats = await stub.GetStats(pb.GetStatsRequest())
    assert "disk is full" in stats.storage_error
    assert stats.HasField("storage_failing_since")
    assert await _gateway_view(base) == ("failing", "unhealthy", 503)
    # Reads still answer, and show nothing of the refused save.
    listed = await stub.ListRules(pb.ListRulesRequest(auth_id=USER))
    assert [json.loads(r)["name"] for r in listed.rules_json] == ["stop"]

    # A poll while the disk is full is not applied: no intent, so no action to lose or repeat.
    assert store.servicer is not None
    ingestor = store.servicer.ingestor
    listed = [snap("seeding", id=1, ratio=2), *(snap("completed", id=i) for i in range(2, 300))]
    poll = SnapshotIn("p1", USER, T0, True, listed, 60)
    with pytest.raises(sqlite3.OperationalError):
        await ingestor.ingest(poll)

    await _set_max_pages(store, 1_000_000)  # space freed
    plan = await ingestor.ingest(poll)  # the scheduler's next poll
    assert [a.torrent_id for a in plan.actions] == [1]
    again = await ingestor.ingest(poll)  # a resent snapshot changes nothing
    assert again.actions == []

    async def ready() -> bool:
        return bool(await _status(health, SERVICE_NAME) == serving)

    await eventually(ready, timeout=5, what="readiness back once a write succeeds")
    stats = await stub.GetStats(pb.GetStatsRequest())
    assert stats.storage_error == ""
    assert not stats.HasField("storage_failing_since")
    assert await _gateway_view(base) == ("ok", "healthy", 503)
    async with store.pool.use(USER) as handle:  # type: ignore[union-attr]
        rows = handle.conn.execute("SELECT torrent_key, status FROM actions").fetchall()
    assert rows == [(1, "pending")]


async def test_a_database_that_cannot_be_opened_answers_reads_with_503(
    app: tuple[UserstoreApp, Any, Any, int],
) -> None:
    """An unusable data path (here a folder where the file should be): 503 naming the cause."""
    store, stub, _, _ = app
    await stub.RegisterUser(pb.RegisterUserRequest(auth_id=OTHER, key_ciphertext=b"c"))
    assert store.pool is not None
    async with store.pool.exclusive(OTHER) as path:  # closed, as after an eviction
        for extra in ("", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        path.mkdir()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListRules(pb.ListRulesRequest(auth_id=OTHER))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    assert _code(caught.value) == "STORAGE_UNAVAILABLE"
