"""Contract tests: every REST endpoint's success shape and error paths, against real processes."""

from __future__ import annotations

from typing import Any

import pytest

from common.auth import auth_id_for
from gateway.app import DOCUMENT
from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import GatewayStack, User, assert_error, assert_iso, rule

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

UNREGISTERED_ROUTES = [
    ("POST", "/api/activity"),
    ("DELETE", "/api/backend/api-key"),
    ("GET", "/api/automation/rules"),
    ("POST", "/api/automation/rules"),
    ("GET", "/api/automation/rules/1"),
    ("PUT", "/api/automation/rules/1"),
    ("DELETE", "/api/automation/rules/1"),
    ("GET", "/api/automation/rules/1/logs"),
    ("DELETE", "/api/automation/rules/1/logs"),
    ("POST", "/api/automation/rules/1/run"),
    ("POST", "/api/automation/rules/preview"),
    ("GET", "/api/automation/events"),
    ("GET", "/api/automation/torrents"),
    ("GET", "/api/automation/torrents/1/events"),
    ("GET", "/api/automation/torrents/1/history"),
    ("GET", "/api/automation/account"),
    ("GET", "/api/automation/account/events"),
    ("GET", "/api/automation/torrents/1/limits"),
    ("PUT", "/api/automation/torrents/1/limits"),
    ("DELETE", "/api/automation/torrents/1/limits"),
    ("GET", "/api/archived-downloads"),
    ("POST", "/api/archived-downloads"),
    ("DELETE", "/api/archived-downloads/1"),
    ("POST", "/api/archived-downloads/1/restore"),
    ("GET", "/api/downloads/protect"),
    ("PUT", "/api/downloads/protect"),
]
# A body each route accepts, so a 404 can only mean "not registered".
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/automation/rules"): {"rules": []},
    ("PUT", "/api/automation/rules/1"): {"enabled": False},
    ("POST", "/api/automation/rules/preview"): rule(),
    ("PUT", "/api/automation/torrents/1/limits"): {"seed_ratio": 2},
    ("POST", "/api/archived-downloads"): {"torrent_id": 1, "hash": "a" * 40},
    ("PUT", "/api/downloads/protect"): {"download_ids": [1], "protected": True},
}


async def polled(user: User) -> list[dict[str, Any]]:
    """The user's torrents once a poll has listed every simulated one."""

    async def listed() -> list[dict[str, Any]] | None:
        body = await user.ok("GET", "/api/automation/torrents")
        torrents: list[dict[str, Any]] = body["torrents"]
        return torrents if len(torrents) >= len(user.torrent_ids) else None

    result: list[dict[str, Any]] = await eventually(listed, timeout=30, what="the first poll")
    return result


# System ------------------------------------------------------------------------------------------


async def test_health_needs_no_key(stack: GatewayStack) -> None:
    """GET /health answers 200 {"status": "healthy", "timestamp"} without any key."""
    status, body, _ = await stack.gw("GET", "/health")
    assert status == 200
    assert body["status"] == "healthy"
    assert_iso(body["timestamp"])


async def test_status_reports_available_and_figures(stack: GatewayStack) -> None:
    """GET /api/backend/status: available, selfhosted, version, uptime, and service figures."""
    status, body, _ = await stack.gw("GET", "/api/backend/status")
    assert status == 200
    assert body["available"] is True
    assert body["mode"] == "selfhosted"
    assert isinstance(body["version"], str)
    assert body["version"]
    assert isinstance(body["uptime"], float)
    assert body["uptime"] >= 0
    assert body["scheduler"]["breaker_state"] == "closed"
    assert len(body["userstores"]) == 1
    assert body["userstores"][0]["max_open_databases"] > 0
    assert body["gateway"]["sse_streams"] >= 0


async def test_openapi_is_served(stack: GatewayStack) -> None:
    """GET /openapi.json serves the same document the code builds."""
    status, body, _ = await stack.gw("GET", "/openapi.json")
    assert status == 200
    assert body == DOCUMENT
    assert body["openapi"].startswith("3.1")


async def test_unknown_route_and_method(user: User) -> None:
    """An unknown path is 404 ENDPOINT_NOT_FOUND; a known path with a wrong method is 405."""
    body = assert_error(await user.call("GET", "/api/nope"), 404, code="ENDPOINT_NOT_FOUND")
    assert "path" not in body, "the caller's path is never echoed (a key may be in it)"
    # / is the web console's page; a path beside it is not found like any other.
    assert_error(await user.call("GET", "/console"), 404, code="ENDPOINT_NOT_FOUND")
    assert_error(await user.call("POST", "/"), 405, code="METHOD_NOT_ALLOWED")
    reply = await user.call("PATCH", "/api/automation/rules")
    assert_error(reply, 405, code="METHOD_NOT_ALLOWED")
    assert "GET" in reply[2]["Allow"]
    assert "POST" in reply[2]["Allow"]


# Who is calling ----------------------------------------------------------------------------------


async def test_key_sources_bearer_and_body(user: User) -> None:
    """The key is read from x-api-key, else Authorization: Bearer, else a JSON body's apiKey."""
    stack = user.stack
    status, body, _ = await stack.gw(
        "GET", "/api/automation/rules", headers={"Authorization": f"Bearer {user.key}"}
    )
    assert status == 200
    assert body["rules"] == []
    status, body, _ = await stack.gw(
        "POST", "/api/automation/rules", json={"apiKey": user.key, "rules": [rule()]}
    )
    assert status == 200
    assert len(body["rules"]) == 1
    # x-api-key wins over the others: a bad Bearer value is never looked at.
    status, _, _ = await stack.gw(
        "GET", "/api/automation/rules", key=user.key, headers={"Authorization": "Bearer x"}
    )
    assert status == 200


async def test_missing_and_malformed_keys(stack: GatewayStack) -> None:
    """No key is 401; a key that is not 16+ of [A-Za-z0-9_-+.=] is 400 naming apiKey."""
    assert_error(await stack.gw("GET", "/api/automation/rules"), 401, code="API_KEY_REQUIRED")
    for bad in ("short", "has spaces in it here", "ünïcödé-ünïcödé-ünïcödé", "x" * 300):
        reply = await stack.gw("GET", "/api/automation/rules", headers={"x-api-key": bad})
        assert_error(reply, 400, code="INVALID_API_KEY", field="apiKey")
    reply = await stack.gw("GET", "/api/automation/rules", headers={"Authorization": "Bearer"})
    assert_error(reply, 401)


async def test_declared_auth_id_must_match(user: User) -> None:
    """A declared authId (query, x-auth-id or body) equal to sha256(key) passes; another is 403."""
    other = auth_id_for("someone-else-entirely-0123")
    ok_path = f"/api/automation/rules?authId={user.auth_id}"
    assert (await user.call("GET", ok_path))[0] == 200
    assert (await user.call("GET", "/api/automation/rules", headers={"x-auth-id": user.auth_id}))[
        0
    ] == 200
    for reply in (
        await user.call("GET", f"/api/automation/rules?authId={other}"),
        await user.call("GET", "/api/automation/rules", headers={"x-auth-id": other}),
        await user.call("POST", "/api/automation/rules", json={"authId": other, "rules": []}),
        await user.call("POST", "/api/backend/api-key/ensure-db", json={"authId": other}),
    ):
        assert_error(reply, 403, code="AUTH_ID_MISMATCH")


async def test_unregistered_user_is_404_everywhere(make_user: MakeUser) -> None:
    """Every per-user endpoint answers 404 "User not registered" to a key that never ensure-db'd."""
    stranger = await make_user(register=False)
    for method, path in UNREGISTERED_ROUTES:
        reply = await stranger.call(method, path, json=BODIES.get((method, path)))
        body = assert_error(reply, 404, code="USER_NOT_REGISTERED")
        assert body["error"] == "User not registered", (method, path)


# Keys --------------------------------------------------------------------------------------------


async def test_ensure_db_creates_then_finds(make_user: MakeUser) -> None:
    """ensure-db validates with TorBox and creates the DB once; later calls say it exists."""
    fresh = await make_user(register=False)
    first = await fresh.ok("POST", "/api/backend/api-key/ensure-db")
    assert first == {
        "success": True,
        "authId": fresh.auth_id,
        "dbExists": True,
        "wasCreated": True,
        "message": "User database created",
        "reactivated": False,
    }
    again = await fresh.ok("POST", "/api/backend/api-key/ensure-db", json={"apiKey": fresh.key})
    assert again["wasCreated"] is False
    assert again["message"] == "User database already exists"


async def test_ensure_db_key_only_in_body(make_user: MakeUser) -> None:
    """TBM's Next proxy sends the key as {apiKey} in the body; that registers the user too."""
    fresh = await make_user(register=False)
    status, body, _ = await fresh.stack.gw(
        "POST", "/api/backend/api-key/ensure-db", json={"apiKey": fresh.key, "keyName": "x"}
    )
    assert status == 200
    assert body["authId"] == fresh.auth_id
    assert body["wasCreated"] is True


async def test_ensure_db_refused_key_is_400(stack: GatewayStack) -> None:
    """A well-formed key TorBox refuses is 400 INVALID_API_KEY naming apiKey, and not registered."""
    key = "not-a-torbox-key-but-well-formed"
    stack.keys.add(key)
    reply = await stack.gw("POST", "/api/backend/api-key/ensure-db", key=key)
    assert_error(reply, 400, code="INVALID_API_KEY", field="apiKey")
    assert_error(await stack.gw("GET", "/api/automation/rules", key=key), 404)


async def test_ensure_db_reactivates_after_auth_failures(make_user: MakeUser) -> None:
    """A user stopped after TorBox refused their key is reactivated by ensure-db once it works."""
    person = await make_user()
    stack = person.stack
    await stack.sim(
        "POST", "/_sim/faults", json={"api_key": person.key, "kind": "revoked", "count": 1000}
    )

    async def stopped() -> bool:
        status, body, _ = await person.call("POST", "/api/automation/rules/1/run")
        return status == 409 and body["code"] == "API_KEY_INACTIVE"

    await eventually(stopped, timeout=40, what="the user to be stopped after auth failures")
    await stack.sim("DELETE", f"/_sim/faults/{person.key}")
    body = await person.ok("POST", "/api/backend/api-key/ensure-db")
    assert body["reactivated"] is True
    assert body["wasCreated"] is False
    assert_error(await person.call("POST", "/api/automation/rules/1/run"), 404)


async def test_remove_key_deletes_everything(make_user: MakeUser) -> None:
    """DELETE /api/backend/api-key removes the user and their data; ensure-db then starts over."""
    person = await make_user()
    await person.ok("POST", "/api/automation/rules", json={"rules": [rule()]})
    assert await person.ok("DELETE", "/api/backend/api-key") == {"success": True, "removed": True}
    assert_error(await person.call("GET", "/api/automation/rules"), 404)
    assert_error(await person.call("DELETE", "/api/backend/api-key"), 404)
    again = await person.ok("POST", "/api/backend/api-key/ensure-db")
    assert again["wasCreated"] is True
    assert (await person.ok("GET", "/api/automation/rules"))["rules"] == []


async def test_activity(user: User) -> None:
    """POST /api/activity answers {"success": true}."""
    assert await user.ok("POST", "/api/activity") == {"success": True}


# Rules -------------------------------------------------------------------------------------------


def check_rule(saved: dict[str, Any]) -> None:
    """A stored rule carries TBM's fields and our bookkeeping, times in ISO-8601 Z."""
    assert isinstance(saved["id"], int)
    assert saved["id"] > 0
    for name in ("name", "enabled", "assetTypes", "trigger", "logicOperator", "groups", "action"):
        assert name in saved, name
    assert saved["execution_count"] >= 0
    for name in ("created_at", "updated_at"):
        assert_iso(saved[name])
    for name in ("last_evaluated_at", "last_executed_at"):
        assert saved[name] is None or assert_iso(saved[name])


async def test_save_rules_replace_all(user: User) -> None:
    """POST rules inserts new ones, updates known ids in place (keeping logs), deletes the rest."""
    body = await user.ok(
        "POST", "/api/automation/rules", json={"rules": [rule("one"), rule("two"), rule("three")]}
    )
    assert body["message"] == "Rules saved successfully"
    one, two, three = body["rules"]
    for saved in (one, two, three):
        check_rule(saved)
    assert [r["name"] for r in body["rules"]] == ["one", "two", "three"]
    await user.ok("POST", f"/api/automation/rules/{two['id']}/run")
    logs = (await user.ok("GET", f"/api/automation/rules/{two['id']}/logs"))["logs"]
    assert len(logs) == 1

    renamed = {**two, "name": "two renamed", "trigger": {"type": "interval", "value": 45}}
    body = await user.ok(
        "POST", "/api/automation/rules", json={"rules": [renamed, rule("four"), one]}
    )
    names = {r["name"]: r for r in body["rules"]}
    assert set(names) == {"two renamed", "four", "one"}
    assert names["two renamed"]["id"] == two["id"]
    assert names["two renamed"]["trigger"] == {"type": "interval", "value": 45}
    assert names["one"]["id"] == one["id"]
    assert names["four"]["id"] not in (one["id"], two["id"], three["id"])
    listed = (await user.ok("GET", "/api/automation/rules"))["rules"]
    assert {r["id"] for r in listed} == {r["id"] for r in body["rules"]}
    assert len((await user.ok("GET", f"/api/automation/rules/{two['id']}/logs"))["logs"]) == 1
    assert_error(await user.call("GET", f"/api/automation/rules/{three['id']}"), 404)


async def test_save_rules_keeps_extensions(user: User) -> None:
    """Our extensions (nested groups, negate, for_minutes, matches, event triggers) round-trip."""
    doc = rule(
        "extended",
        trigger={"type": "event", "events": ["TORRENT_COMPLETED"]},
        groups=[
            {
                "logicOperator": "or",
                "negate": True,
                "conditions": [
                    {"type": "NAME", "operator": "matches", "value": r"^ubuntu.*\.iso$"},
                    {"type": "PROGRESS", "operator": "gte", "value": 99.5, "for_minutes": 0.25},
                ],
                "groups": [
                    {
                        "conditions": [
                            {"type": "STATUS", "operator": "is_any_of", "value": ["stalled"]}
                        ]
                    }
                ],
            }
        ],
        action={"type": "archive"},
        cooldown_minutes=10,
        dry_run=True,
        max_actions_per_run=2,
        metadata={"executionCount": 0, "createdAt": 1700000000000},
    )
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [doc]}))["rules"][0]
    assert saved["trigger"] == doc["trigger"]
    group = saved["groups"][0]
    assert group["negate"] is True
    assert group["logicOperator"] == "or"
    assert group["conditions"][0]["value"] == r"^ubuntu.*\.iso$"
    assert group["conditions"][1]["for_minutes"] == 0.25
    assert group["groups"][0]["conditions"][0]["value"] == ["stalled"]
    assert (saved["cooldown_minutes"], saved["dry_run"], saved["max_actions_per_run"]) == (
        10,
        True,
        2,
    )
    assert saved["metadata"] == doc["metadata"]


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([rule("ok"), rule("bad", action={"type": "explode"})], "rules[1].action.type"),
        ([rule(""), rule()], "rules[0].name"),
        (
            [
                rule(
                    groups=[{"conditions": [{"type": "RATIO", "operator": "contains", "value": 1}]}]
                )
            ],
            "rules[0].groups[0].conditions[0].operator",
        ),
        (
            [rule(groups=[{"conditions": [{"type": "WIBBLE", "operator": "gt", "value": 1}]}])],
            "rules[0].groups[0].conditions[0].type",
        ),
        (
            [
                rule(
                    groups=[{"conditions": [{"type": "NAME", "operator": "matches", "value": "("}]}]
                )
            ],
            "rules[0].groups[0].conditions[0].value",
        ),
        ([rule(trigger={"type": "interval", "value": "soon"})], "rules[0].trigger.value"),
        ([rule(enabled="yes")], "rules[0].enabled"),
        ([5], "rules[0]"),
    ],
)
async def test_save_rules_invalid_names_rule_and_field(
    user: User, rules: list[Any], field: str
) -> None:
    """An invalid rule is 400 naming the rule (by position) and the field; nothing is saved."""
    await user.ok("POST", "/api/automation/rules", json={"rules": [rule("kept")]})
    body = assert_error(
        await user.call("POST", "/api/automation/rules", json={"rules": rules}),
        400,
        code="VALIDATION_ERROR",
        field=field,
    )
    index = int(field[len("rules[")]) + 1
    assert f"Rule {index}" in body["error"]
    assert [r["name"] for r in (await user.ok("GET", "/api/automation/rules"))["rules"]] == ["kept"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'"rules"', "body"),
        (b"{}", "rules"),
        (b'{"rules": {"name": "x"}}', "rules"),
        (b'{"rules": [{"name": "x", "trigger": {"value": NaN}}]}', "body"),
        (b'{"rules": [{"name": "x", "trigger": {"value": 1e999}}]}', "body"),
        (b'{"rules": [{"id": 99999999999999999999999, "name": "x"}]}', "body"),
        (b'{"rules": "' + b"9" * 5000 + b'"}', "rules"),
        (b"[" * 10_000 + b"]" * 10_000, "body"),
        (b'{"rules": [{"name": "\\udc00"}]}', "body"),
        (b"\xff\xfe\x00", "body"),
    ],
)
async def test_save_rules_bad_bodies(user: User, payload: bytes, field: str) -> None:
    """Bodies that are not a JSON object with a rules list are 400 naming the field, never 5xx."""
    reply = await user.call(
        "POST", "/api/automation/rules", data=payload, headers={"Content-Type": "application/json"}
    )
    assert_error(reply, 400, field=field)


async def test_get_rule(user: User) -> None:
    """GET a rule by id; an unknown id is 404, a malformed one 400 naming id."""
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [rule()]}))["rules"][0]
    got = await user.ok("GET", f"/api/automation/rules/{saved['id']}")
    volatile = {"last_evaluated_at", "last_executed_at", "execution_count"}  # a poll may run it
    assert {k: v for k, v in got["rule"].items() if k not in volatile} == {
        k: v for k, v in saved.items() if k not in volatile
    }
    assert_error(await user.call("GET", "/api/automation/rules/999"), 404, code="RULE_NOT_FOUND")
    for bad in ("abc", "0", "-1", "1.5", "%C2%B2", "9" * 30):
        assert_error(await user.call("GET", f"/api/automation/rules/{bad}"), 400, field="id")


async def test_put_rule_toggles(user: User) -> None:
    """PUT {enabled} toggles a rule and answers it; unknown id 404; bad values 400 by field."""
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [rule()]}))["rules"][0]
    path = f"/api/automation/rules/{saved['id']}"
    body = await user.ok("PUT", path, json={"enabled": True})
    assert body["rule"]["enabled"] is True
    assert body["rule"]["id"] == saved["id"]
    assert (await user.ok("GET", path))["rule"]["enabled"] is True
    body = await user.ok("PUT", path, json={"enabled": False, "name": "renamed"})
    assert body["rule"]["enabled"] is False
    assert body["rule"]["name"] == "renamed"
    assert_error(await user.call("PUT", path, json={"enabled": "no"}), 400, field="enabled")
    assert_error(await user.call("PUT", path, json={}), 400, field="enabled")
    assert_error(await user.call("PUT", path, json=[True]), 400, field="body")
    missing = await user.call("PUT", "/api/automation/rules/999", json={"enabled": True})
    assert_error(missing, 404, code="RULE_NOT_FOUND")


async def test_delete_rule(user: User) -> None:
    """DELETE a rule answers success; a second delete is 404."""
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [rule()]}))["rules"][0]
    path = f"/api/automation/rules/{saved['id']}"
    body = await user.ok("DELETE", path)
    assert body == {"success": True, "message": "Rule deleted successfully"}
    assert_error(await user.call("DELETE", path), 404)
    assert (await user.ok("GET", "/api/automation/rules"))["rules"] == []


async def test_rule_logs_and_run(user: User) -> None:
    """A manual run answers TBM's result; its log row has TBM's fields; clearing empties it."""
    await polled(user)
    doc = rule(
        "stop all seeding",
        groups=[{"conditions": [{"type": "RATIO", "operator": "gte", "value": 0}]}],
    )
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [doc]}))["rules"][0]
    base = f"/api/automation/rules/{saved['id']}"
    assert (await user.ok("GET", f"{base}/logs"))["logs"] == []

    result = (await user.ok("POST", f"{base}/run"))["result"]
    assert result["ruleId"] == saved["id"]
    assert result["ruleName"] == "stop all seeding"
    assert result["totalTorrents"] == 3
    assert result["matchedTorrents"] == 3
    assert result["processedTorrents"] == 2  # the downloading one is not seeding
    assert (result["successCount"], result["errorCount"]) == (2, 0)
    assert result["executed"] is True
    assert result["skipped"] is False
    assert result["actionType"] == "stop_seeding"
    assert result["dryRun"] is False
    assert float(result["executionTime"]) >= 0

    logs = (await user.ok("GET", f"{base}/logs"))["logs"]
    assert len(logs) == 1
    log = logs[0]
    assert log["rule_id"] == saved["id"]
    assert log["rule_name"] == "stop all seeding"
    assert log["execution_type"] == "manual"
    assert log["items_processed"] == 2
    assert log["success"] == 1
    assert log["error_message"] is None or isinstance(log["error_message"], str)
    assert_iso(log["executed_at"])
    assert {a["status"] for a in log["actions"]} == {"succeeded"}
    assert_error(await user.call("GET", f"{base}/logs?limit=0"), 400, field="limit")

    again = (await user.ok("POST", f"{base}/run"))["result"]
    assert again["executed"] is False
    assert again["skipped"] is True
    assert again["reason"]
    assert [row["id"] for row in (await user.ok("GET", f"{base}/logs?limit=1"))["logs"]] == [
        max(row["id"] for row in (await user.ok("GET", f"{base}/logs"))["logs"])
    ]
    assert await user.ok("DELETE", f"{base}/logs") == {
        "success": True,
        "message": "Rule logs cleared successfully",
    }
    assert (await user.ok("GET", f"{base}/logs"))["logs"] == []


async def test_run_unknown_rule_and_dry_run(user: User) -> None:
    """Running an unknown rule is 404; a dry-run rule reports matches and sends nothing."""
    await polled(user)
    assert_error(
        await user.call("POST", "/api/automation/rules/77/run"), 404, code="RULE_NOT_FOUND"
    )
    doc = rule(
        "dry",
        dry_run=True,
        groups=[{"conditions": [{"type": "RATIO", "operator": "gte", "value": 0}]}],
    )
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [doc]}))["rules"][0]
    result = (await user.ok("POST", f"/api/automation/rules/{saved['id']}/run"))["result"]
    assert result["dryRun"] is True
    assert result["matchedTorrents"] == 3
    raw = await user.stack.sim("GET", f"/_sim/accounts/{user.key}")
    assert all(t["download_state"] != "stopped" for t in raw["torrents"]), raw["torrents"]


async def test_logs_of_unknown_rule(user: User) -> None:
    """Logs of an unknown rule are 404 (read and clear)."""
    assert_error(await user.call("GET", "/api/automation/rules/5/logs"), 404)
    assert_error(await user.call("DELETE", "/api/automation/rules/5/logs"), 404)


async def test_preview(user: User) -> None:
    """Preview evaluates an unsaved rule: totals, per-torrent matches and per-condition values."""
    await polled(user)
    doc = rule(
        "preview", groups=[{"conditions": [{"type": "PROGRESS", "operator": "gte", "value": 100}]}]
    )
    body = await user.ok("POST", "/api/automation/rules/preview", json=doc)
    assert body["total_torrents"] == 3
    assert body["matched_torrents"] == 2
    assert_iso(body["observed_at"])
    for row in body["torrents"]:
        assert int(row["torrent_id"]) in user.torrent_ids
        (condition,) = row["conditions"]
        assert condition["type"] == "PROGRESS"
        assert condition["threshold"] == 100
        assert condition["result"] in ("match", "no_match", "unknown")
    wrapped = await user.ok("POST", "/api/automation/rules/preview", json={"rule": doc})
    assert wrapped["matched_torrents"] == 2
    assert (await user.ok("GET", "/api/automation/rules"))["rules"] == []
    assert_error(
        await user.call("POST", "/api/automation/rules/preview", json={"rule": 5}),
        400,
        field="rule",
    )
    bad = rule(groups=[{"conditions": [{"type": "RATIO"}]}])
    reply = await user.call("POST", "/api/automation/rules/preview", json=bad)
    assert_error(reply, 400, field="groups[0].conditions[0].operator")


async def test_preview_holds_back_only_what_protection_is_about(user: User) -> None:
    """A protected torrent is "protected" for a delete, but a reannounce still reaches it."""
    await polled(user)
    guarded = user.torrent_ids[0]
    await user.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": [guarded], "protected": True}
    )
    everything = [{"conditions": [{"type": "PROGRESS", "operator": "gte", "value": 0}]}]

    async def row_for(action: str) -> dict[str, Any]:
        doc = rule("p", groups=everything, action={"type": action})
        body = await user.ok("POST", "/api/automation/rules/preview", json=doc)
        (row,) = [r for r in body["torrents"] if r["torrent_id"] == guarded]
        return dict(row)

    deleting = await row_for("delete")
    assert (deleting["matched"], deleting["actionable"], deleting["skip_reason"]) == (
        True,
        False,
        "protected",
    )
    announcing = await row_for("reannounce")
    assert (announcing["actionable"], announcing["skip_reason"]) == (True, "")


async def test_presets(user: User) -> None:
    """The three built-in presets of the product brief, as valid rules."""
    presets = (await user.ok("GET", "/api/automation/presets"))["presets"]
    assert len(presets) == 3
    kinds = {(p["groups"][0]["conditions"][0]["type"], p["action"]["type"]) for p in presets}
    assert kinds == {
        ("RATIO", "stop_seeding"),
        ("DOWNLOAD_STALLED_TIME", "archive"),
        ("SEEDING_TIME", "stop_seeding"),
    }
    saved = await user.ok("POST", "/api/automation/rules", json={"rules": presets})
    assert len(saved["rules"]) == 3


# Torrents ----------------------------------------------------------------------------------------


async def test_torrents_status(user: User) -> None:
    """GET torrents: one row per simulated torrent with telemetry, last action and protection."""
    torrents = await polled(user)
    assert {t["torrent_id"] for t in torrents} == set(user.torrent_ids)
    for torrent in torrents:
        assert_iso(torrent["first_seen_at"])
        assert torrent["protected"] is False
        assert torrent["last_action"] is None
        for name in ("stalled_since", "seeding_time_seconds", "stall_count", "avg_upload_speed_1h"):
            assert name in torrent
    body = await user.ok("GET", "/api/automation/torrents?include_removed=true")
    assert_iso(body["observed_at"])
    assert_error(
        await user.call("GET", "/api/automation/torrents?include_removed=maybe"),
        400,
        field="include_removed",
    )


async def test_torrent_events(user: User) -> None:
    """A torrent's synthetic events, newest first, each with its type, time and data."""
    await polled(user)
    added = await user.stack.sim(
        "POST", f"/_sim/accounts/{user.key}/torrents", json={"profile": "downloading"}
    )
    torrent_id = added["torrent_id"]

    async def events() -> list[dict[str, Any]] | None:
        body = await user.ok("GET", f"/api/automation/torrents/{torrent_id}/events")
        return body["events"] or None

    found = await eventually(events, timeout=30, what="a synthetic event")
    for event in found:
        assert event["torrent_id"] == torrent_id
        assert event["type"].startswith("TORRENT_") or event["type"].startswith("AUTOMATION_")
        assert_iso(event["observed_at"])
        assert isinstance(event["data"], dict)
    times = [e["observed_at"] for e in found]
    assert times == sorted(times, reverse=True)
    assert_error(
        await user.call("GET", "/api/automation/torrents/x/events"), 400, field="torrent_id"
    )
    assert_error(
        await user.call("GET", f"/api/automation/torrents/{torrent_id}/events?limit=5000"),
        400,
        field="limit",
    )


async def test_account_polling_from_the_scheduler(user: User) -> None:
    """GET account: the scheduler's view of the caller's polling (next poll, key health)."""
    await polled(user)

    async def healthy() -> dict[str, Any] | None:
        account: dict[str, Any] = (await user.ok("GET", "/api/automation/account"))["account"]
        polling = account["polling"]
        return account if polling and polling["key_health"] == "healthy" else None

    account = await eventually(healthy, timeout=30, what="a healthy key")
    assert account["status"] == "active"
    assert_iso(account["last_poll_at"])
    polling = account["polling"]
    assert polling["scheduled"] is True
    assert_iso(polling["next_poll_at"])
    assert_iso(polling["last_success_at"])
    assert polling["interval_seconds"] > 0
    assert polling["consecutive_failures"] == 0
    assert polling["last_error_code"] is None
    assert polling["last_failure_at"] is None
    assert polling["paused"] is False
    assert user.key not in str(account)


async def test_account_events_say_which_actions_were_held_and_why(make_user: MakeUser) -> None:
    """A delete rule matching every torrent is held by the share cap; the account's events
    (torrent id 0) say so over REST, and nothing is deleted."""
    user = await make_user(mix={"seeding": 4})
    await polled(user)
    assert (await user.ok("GET", "/api/automation/account/events"))["events"] == []
    everything = rule(
        "Delete everything",
        enabled=True,
        trigger={"type": "interval", "value": 0},
        groups=[
            {
                "logicOperator": "and",
                "conditions": [{"type": "NAME", "operator": "matches", "value": "."}],
            }
        ],
        action={"type": "delete"},
    )
    await user.ok("POST", "/api/automation/rules", json={"rules": [everything]})

    async def held() -> list[dict[str, Any]] | None:
        body = await user.ok("GET", "/api/automation/account/events?limit=5")
        return body["events"] or None

    events = await eventually(held, timeout=30, what="an AUTOMATION_HELD event")
    assert len(events) <= 5
    event = events[0]
    assert event["type"] == "AUTOMATION_HELD"
    assert event["torrent_id"] == 0
    assert_iso(event["observed_at"])
    assert "4 torrents matched destructive rules" in event["data"]["reason"]
    assert {h["torrent_id"] for h in event["data"]["held"]} == set(user.torrent_ids)
    assert {h["action"] for h in event["data"]["held"]} == {"delete"}
    torrents = await user.ok("GET", "/api/automation/torrents")
    assert {t["torrent_id"] for t in torrents["torrents"]} == set(user.torrent_ids)
    assert_error(
        await user.call("GET", "/api/automation/account/events?limit=0"), 400, field="limit"
    )


async def test_torrent_limits(user: User) -> None:
    """Per-torrent seeding limits: set, read, validate, clear."""
    torrent_id = user.torrent_ids[0]
    path = f"/api/automation/torrents/{torrent_id}/limits"
    assert (await user.ok("GET", path))["limits"] is None
    limits = (await user.ok("PUT", path, json={"seed_ratio": 2, "seed_time_hours": 12.5}))["limits"]
    assert (limits["torrent_id"], limits["seed_ratio"], limits["seed_time_hours"]) == (
        torrent_id,
        2,
        12.5,
    )
    assert_iso(limits["updated_at"])
    assert (await user.ok("GET", path))["limits"] == limits
    assert_error(await user.call("PUT", path, json={"seed_ratio": "two"}), 400, field="seed_ratio")
    assert_error(await user.call("PUT", path, json={"seed_ratio": -1}), 400, field="seed_ratio")
    assert await user.ok("DELETE", path) == {"success": True, "limits": None}
    assert (await user.ok("GET", path))["limits"] is None


# Archive and protection --------------------------------------------------------------------------


async def test_archive_create_list_delete(user: User) -> None:
    """Archive rows: create (409 when repeated), list by page and search, delete (then 404)."""
    created = []
    for n in range(3):
        body = await user.ok(
            "POST",
            "/api/archived-downloads",
            json={
                "torrent_id": 100 + n,
                "hash": f"{n:040x}",
                "name": f"Show.S0{n}",
                "tracker": "udp://t.example:80",
            },
        )
        row = body["data"]
        assert set(row) >= {"id", "torrent_id", "hash", "name", "tracker", "magnet", "archived_at"}
        assert (row["torrent_id"], row["name"], row["magnet"]) == (
            str(100 + n),
            f"Show.S0{n}",
            None,
        )
        assert_iso(row["archived_at"])
        created.append(row)
    dup = await user.call(
        "POST", "/api/archived-downloads", json={"torrent_id": 100, "hash": f"{0:040x}"}
    )
    assert_error(dup, 409)

    page = await user.ok("GET", "/api/archived-downloads?page=1&limit=2")
    assert page["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}
    assert len(page["data"]) == 2
    rest = await user.ok("GET", "/api/archived-downloads?page=2&limit=2")
    assert {r["id"] for r in page["data"] + rest["data"]} == {r["id"] for r in created}
    found = await user.ok("GET", "/api/archived-downloads?search=S01")
    assert [r["name"] for r in found["data"]] == ["Show.S01"]

    deleted = await user.ok("DELETE", f"/api/archived-downloads/{created[0]['id']}")
    assert deleted["success"] is True
    assert_error(await user.call("DELETE", f"/api/archived-downloads/{created[0]['id']}"), 404)
    assert (await user.ok("GET", "/api/archived-downloads"))["pagination"]["total"] == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"hash": "ab"}, "torrent_id"),
        ({"torrent_id": "x", "hash": "ab"}, "torrent_id"),
        ({"torrent_id": True, "hash": "ab"}, "torrent_id"),
        ({"torrent_id": -3, "hash": "ab"}, "torrent_id"),
        ({"torrent_id": 1}, "hash"),
        ({"torrent_id": 1, "hash": 5}, "hash"),
        ({"torrent_id": 1, "hash": "ab", "name": ["x"]}, "name"),
        ({"torrent_id": 1, "hash": "ab", "magnet": "m" * 5000}, "magnet"),
    ],
)
async def test_archive_create_invalid(user: User, payload: dict[str, Any], field: str) -> None:
    """Invalid archive rows are 400 naming the field."""
    assert_error(await user.call("POST", "/api/archived-downloads", json=payload), 400, field=field)


async def test_archive_list_invalid_query(user: User) -> None:
    """Bad page/limit values are 400 naming the parameter."""
    for query, field in (
        ("page=0", "page"),
        ("limit=abc", "limit"),
        ("limit=5000", "limit"),
        ("search=" + "s" * 300, "search"),
    ):
        assert_error(await user.call("GET", f"/api/archived-downloads?{query}"), 400, field=field)


async def test_archive_restore(user: User) -> None:
    """Restore queues the magnet in the upload queue and removes the row; unknown id 404."""
    info_hash = "c" * 40
    row = (
        await user.ok(
            "POST",
            "/api/archived-downloads",
            json={
                "torrent_id": 555,
                "hash": info_hash,
                "name": "Restored.Thing",
                "magnet": f"magnet:?xt=urn:btih:{info_hash}",
            },
        )
    )["data"]
    body = await user.ok("POST", f"/api/archived-downloads/{row['id']}/restore")
    assert body["data"]["hash"] == info_hash
    assert body["data"]["status"] == "queued"
    upload = (await user.ok("GET", f"/api/uploads/{body['data']['upload_id']}"))["data"]
    assert upload["url"] == f"magnet:?xt=urn:btih:{info_hash}"

    async def on_torbox() -> bool:
        raw = await user.stack.sim("GET", f"/_sim/accounts/{user.key}")
        found = {t["hash"] for t in raw["torrents"]} | {q.get("hash") for q in raw["queued"]}
        return info_hash in found

    await eventually(on_torbox, what="the restored torrent on TorBox")
    assert (await user.ok("GET", "/api/archived-downloads"))["data"] == []
    assert_error(await user.call("POST", f"/api/archived-downloads/{row['id']}/restore"), 404)


async def test_protection(user: User) -> None:
    """PUT protect marks ids protected (or not); GET lists them; bad bodies are 400 by field."""
    a, b, _ = user.torrent_ids
    assert (await user.ok("GET", "/api/downloads/protect"))["protected_ids"] == []
    body = await user.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": [a, str(b)], "protected": True}
    )
    assert sorted(body["protected_ids"]) == sorted([str(a), str(b)])
    body = await user.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": [a], "protected": False}
    )
    assert body["protected_ids"] == [str(b)]
    assert (await user.ok("GET", "/api/downloads/protect"))["protected_ids"] == [str(b)]
    for payload, field in (
        ({"download_ids": "1"}, "download_ids"),
        ({"download_ids": [0]}, "download_ids.0"),
        ({"download_ids": [1, True]}, "download_ids.1"),
        ({"download_ids": [1]}, "protected"),
        ({"download_ids": list(range(1, 1100))}, "download_ids"),
        ({"download_ids": [1], "protected": "yes"}, "protected"),
    ):
        assert_error(
            await user.call("PUT", "/api/downloads/protect", json=payload), 400, field=field
        )


async def test_protected_torrent_is_never_acted_on(user: User) -> None:
    """A protected torrent is skipped by a manual run that matches it."""
    await polled(user)
    seeding = [
        t
        for t in (await user.ok("GET", "/api/automation/torrents"))["torrents"]
        if t["status"] == "seeding"
    ]
    target = seeding[0]["torrent_id"]
    await user.ok(
        "PUT", "/api/downloads/protect", json={"download_ids": [target], "protected": True}
    )
    doc = rule("stop", groups=[{"conditions": [{"type": "RATIO", "operator": "gte", "value": 0}]}])
    saved = (await user.ok("POST", "/api/automation/rules", json={"rules": [doc]}))["rules"][0]
    result = (await user.ok("POST", f"/api/automation/rules/{saved['id']}/run"))["result"]
    assert result["processedTorrents"] == len(seeding) - 1
    raw = await user.stack.sim("GET", f"/_sim/accounts/{user.key}")
    state = {t["id"]: t["download_state"] for t in raw["torrents"]}
    assert state[target] != "stopped"
