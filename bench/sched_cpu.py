"""The scheduler's CPU per poll, two code trees measured alternately in one run.

`python -m bench.sched_cpu --tree OLD --tree NEW` starts the simulator (real HTTP, full items,
active dates moving on every list) and a stand-in userstore (a gRPC process that answers every
snapshot with an empty plan at once), then one worker process per code tree. Each worker builds
the scheduler's own Poller, client and ingest stream from its tree and polls one user in turn;
the driver asks the workers for batches of polls alternately (the order swapped every round) and
reports each tree's CPU time per poll (`time.process_time` of the worker: the scheduler's whole
cost of a poll, the simulator and the stand-in userstore excluded) as the median over rounds.

Workers and the stand-in run this file as a script (`python bench/sched_cpu.py worker|store`),
importing only the scheduler from the tree on their PYTHONPATH, never this tree's bench package.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

WARMUP_POLLS = 30


async def _store() -> None:
    """A userstore stand-in: every snapshot answered with an empty plan for its poll id."""
    import grpc
    from torbox.automation.v1 import userstore_service_pb2 as pb
    from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

    class Store(pb_grpc.UserstoreServiceServicer):
        async def Ingest(self, requests: Any, context: Any) -> Any:
            async for request in requests:
                if request.WhichOneof("kind") == "snapshot":
                    poll_id = request.snapshot.poll_id
                    plan = pb.Plan(poll_id=poll_id, has_enabled_rules=True)
                    if "reads_torrent_rows" in pb.Plan.DESCRIPTOR.fields_by_name:
                        # As a shard of the last tree says: rows are read (older trees ignore it).
                        plan.reads_torrent_rows = True
                    yield pb.IngestResponse(plan=plan)

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    pb_grpc.add_UserstoreServiceServicer_to_server(Store(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"store serving port={port}", flush=True)
    await server.wait_for_termination()


async def _worker(sim: str, store: str, key: str) -> None:
    """Poll one user with the scheduler's own objects; answer each batch request on stdin."""
    import aiohttp
    from torbox.automation.v1 import userstore_service_pb2 as pb

    from common.auth import auth_id_for
    from common.logs import configure
    from scheduler_svc.config import SchedulerSettings
    from scheduler_svc.directory import Directory, UserEntry
    from scheduler_svc.executor import ActionExecutor
    from scheduler_svc.health import OutageBreaker
    from scheduler_svc.keys import KeyBox
    from scheduler_svc.polling import Poller
    from scheduler_svc.streams import IngestStream
    from scheduler_svc.torbox.client import ClientConfig, TorBoxClient

    # As the benchmark's scheduler runs: JSON logs at INFO (to stderr here), no rate limits.
    env = {
        "SCHEDULER_PORT": "0",
        "USERSTORE_ADDRS": store,
        "TORBOX_API_BASE": sim,
        "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "POLL_INTERVAL_SECONDS": "1",
        "IDLE_POLL_INTERVAL_SECONDS": "1",
        "MIN_POLL_INTERVAL_SECONDS": "1",
        "TORBOX_GLOBAL_RATE_PER_SECOND": "0",
        "TORBOX_RATE_PER_MINUTE": "1000000000",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }
    s = SchedulerSettings.from_env(env)
    # Log lines go to stderr: stdout answers the driver.
    stdout, sys.stdout = sys.stdout, sys.stderr
    configure("scheduler", fmt=s.log_format, level=s.log_level)
    sys.stdout = stdout
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=s.torbox_max_concurrency, ttl_dns_cache=300),
        raise_for_status=False,
    )
    client = TorBoxClient(
        session,
        ClientConfig(
            base_url=s.torbox_api_base,
            per_key_per_minute=s.torbox_rate_per_minute,
            global_per_second=s.torbox_global_rate_per_second,
        ),
    )
    stream = IngestStream(store, 120.0)
    stream.start()
    if not await stream.wait_connected(30):
        raise RuntimeError("the stand-in userstore did not connect")
    directory = Directory(
        [stream], KeyBox(secrets.token_bytes(32)), replica_index=0, replicas=1, timeout=120
    )
    breaker = OutageBreaker(min_polls=20, failure_ratio=0.9, probe_seconds=30)
    executor = ActionExecutor(client, concurrency=4, dry_run=True)
    poller = Poller(s, client, directory, executor, breaker)
    auth_id = auth_id_for(key)
    entry = UserEntry(auth_id, pb.USER_STATUS_ACTIVE, b"-", True, api_key=key)
    directory.users[auth_id] = entry

    async def polls(count: int) -> None:
        for _ in range(count):
            result = await poller.poll(entry)
            if result.error is not None:
                raise RuntimeError(f"poll failed: {result.error}")

    # As `python -m scheduler_svc` does at startup, in trees that tune the cyclic GC.
    from scheduler_svc import app

    tune_gc = getattr(app, "tune_gc", None)
    if tune_gc is not None:
        tune_gc()
    await polls(WARMUP_POLLS)
    print("ready", flush=True)
    for line in sys.stdin:
        count = int(line)
        cpu, wall = time.process_time(), time.perf_counter()
        await polls(count)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps({"cpu_ms": cpu * 1e3 / count, "wall_ms": wall * 1e3 / count}), flush=True)
    await stream.close()
    await session.close()


async def _start(tree: Path, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": f"{tree}:{tree}/common/gen"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL if args[0] == "worker" else None,
        start_new_session=True,
    )


async def _line(process: asyncio.subprocess.Process, timeout: float = 300) -> str:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), timeout)
    if not raw:
        raise RuntimeError("a worker ended early")
    return raw.decode().strip()


async def _bulk(sim_url: str, torrents: int) -> str:
    import aiohttp

    body = {
        "accounts": 1,
        "torrents_per_account": torrents,
        "knobs": {"active_updated_at_now": True},
    }
    async with aiohttp.ClientSession() as http, http.post(f"{sim_url}/_sim/bulk", json=body) as r:
        keys: list[str] = (await r.json())["api_keys"]
        return keys[0]


async def _drive(options: argparse.Namespace) -> None:
    from common.processes import ManagedProcess

    trees = [Path(t).resolve() for t in options.tree]
    simulator = ManagedProcess(
        "simulator",
        "simulator",
        {},
        args=("--port", "0", "--time-scale", "1", "--rate-limit-per-minute", "0"),
    )
    sim_url = f"http://127.0.0.1:{await simulator.start()}"
    store = await _start(trees[-1], "store")
    workers: list[asyncio.subprocess.Process] = []
    try:
        store_addr = "127.0.0.1:" + (await _line(store)).rsplit("=", 1)[1]
        key = await _bulk(sim_url, options.torrents)
        workers = [await _start(t, "worker", sim_url, store_addr, key) for t in trees]
        for worker in workers:
            await _line(worker)
        results: list[list[float]] = [[] for _ in trees]
        for round_ in range(options.rounds):
            order = list(range(len(trees)))
            if round_ % 2:
                order.reverse()
            for index in order:
                stdin = workers[index].stdin
                assert stdin is not None
                stdin.write(f"{options.polls}\n".encode())
                await stdin.drain()
                results[index].append(json.loads(await _line(workers[index]))["cpu_ms"])
            print(
                f"round {round_ + 1}: "
                + " ".join(f"{results[i][-1]:.3f}" for i in range(len(trees))),
                flush=True,
            )
        for tree, values in zip(trees, results, strict=True):
            print(
                f"{tree}: CPU per {options.torrents}-torrent poll median "
                f"{statistics.median(values):.3f} ms (min {min(values):.3f}, max {max(values):.3f})"
            )
        if len(trees) == 2:
            ratios = [b / a for a, b in zip(results[0], results[1], strict=True)]
            print(f"second/first per round: median {statistics.median(ratios):.3f}")
    finally:
        for process in [*workers, store]:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await simulator.stop()


def main() -> None:
    """Driver by default; `worker` and `store` are the processes it starts."""
    if len(sys.argv) > 1 and sys.argv[1] == "store":
        asyncio.run(_store())
        return
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        asyncio.run(_worker(*sys.argv[2:5]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", required=True, help="a code tree (repeat)")
    parser.add_argument("--torrents", type=int, default=100)
    parser.add_argument("--polls", type=int, default=100, help="polls per batch")
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(_drive(parser.parse_args()))


if __name__ == "__main__":
    main()
