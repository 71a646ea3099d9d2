"""Authentication, unknown paths and the deprecated queue endpoint."""

from __future__ import annotations

from tests.simulator.conftest import API, Sim


async def test_missing_header_is_no_auth(sim: Sim) -> None:
    """Without an Authorization header TorBox answers 403 NO_AUTH in its envelope."""
    reply = await sim.call("GET", f"{API}/user/me")
    assert reply.status == 403
    assert reply.json == {
        "success": False,
        "error": "NO_AUTH",
        "detail": "Please provide a valid API token.",
        "data": None,
    }


async def test_non_bearer_scheme_is_no_auth(sim: Sim) -> None:
    """A header that is not a bearer token counts as no token."""
    account = await sim.account()
    reply = await sim.call(
        "GET", f"{API}/user/me", headers={"Authorization": f"Basic {account['api_key']}"}
    )
    assert (reply.status, reply.json["error"]) == (403, "NO_AUTH")


async def test_unknown_key_is_bad_token(sim: Sim) -> None:
    """A key the simulator never issued is 403 BAD_TOKEN."""
    reply = await sim.call("GET", f"{API}/torrents/mylist", key="not-a-real-key-123456")
    assert reply.status == 403
    assert reply.json["success"] is False
    assert reply.json["error"] == "BAD_TOKEN"


async def test_deleted_account_key_is_revoked(sim: Sim) -> None:
    """After DELETE /_sim/accounts/{key} the key answers BAD_TOKEN."""
    key = (await sim.account())["api_key"]
    assert (await sim.call("GET", f"{API}/user/me", key=key)).status == 200
    assert (await sim.call("DELETE", f"/_sim/accounts/{key}")).status == 200
    reply = await sim.call("GET", f"{API}/user/me", key=key)
    assert (reply.status, reply.json["error"]) == (403, "BAD_TOKEN")


async def test_bearer_scheme_is_case_insensitive(sim: Sim) -> None:
    """`bearer` in lower case is accepted like `Bearer`."""
    key = (await sim.account())["api_key"]
    reply = await sim.call("GET", f"{API}/user/me", headers={"Authorization": f"bearer {key}"})
    assert reply.status == 200


async def test_user_me_fields(sim: Sim) -> None:
    """/user/me returns the documented account fields, settings only on request."""
    key = (await sim.account())["api_key"]
    reply = await sim.call("GET", f"{API}/user/me", key=key)
    assert reply.status == 200
    body = reply.json
    assert body["success"] is True
    assert body["error"] is None
    data = body["data"]
    for field in (
        "id",
        "auth_id",
        "created_at",
        "updated_at",
        "plan",
        "total_downloaded",
        "customer",
        "server",
        "is_subscribed",
        "premium_expires_at",
        "cooldown_until",
        "email",
        "user_referral",
        "base_email",
        "additional_concurrent_slots",
        "long_term_seeding",
        "long_term_storage",
    ):
        assert field in data
    assert data["plan"] in (0, 1, 2, 3)
    assert "settings" not in data
    with_settings = await sim.call("GET", f"{API}/user/me", key=key, params={"settings": "true"})
    assert "seed_torrents" in with_settings.json["data"]["settings"]


async def test_unknown_path_is_endpoint_not_found_without_auth(sim: Sim) -> None:
    """Unknown paths answer 404 ENDPOINT_NOT_FOUND before any auth check."""
    reply = await sim.call("GET", f"{API}/torrents/nothing-here")
    assert reply.status == 404
    assert reply.json["error"] == "ENDPOINT_NOT_FOUND"
    assert reply.json["success"] is False


async def test_old_getqueued_is_gone(sim: Sim) -> None:
    """The pre-2025 /torrents/getqueued answers 410 DEPRECATED."""
    key = (await sim.account())["api_key"]
    reply = await sim.call("GET", f"{API}/torrents/getqueued", key=key)
    assert reply.status == 410
    assert reply.json["error"] == "DEPRECATED"
    assert "/v1/api/queued/getqueued" in reply.json["detail"]
