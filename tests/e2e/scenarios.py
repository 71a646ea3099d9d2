"""Shared pieces of the end-to-end scenarios: shortened presets and simulator log helpers."""

from __future__ import annotations

from typing import Any

from tests.e2e.stack import Stack

# Thresholds scaled down so hours of torrent life fit in seconds of test.
STALLED_MINUTES = 0.1  # archive downloads stalled for more than 6 seconds
SEEDING_HOURS = 0.002  # stop seeding after 7.2 seconds of seeding
SCENARIO_ENV = {"STALL_AFTER_MINUTES": "0.05"}
REAL_TIME = ("--time-scale", "1")


async def enable_presets(stack: Stack, key: str) -> list[dict[str, Any]]:
    """Take the built-in presets, shorten their thresholds, enable them, save them."""
    status, body, _ = await stack.gw("GET", "/api/automation/presets", key=key)
    assert status == 200, body
    rules = []
    for preset in body["presets"]:
        rule = {**preset, "enabled": True, "trigger": {"type": "interval", "value": 0}}
        condition = rule["groups"][0]["conditions"][0]
        if condition["type"] == "DOWNLOAD_STALLED_TIME":
            condition["value"] = STALLED_MINUTES
        if condition["type"] == "SEEDING_TIME":
            condition["value"] = SEEDING_HOURS
        rules.append(rule)
    status, body, _ = await stack.gw(
        "POST", "/api/automation/rules", key=key, json={"rules": rules}
    )
    assert status == 200, body
    saved: list[dict[str, Any]] = body["rules"]
    return saved


async def control_log(stack: Stack, key: str) -> list[dict[str, Any]]:
    """Every control request the simulated TorBox received for this key, in order."""
    account = await stack.sim("GET", f"/_sim/accounts/{key}")
    return [r for r in account["requests"] if r["endpoint"] != "torrents/createtorrent"]


async def torrents(stack: Stack, key: str, *, include_removed: bool = False) -> dict[str, Any]:
    """The gateway's per-torrent automation status (includes observed_at)."""
    query = "?include_removed=true" if include_removed else ""
    status, body, _ = await stack.gw("GET", f"/api/automation/torrents{query}", key=key)
    assert status == 200, body
    result: dict[str, Any] = body
    return result
