"""`make demo`: a simulated TorBox, the three services, two demo users and a live feed.

Everything runs on this machine against the simulator (no TorBox account is touched). The demo
users' torrents are chosen so that each built-in preset fires within a minute, with thresholds
scaled to the demo's time: a ratio climbs past 1, a download stalls, a seed runs out its time.
The feed prints every synthetic event and every action as it happens, with the rule and the
reason (the values each condition saw).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from common.grpc_server import wait_for_signal
from common.processes import ManagedProcess

MB = 1_000_000
COLOURS = {"alice": "\033[36m", "bob": "\033[35m"}
RESET = "\033[0m"

# Torrents per demo user: (profile, name, extra spec). Rates are real-time bytes per second.
ACCOUNTS: dict[str, list[dict[str, Any]]] = {
    "alice": [
        {
            "profile": "seeding",
            "name": "Big.Buck.Bunny.2008.1080p",
            "size": 300 * MB,
            "ratio": 0.8,
            "upload_rate": 20 * MB,
        },
        {
            "profile": "stalled",
            "name": "Obscure.Documentary.1987.DVDRip",
            "size": 700 * MB,
            "progress": 0.37,
        },
        {
            "profile": "downloading",
            "name": "Ubuntu.24.04.Desktop.iso",
            "size": 60_000 * MB,
            "progress": 0.1,
            "download_rate": 25 * MB,
        },
        {"profile": "finished_inactive", "name": "Sintel.2010.720p"},
    ],
    "bob": [
        {"profile": "dead_seed", "name": "Tears.of.Steel.2012.4K", "size": 900 * MB, "ratio": 0.3},
        {
            "profile": "stalls_later",
            "name": "Elephants.Dream.2006",
            "size": 50_000 * MB,
            "download_rate": 5 * MB,
            "stall_after": 6,
        },
        {
            "profile": "seeding",
            "name": "Cosmos.Laundromat.2015",
            "size": 500 * MB,
            "ratio": 0.2,
            "upload_rate": 4 * MB,
        },
        {"profile": "queued", "name": "Spring.2019.1080p"},
    ],
}


def _env(root: Path, fast: bool) -> dict[str, str]:
    return {
        "LOG_FORMAT": "json",
        # Readiness is read from the INFO "serving" lines; the services' output is not shown.
        "LOG_LEVEL": "info",
        "POLL_INTERVAL_SECONDS": "1" if fast else "2",
        "IDLE_POLL_INTERVAL_SECONDS": "1" if fast else "2",
        "MIN_POLL_INTERVAL_SECONDS": "0.5",
        "REGISTRY_SYNC_SECONDS": "0.5",
        "STALL_AFTER_MINUTES": "0.05" if fast else "0.2",
        "USER_DB_DIR": str(root / "users"),
        "MASTER_DB_PATH": str(root / "master.sqlite"),
        "ENCRYPTION_KEY_FILE": str(root / "encryption.key"),
    }


def _scaled_presets(presets: list[dict[str, Any]], fast: bool) -> list[dict[str, Any]]:
    """The presets, enabled, with hours turned into seconds of demo time."""
    rules = []
    for preset in presets:
        rule = {**preset, "enabled": True, "trigger": {"type": "interval", "value": 0}}
        condition = rule["groups"][0]["conditions"][0]
        if condition["type"] == "DOWNLOAD_STALLED_TIME":  # 6 hours -> 10 (or 5) seconds
            condition["value"] = 5 / 60 if fast else 10 / 60
            rule["name"] = (
                f"Archive downloads stalled for more than {5 if fast else 10} s (demo time)"
            )
        if condition["type"] == "SEEDING_TIME":  # 24 hours -> 20 (or 8) seconds
            seconds = 8 if fast else 20
            condition["value"] = seconds / 3600
            rule["name"] = f"Stop seeding after {seconds} s of seeding (demo time)"
        rules.append(rule)
    return rules


class Feed:
    """Prints what happens, readably."""

    def __init__(self, http: aiohttp.ClientSession, gateway: str) -> None:
        self.http = http
        self.gateway = gateway
        self.names: dict[tuple[str, int], str] = {}
        self.actions = 0
        self.enough = asyncio.Event()
        self.wanted: int | None = None

    def line(self, user: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        colour = COLOURS.get(user, "") if sys.stdout.isatty() else ""
        reset = RESET if colour else ""
        sys.stdout.write(f"{stamp}  {colour}{user:<5}{reset}  {text}\n")
        sys.stdout.flush()

    async def name_of(self, user: str, key: str, torrent_id: int) -> str:
        """A torrent's name (looked up once from the status endpoint)."""
        if (user, torrent_id) not in self.names:
            async with self.http.get(
                f"{self.gateway}/api/automation/torrents?include_removed=true",
                headers={"x-api-key": key},
            ) as response:
                for torrent in (await response.json()).get("torrents", []):
                    self.names[(user, torrent["torrent_id"])] = torrent["name"]
        return self.names.get((user, torrent_id), f"torrent {torrent_id}")

    async def reason(self, key: str, torrent_id: int) -> str:
        async with self.http.get(
            f"{self.gateway}/api/automation/torrents?include_removed=true",
            headers={"x-api-key": key},
        ) as response:
            body = await response.json()
        for torrent in body.get("torrents", []):
            action = torrent.get("last_action")
            if torrent["torrent_id"] == torrent_id and action:
                parts = [
                    f"{c.get('type')} = {_fmt(c.get('value'))} "
                    f"({c.get('operator')} {_fmt(c.get('threshold'))})"
                    for c in action.get("reason") or []
                ]
                return "; ".join(parts)
        return ""

    async def follow(self, user: str, key: str) -> None:
        """Read the user's Server-Sent Events and print each one."""
        async with self.http.get(
            f"{self.gateway}/api/automation/events",
            headers={"x-api-key": key},
            timeout=aiohttp.ClientTimeout(total=None),
        ) as response:
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                await self.show(user, key, json.loads(line[6:]))

    async def show(self, user: str, key: str, event: dict[str, Any]) -> None:
        kind = event.get("event")
        data = event.get("data") or {}
        torrent_id = event.get("torrent_id") or 0
        if kind == "changed":
            return
        if data.get("name"):
            self.names[(user, torrent_id)] = data["name"]
        name = await self.name_of(user, key, torrent_id)
        if kind == "AUTOMATION_ACTION":
            self.actions += 1
            if self.wanted is not None and self.actions >= self.wanted:
                self.enough.set()
            outcome = "done" if data.get("success") else f"FAILED {data.get('error_code')}"
            why = await self.reason(key, torrent_id)
            self.line(
                user,
                f"ACTION   {data.get('action')} {name!r} "
                f"by rule {data.get('rule_name')!r}: {outcome}",
            )
            if why:
                self.line(user, f"         because {why}")
            return
        if kind == "AUTOMATION_HELD":
            self.line(user, f"HELD     {data.get('reason')}")
            return
        detail = _describe(str(kind), data)
        self.line(user, f"EVENT    {name!r}: {detail}")


def _describe(kind: str, data: dict[str, Any]) -> str:
    """One event in a few words."""
    if kind == "TORRENT_STALLED":
        return f"stalled ({data.get('reason')}, progress {_fmt(data.get('progress'))})"
    if kind == "TORRENT_RATIO_REACHED":
        return f"ratio {_fmt(data.get('ratio'))} crossed {_fmt(data.get('threshold'))}"
    words = {
        "TORRENT_RESUMED": "moving again",
        "TORRENT_SEEDING_STARTED": "started seeding",
        "TORRENT_DOWNLOADING_STARTED": "started downloading",
        "TORRENT_COMPLETED": "finished downloading",
        "TORRENT_REMOVED": "gone from TorBox",
        "TORRENT_ADDED": "added",
    }
    return words.get(kind, json.dumps(data))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return _fmt(value.get("value"))
    return str(value)


async def run(seconds: float | None, fast: bool, until_actions: int | None = None) -> int:
    """Start everything, set up the demo users, print the feed until Ctrl-C (or `seconds`)."""
    root = Path(tempfile.mkdtemp(prefix="torbox-demo-"))
    sim = ManagedProcess("simulator", "simulator", {}, args=("--port", "0", "--time-scale", "1"))
    sim_url = f"http://127.0.0.1:{await sim.start()}"
    env = _env(root, fast)
    userstore = ManagedProcess("userstore", "userstore_svc", {**env, "USERSTORE_PORT": "0"})
    processes = [sim, userstore]
    feed_tasks: list[asyncio.Task[None]] = []
    http = aiohttp.ClientSession()
    try:
        us_addr = f"127.0.0.1:{await userstore.start()}"
        scheduler = ManagedProcess(
            "scheduler",
            "scheduler_svc",
            {**env, "SCHEDULER_PORT": "0", "USERSTORE_ADDRS": us_addr, "TORBOX_API_BASE": sim_url},
        )
        processes.append(scheduler)
        sched_addr = f"127.0.0.1:{await scheduler.start()}"
        gateway = ManagedProcess(
            "gateway",
            "gateway",
            {**env, "PORT": "0", "USERSTORE_ADDRS": us_addr, "SCHEDULER_ADDR": sched_addr},
        )
        processes.append(gateway)
        gw = f"http://127.0.0.1:{await gateway.start()}"
        feed = Feed(http, gw)
        feed.wanted = until_actions
        print(f"Simulated TorBox at {sim_url}; the REST API at {gw} (data in {root}).")  # noqa: T201
        for user, specs in ACCOUNTS.items():
            async with http.post(f"{sim_url}/_sim/accounts", json={"torrents": specs}) as response:
                key = (await response.json())["api_key"]
            headers = {"x-api-key": key}
            async with http.post(
                f"{gw}/api/backend/api-key/ensure-db", headers=headers
            ) as response:
                assert response.status == 200, await response.text()
            async with http.get(f"{gw}/api/automation/presets", headers=headers) as response:
                presets = (await response.json())["presets"]
            rules = _scaled_presets(presets, fast)
            async with http.post(
                f"{gw}/api/automation/rules", headers=headers, json={"rules": rules}
            ) as response:
                assert response.status == 200, await response.text()
            feed.line(
                user,
                f"registered (API key {key[:8]}...), presets enabled: "
                + ", ".join(r["name"] for r in rules),
            )
            feed_tasks.append(asyncio.create_task(feed.follow(user, key)))
        print("Watching; automation should act within a minute. Ctrl-C stops everything.\n")  # noqa: T201
        stops = [
            asyncio.ensure_future(wait_for_signal()),
            asyncio.ensure_future(feed.enough.wait()),
        ]
        if seconds is not None:
            stops.append(asyncio.ensure_future(asyncio.sleep(seconds)))
        await asyncio.wait(stops, return_when=asyncio.FIRST_COMPLETED)
        for stop in stops:
            stop.cancel()
        print(f"\n{feed.actions} actions taken.")  # noqa: T201
        return 0
    finally:
        for task in feed_tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await http.close()
        for process in reversed(processes):
            await process.stop()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    parser.add_argument("--fast", action="store_true", help="shorter thresholds (for tests)")
    parser.add_argument("--until-actions", type=int, help="stop once this many actions were shown")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.seconds, args.fast, args.until_actions)))


if __name__ == "__main__":
    main()
