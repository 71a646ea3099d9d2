"""TBM's frontend, replayed: the calls it makes in order, checking every field it reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import assert_iso

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


def editor_rule() -> dict[str, Any]:
    """A new rule exactly as TBM's rule editor posts it (metadata in ms epochs, opaque to us)."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "name": "Archive stalled downloads",
        "enabled": False,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 30},
        "logicOperator": "and",
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "STATUS", "operator": "is_any_of", "value": ["stalled"]}],
            }
        ],
        "action": {"type": "archive"},
        "metadata": {
            "executionCount": 0,
            "lastExecutedAt": None,
            "triggeredCount": 0,
            "lastTriggeredAt": None,
            "lastEnabledAt": None,
            "createdAt": now_ms,
            "updatedAt": now_ms,
        },
    }


async def test_tbm_frontend_sequence(make_user: MakeUser) -> None:
    """status, ensure-db, GET/POST rules, toggle, logs, run, archived: every field TBM reads."""
    person = await make_user(register=False, mix={"stalled": 2, "seeding": 1, "downloading": 1})
    stack = person.stack
    stalled = set(person.torrent_ids[:2])
    # What the Next proxy adds: ?authId= on reads, authId in bodies, the key in x-api-key.
    auth = f"authId={person.auth_id}"

    # backendModeCache.checkBackendAvailability(): backend mode iff `available` is truthy.
    status, body, _ = await stack.gw("GET", "/api/backend/status")
    assert status == 200
    assert body["available"] is True

    # ensureUserDb: POST with the key in x-api-key, no body (Next forwards {apiKey}).
    status, body, _ = await stack.gw(
        "POST", "/api/backend/api-key/ensure-db", key=person.key, json={"apiKey": person.key}
    )
    assert status == 200
    assert body["success"] is True
    assert body["dbExists"] is True
    assert body["wasCreated"] is True
    assert body["authId"] == person.auth_id
    assert isinstance(body["message"], str)

    # automationRulesStore: GET rules reads data.rules.
    body = await person.ok("GET", f"/api/automation/rules?{auth}")
    assert body["rules"] == []

    # Saving the editor's list: the store replaces its state with the returned rules (with ids).
    posted = editor_rule()
    body = await person.ok(
        "POST", "/api/automation/rules", json={"rules": [posted], "authId": person.auth_id}
    )
    (saved,) = body["rules"]
    assert isinstance(saved["id"], int)
    for name in ("name", "enabled", "assetTypes", "trigger", "logicOperator", "groups", "action"):
        assert saved[name] == posted[name], name
    assert saved["metadata"] == posted["metadata"]
    # RuleCard: "Last ran at" from last_evaluated_at; the counters it shows.
    assert saved["last_evaluated_at"] is None
    assert saved["last_executed_at"] is None
    assert saved["execution_count"] == 0
    rule_path = f"/api/automation/rules/{saved['id']}"

    # The card's checkbox: PUT {enabled}; the page only looks at success.
    body = await person.ok("PUT", f"{rule_path}?{auth}", json={"enabled": True})
    assert body["rule"]["enabled"] is True
    body = await person.ok("PUT", f"{rule_path}?{auth}", json={"enabled": False})
    assert body["rule"]["enabled"] is False

    # RuleLogsModal before any run: enabling the rule logged what it would do (nothing affected).
    (on_save,) = (await person.ok("GET", f"{rule_path}/logs?{auth}"))["logs"]
    assert on_save["execution_type"] == "saved"
    assert on_save["items_processed"] == 0
    assert on_save["success"] == 1
    assert on_save["error_message"].startswith("saved: ")

    # "Run now": ExecutionResult reads matched/success/error counts, skipped, executed, reason.
    async def stalled_seen() -> bool:
        torrents = (await person.ok("GET", "/api/automation/torrents"))["torrents"]
        return {t["torrent_id"] for t in torrents if t["status"] == "stalled"} == stalled

    await eventually(stalled_seen, timeout=30, what="the stalled torrents to be seen")
    body = await person.ok("POST", f"{rule_path}/run?{auth}")
    result = body["result"]
    assert result["matchedTorrents"] == 2
    assert result["successCount"] == 2
    assert result["errorCount"] == 0
    assert result["executed"] is True
    assert result["skipped"] is False
    assert "reason" not in result or isinstance(result["reason"], str)
    assert not result.get("rateLimited")

    # RuleLogsModal: executed_at -> timestamp, items_processed -> itemsAffected,
    # success 1/0 -> bool, error_message -> error.
    logs = (await person.ok("GET", f"{rule_path}/logs?{auth}"))["logs"]
    assert len(logs) == 2
    log = logs[0]
    assert assert_iso(log["executed_at"]) <= datetime.now(UTC)
    assert log["items_processed"] == 2
    assert log["success"] in (0, 1)
    assert log["success"] == 1
    assert log["error_message"] is None or isinstance(log["error_message"], str)
    assert log["rule_id"] == saved["id"]
    assert log["execution_type"] == "manual"

    # The card's "Last ran at" after the run.
    card = (await person.ok("GET", f"/api/automation/rules?{auth}"))["rules"][0]
    assert_iso(card["last_evaluated_at"])
    assert card["execution_count"] == 1

    # The archive page: data rows and pagination.
    body = await person.ok("GET", f"/api/archived-downloads?page=1&limit=50&search=&{auth}")
    assert body["pagination"] == {"page": 1, "limit": 50, "total": 2, "totalPages": 1}
    assert {int(row["torrent_id"]) for row in body["data"]} == stalled
    raw = await stack.sim("GET", f"/_sim/accounts/{person.key}")
    by_id = {t["id"]: t for t in raw["torrents"]}
    for row in body["data"]:
        assert set(row) >= {"id", "torrent_id", "hash", "name", "tracker", "magnet", "archived_at"}
        assert isinstance(row["id"], int)
        assert len(row["hash"]) == 40
        assert isinstance(row["name"], str)
        assert row["name"]
        assert row["magnet"] is None or row["magnet"].startswith("magnet:?")
        assert_iso(row["archived_at"])
        # Archived means gone from TorBox.
        assert int(row["torrent_id"]) not in by_id
