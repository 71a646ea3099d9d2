"""Resharding: users move between two real userstore processes with nothing lost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common import grpc_client
from common.processes import ManagedProcess
from common.routing import owner_index

pytestmark = pytest.mark.e2e

T0 = 1_800_000_000.0
RULE = {
    "name": "Stop at 1",
    "trigger": {"type": "interval", "value": 0},
    "groups": [
        {"logicOperator": "and", "conditions": [{"type": "RATIO", "operator": "gte", "value": 1}]}
    ],
    "action": {"type": "stop_seeding"},
}


def shard_env(root: Path, name: str) -> dict[str, str]:
    return {
        "USERSTORE_PORT": "0",
        "USER_DB_DIR": str(root / name / "users"),
        "MASTER_DB_PATH": str(root / name / "master.sqlite"),
        "LOG_FORMAT": "json",
    }


async def fill(stub: Any, auth_id: str, n: int) -> None:
    """Give a user a rule with a log, three polls of telemetry, an archive, protection, a limit."""
    await stub.RegisterUser(
        pb.RegisterUserRequest(auth_id=auth_id, key_ciphertext=f"c{n}".encode()), timeout=10
    )
    await stub.SaveRules(
        pb.SaveRulesRequest(auth_id=auth_id, rules_json=json.dumps([RULE])), timeout=10
    )
    call = stub.Ingest()
    for poll in range(3):
        torrents = [
            tpb.Torrent(
                id=1,
                hash="a" * 40,
                name=f"seed-{n}",
                active=True,
                download_state="uploading",
                download_finished=True,
                download_present=True,
                progress=1.0,
                ratio=0.4 + poll * 0.4,
                total_uploaded=poll * 1000,
                total_downloaded=5000,
                size=5000,
            ),
            tpb.Torrent(
                id=2,
                hash="b" * 40,
                name=f"dl-{n}",
                active=True,
                download_state="downloading",
                total_downloaded=poll * 100,
                size=10**6,
            ),
        ]
        await call.write(
            pb.IngestRequest(
                snapshot=pb.Snapshot(
                    poll_id=f"{n}-{poll}",
                    auth_id=auth_id,
                    observed_at=T0 + poll * 60,
                    complete=True,
                    torrents=torrents,
                    poll_interval_seconds=60,
                )
            )
        )
        await call.read()
    await call.done_writing()
    await stub.CreateArchived(
        pb.CreateArchivedRequest(
            auth_id=auth_id,
            torrent_id=99,
            hash="c" * 40,
            name="old",
            magnet="magnet:?xt=urn:btih:" + "c" * 40,
        ),
        timeout=10,
    )
    await stub.SetProtected(
        pb.SetProtectedRequest(auth_id=auth_id, torrent_ids=[2], protected=True), timeout=10
    )
    await stub.SetTorrentLimits(
        pb.SetTorrentLimitsRequest(auth_id=auth_id, torrent_id=1, seed_ratio=3.0), timeout=10
    )


async def dump(stub: Any, auth_id: str) -> dict[str, Any]:
    """Everything the REST API can show about a user."""
    rules = await stub.ListRules(pb.ListRulesRequest(auth_id=auth_id), timeout=10)
    rule_id = json.loads(rules.rules_json[0])["id"]
    return {
        "user": (
            await stub.GetUser(pb.GetUserRequest(auth_id=auth_id), timeout=10)
        ).user.key_ciphertext,
        "rules": list(rules.rules_json),
        "logs": str(
            await stub.ListRuleLogs(
                pb.ListRuleLogsRequest(auth_id=auth_id, rule_id=rule_id), timeout=10
            )
        ),
        "torrents": str(
            await stub.ListTorrents(pb.ListTorrentsRequest(auth_id=auth_id), timeout=10)
        ),
        "events": str(
            await stub.ListTorrentEvents(
                pb.ListTorrentEventsRequest(auth_id=auth_id, torrent_id=1), timeout=10
            )
        ),
        "archived": str(
            await stub.ListArchived(pb.ListArchivedRequest(auth_id=auth_id), timeout=10)
        ),
        "protected": list(
            (
                await stub.GetProtected(pb.GetProtectedRequest(auth_id=auth_id), timeout=10)
            ).torrent_ids
        ),
    }


async def run_tool(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "userstore_svc.reshard",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_reshard_moves_exactly_the_misplaced_users_with_nothing_lost(tmp_path: Path) -> None:
    """Adding a shard moves the users it now owns, whole; the others stay where they were."""
    shard_a = ManagedProcess("a", "userstore_svc", shard_env(tmp_path, "a"))
    shard_b = ManagedProcess("b", "userstore_svc", shard_env(tmp_path, "b"))
    addr_a = f"127.0.0.1:{await shard_a.start()}"
    addr_b = f"127.0.0.1:{await shard_b.start()}"
    channel_a, channel_b = grpc_client.channel(addr_a), grpc_client.channel(addr_b)
    stub_a, stub_b = (
        pb_grpc.UserstoreServiceStub(channel_a),
        pb_grpc.UserstoreServiceStub(channel_b),
    )
    try:
        users = [hashlib.sha256(f"reshard-{n}".encode()).hexdigest() for n in range(24)]
        for n, auth_id in enumerate(users):
            await fill(stub_a, auth_id, n)
        before = {auth_id: await dump(stub_a, auth_id) for auth_id in users}
        moving = [a for a in users if owner_index(a, 2) == 1]
        staying = [a for a in users if owner_index(a, 2) == 0]
        assert moving
        assert staying

        code, output = await run_tool("--from", addr_a, "--to", f"{addr_a},{addr_b}", "--dry-run")
        assert code == 0, output
        assert json.loads(output)["planned"] == len(moving)

        code, output = await run_tool("--from", addr_a, "--to", f"{addr_a},{addr_b}")
        assert code == 0, output
        summary = json.loads(output)
        assert (summary["moved"], summary["failed"]) == (len(moving), 0)

        for auth_id in moving:
            assert await dump(stub_b, auth_id) == before[auth_id]
            with pytest.raises(grpc.aio.AioRpcError) as gone:
                await stub_a.GetUser(pb.GetUserRequest(auth_id=auth_id), timeout=10)
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND
            assert not (tmp_path / "a" / "users" / f"user_{auth_id}.sqlite").exists()
        for auth_id in staying:
            assert await dump(stub_a, auth_id) == before[auth_id]
            with pytest.raises(grpc.aio.AioRpcError):
                await stub_b.GetUser(pb.GetUserRequest(auth_id=auth_id), timeout=10)

        # A moved user keeps working on its new shard.
        call = stub_b.Ingest()
        await call.write(
            pb.IngestRequest(
                snapshot=pb.Snapshot(
                    poll_id="after",
                    auth_id=moving[0],
                    observed_at=T0 + 600,
                    complete=True,
                    torrents=[
                        tpb.Torrent(
                            id=2, hash="b" * 40, name="dl", active=True, total_downloaded=999
                        )
                    ],
                    poll_interval_seconds=60,
                )
            )
        )
        response = await call.read()
        assert isinstance(response, pb.IngestResponse)
        assert response.plan.applied
        await call.done_writing()

        code, output = await run_tool("--from", addr_a, "--to", f"{addr_a},{addr_b}")
        assert json.loads(output)["planned"] == 0
    finally:
        await channel_a.close()
        await channel_b.close()
        assert await shard_a.stop() == 0
        assert await shard_b.stop() == 0


async def test_a_failed_move_leaves_the_user_active_where_they_were(tmp_path: Path) -> None:
    """With the target down the move is aborted: the user stays untouched and active."""
    shard_a = ManagedProcess("a", "userstore_svc", shard_env(tmp_path, "a"))
    addr_a = f"127.0.0.1:{await shard_a.start()}"
    channel = grpc_client.channel(addr_a)
    stub = pb_grpc.UserstoreServiceStub(channel)
    try:
        users = [hashlib.sha256(f"abort-{n}".encode()).hexdigest() for n in range(8)]
        for n, auth_id in enumerate(users):
            await fill(stub, auth_id, n)
        before = {a: await dump(stub, a) for a in users}
        dead = "127.0.0.1:9"  # nothing listens on the discard port
        code, output = await run_tool("--from", addr_a, "--to", f"{addr_a},{dead}")
        assert code == 1
        moved = [a for a in users if owner_index(a, 2) == 1]
        assert json.loads(output.splitlines()[0])["failed"] == len(moved)
        for auth_id in users:
            assert await dump(stub, auth_id) == before[auth_id]
            user = (await stub.GetUser(pb.GetUserRequest(auth_id=auth_id), timeout=10)).user
            assert user.status == pb.USER_STATUS_ACTIVE
    finally:
        await channel.close()
        assert await shard_a.stop() == 0
