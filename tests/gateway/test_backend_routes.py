"""TBM's backend-management routes against the real services: key registration and count, health."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import MakeUser
from tests.gateway.support import GatewayStack, assert_error, assert_iso

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_registering_a_key_validates_it_and_registers_the_user(make_user: MakeUser) -> None:
    """POST {apiKey}: validated with TorBox, registered; ensure-db then finds the database."""
    fresh = await make_user(register=False)
    status, body, _ = await fresh.stack.gw(
        "POST", "/api/backend/api-key", json={"apiKey": fresh.key, "keyName": "laptop"}
    )
    assert status == 200, body
    assert body == {
        "success": True,
        "message": "API key registered successfully",
        "authId": fresh.auth_id,
    }
    again = await fresh.ok("POST", "/api/backend/api-key/ensure-db")
    assert again["wasCreated"] is False
    # Registering again is fine (TBM re-registers and reactivates).
    status, body, _ = await fresh.stack.gw(
        "POST", "/api/backend/api-key", json={"apiKey": fresh.key}
    )
    assert status == 200, body


async def test_registering_refuses_a_missing_malformed_or_unknown_key(stack: GatewayStack) -> None:
    """400 in TBM's words when the key is missing; 400 naming apiKey when TorBox refuses it."""
    for payload in ({}, {"apiKey": ""}, {"apiKey": 42}):
        body = assert_error(
            await stack.gw("POST", "/api/backend/api-key", json=payload), 400, field="apiKey"
        )
        assert body["error"] == "API key is required"
    assert_error(
        await stack.gw("POST", "/api/backend/api-key", json={"apiKey": "short"}),
        400,
        field="apiKey",
    )
    assert_error(
        await stack.gw("POST", "/api/backend/api-key", json={"apiKey": "u" * 32}),
        400,
        code="INVALID_API_KEY",
        field="apiKey",
    )


async def test_key_status_counts_active_users(make_user: MakeUser) -> None:
    """activeUsers counts registered users (every shard added up)."""
    user = await make_user()
    status, body, _ = await user.stack.gw("GET", "/api/backend/api-key/status")
    assert status == 200, body
    assert body["success"] is True
    assert isinstance(body["activeUsers"], int)
    assert body["activeUsers"] >= 1


async def test_detailed_health_needs_no_key_and_says_healthy(stack: GatewayStack) -> None:
    """Every shard and the scheduler answer: healthy, with the version and uptime."""
    status, body, _ = await stack.gw("GET", "/api/health/detailed")
    assert status == 200, body
    assert body["status"] == "healthy"
    assert body["database"]["status"] == "healthy"
    assert body["api"]["status"] == "configured"
    assert isinstance(body["version"], str)
    assert body["uptime"] >= 0
    assert_iso(body["timestamp"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/stremio/addons",
        "/api/tmdb/credentials",
        "/api/admin/users",
    ],
)
async def test_features_not_provided_answer_503_which_tbm_reads_as_disabled(
    stack: GatewayStack, path: str
) -> None:
    """Those pages then show nothing, quietly, instead of an error."""
    body = assert_error(await stack.gw("GET", path), 503, code="FEATURE_NOT_PROVIDED")
    assert "not provided by this backend" in body["error"]
    assert_error(await stack.gw("GET", "/api/stremiox"), 404, code="ENDPOINT_NOT_FOUND")
