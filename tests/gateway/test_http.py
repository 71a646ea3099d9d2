"""The gateway as an HTTP service: body cap, rate limit, CORS, headers, ids, several processes."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import aiohttp
import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import SECURITY_HEADERS, GatewayStack, User, assert_error, rule

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
ALLOWED = "http://app.example:3000"
STACK_ENV = {"FRONTEND_URL": f"{ALLOWED},https://tbm.example.org"}
MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}


# Body cap ----------------------------------------------------------------------------------------


async def test_body_over_one_mib_is_413_json(user: User) -> None:
    """A body of 1 MiB + 1 byte is 413 in the contract's error shape; exactly 1 MiB is read."""
    head = json.dumps({"rules": [rule("fits")], "pad": ""}).encode()
    exactly = head[:-2] + b"x" * (MIB - len(head)) + b'"}'
    assert len(exactly) == MIB
    over = exactly[:-2] + b'x"}'
    reply = await user.call("POST", "/api/automation/rules", data=BytesIO(over), headers=JSON)
    assert_error(reply, 413, code="PAYLOAD_TOO_LARGE")
    status, body, _ = await user.call(
        "POST", "/api/automation/rules", data=BytesIO(exactly), headers=JSON
    )
    assert status == 200
    assert body["rules"][0]["name"] == "fits"


async def test_chunked_body_over_one_mib_is_413_json(user: User) -> None:
    """A chunked body (no Content-Length) is cut off at 1 MiB with the same 413."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"rules": [], "pad": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    assert user.stack.http is not None
    async with user.stack.http.post(
        user.stack.gw_url + "/api/automation/rules",
        data=chunks(),
        headers={"x-api-key": user.key, "Content-Type": "application/json"},
    ) as response:
        body = await response.json()
        assert response.status == 413
        assert body["success"] is False
        assert body["code"] == "PAYLOAD_TOO_LARGE"


# Rate limit --------------------------------------------------------------------------------------


async def test_rate_limit_is_per_user_with_retry_after(make_user: MakeUser) -> None:
    """With 60/min and a burst of 3, the 4th quick call is 429 JSON with Retry-After, per user."""
    first = await make_user()
    second = await make_user()
    base = await first.stack.start_gateway(
        "gateway-limited", RATE_LIMIT_PER_MINUTE="60", RATE_LIMIT_BURST="3"
    )
    call = first.stack.call
    for _ in range(3):
        assert (await call(base, "GET", "/api/automation/rules", key=first.key))[0] == 200
    reply = await call(base, "GET", "/api/automation/rules", key=first.key)
    body = assert_error(reply, 429, code="RATE_LIMITED")
    assert "Too many requests" in body["error"]
    retry_after = int(reply[2]["Retry-After"])
    assert 1 <= retry_after <= 2
    # Another user has their own bucket; health and status are not limited at all.
    assert (await call(base, "GET", "/api/automation/rules", key=second.key))[0] == 200
    for _ in range(5):
        assert (await call(base, "GET", "/health"))[0] == 200

    async def refilled() -> bool:
        return (await call(base, "GET", "/api/automation/rules", key=first.key))[0] == 200

    await eventually(refilled, timeout=10, interval=retry_after, what="a token to come back")


# CORS and headers --------------------------------------------------------------------------------


async def test_cors_preflight_allowed_origin(stack: GatewayStack) -> None:
    """A preflight from a FRONTEND_URL origin is 204 with the allow headers for our methods."""
    status, _, headers = await stack.gw(
        "OPTIONS",
        "/api/automation/rules/1",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "PUT" in headers["Access-Control-Allow-Methods"]
    assert "x-api-key" in headers["Access-Control-Allow-Headers"].lower()
    assert headers["Vary"] == "Origin"
    status, _, headers = await stack.gw(
        "OPTIONS",
        "/api/automation/rules",
        headers={"Origin": "https://tbm.example.org", "Access-Control-Request-Method": "POST"},
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://tbm.example.org"


async def test_cors_preflight_disallowed_origin(stack: GatewayStack) -> None:
    """A preflight from any other origin is 403 JSON and grants nothing."""
    for origin in ("http://evil.example", "http://app.example:3001", "null"):
        reply = await stack.gw(
            "OPTIONS",
            "/api/automation/rules",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert_error(reply, 403, code="CORS_ORIGIN_DENIED")
        assert "Access-Control-Allow-Origin" not in reply[2]


async def test_cors_headers_on_actual_requests(user: User) -> None:
    """Answers (errors included) carry Allow-Origin for an allowed origin only."""
    _, _, headers = await user.call("GET", "/api/automation/rules", headers={"Origin": ALLOWED})
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-Id" in headers["Access-Control-Expose-Headers"]
    _, _, headers = await user.call("GET", "/api/nope", headers={"Origin": ALLOWED})
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    _, _, headers = await user.call(
        "GET", "/api/automation/rules", headers={"Origin": "http://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in headers


async def test_security_headers_everywhere(user: User) -> None:
    """Success, error, 404 and 413 answers all carry the security headers and no-store."""
    replies = [
        await user.call("GET", "/api/automation/rules"),
        await user.call("GET", "/api/automation/rules/abc"),
        await user.call("GET", "/no/such/route"),
        await user.stack.gw("GET", "/health"),
        await user.call("POST", "/api/automation/rules", data=BytesIO(b"x" * (MIB + 1))),
    ]
    for _, _, headers in replies:
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, (name, headers)
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Cache-Control"] == "no-store"


# Request ids -------------------------------------------------------------------------------------


async def test_request_ids_in_answers_and_logs(user: User) -> None:
    """A sane X-Request-Id is kept (else one is made), echoed, and stamped on the access log."""
    _, _, headers = await user.call(
        "GET", "/api/automation/rules", headers={"X-Request-Id": "trace-abc.123"}
    )
    assert headers["X-Request-Id"] == "trace-abc.123"
    assert headers["X-Correlation-Id"] == "trace-abc.123"
    _, _, headers = await user.call(
        "GET", "/api/automation/rules", headers={"X-Request-Id": "bad id with spaces"}
    )
    assert headers["X-Request-Id"] != "bad id with spaces"
    assert len(headers["X-Request-Id"]) == 16
    generated = headers["X-Request-Id"]

    def access_line(rid: str) -> dict[str, Any] | None:
        assert user.stack.gateway is not None
        for line in user.stack.gateway.lines:
            if line.startswith("{") and rid in line:
                record: dict[str, Any] = json.loads(line)
                if record["logger"] == "gateway.access" and record["request_id"] == rid:
                    return record
        return None

    async def logged() -> bool:
        return access_line("trace-abc.123") is not None and access_line(generated) is not None

    await eventually(logged, timeout=10, what="the access log lines")
    record = access_line("trace-abc.123")
    assert record is not None
    assert record["message"] == "GET /api/automation/rules 200"
    assert record["status"] == 200
    assert record["ms"] >= 0


# Several gateways ---------------------------------------------------------------------------------


async def test_two_gateways_serve_the_same_users(make_user: MakeUser) -> None:
    """Two gateway processes on the same services: writes through one are read through the other."""
    person = await make_user(register=False)
    stack = person.stack
    other = await stack.start_gateway("gateway-b")
    one = stack.gw_url
    key = person.key

    status, body, _ = await stack.call(other, "POST", "/api/backend/api-key/ensure-db", key=key)
    assert status == 200
    assert body["wasCreated"] is True
    status, body, _ = await stack.call(one, "POST", "/api/backend/api-key/ensure-db", key=key)
    assert status == 200
    assert body["wasCreated"] is False

    status, body, _ = await stack.call(
        one, "POST", "/api/automation/rules", key=key, json={"rules": [rule("a"), rule("b")]}
    )
    assert status == 200
    ids = [r["id"] for r in body["rules"]]
    # Alternate the gateways on every call: each sees the other's latest write.
    for n in range(6):
        write, read = (one, other) if n % 2 else (other, one)
        enabled = n % 2 == 0
        status, _, _ = await stack.call(
            write, "PUT", f"/api/automation/rules/{ids[0]}", key=key, json={"enabled": enabled}
        )
        assert status == 200
        status, body, _ = await stack.call(read, "GET", f"/api/automation/rules/{ids[0]}", key=key)
        assert status == 200
        assert body["rule"]["enabled"] is enabled
    status, body, _ = await stack.call(
        other, "POST", "/api/archived-downloads", key=key, json={"torrent_id": 7, "hash": "e" * 40}
    )
    assert status == 200
    status, body, _ = await stack.call(one, "GET", "/api/archived-downloads", key=key)
    assert [row["torrent_id"] for row in body["data"]] == ["7"]
    status, body, _ = await stack.call(
        one, "POST", "/api/archived-downloads", key=key, json={"torrent_id": 7, "hash": "e" * 40}
    )
    assert status == 409
    # Both processes are healthy and report the same services.
    for base in (one, other):
        status, body, _ = await stack.call(base, "GET", "/api/backend/status")
        assert status == 200
        assert body["available"] is True


async def test_concurrent_calls_through_two_gateways(make_user: MakeUser) -> None:
    """Concurrent saves through two gateways leave one of the submitted lists, whole."""
    person = await make_user()
    stack = person.stack
    other = await stack.start_gateway("gateway-c")
    lists = [[rule(f"list{n}-{i}") for i in range(3)] for n in range(8)]
    replies = await asyncio.gather(
        *(
            stack.call(
                (stack.gw_url, other)[n % 2],
                "POST",
                "/api/automation/rules",
                key=person.key,
                json={"rules": rules},
            )
            for n, rules in enumerate(lists)
        )
    )
    assert all(status == 200 for status, _, _ in replies), replies
    final = [r["name"] for r in (await person.ok("GET", "/api/automation/rules"))["rules"]]
    assert final in [[r["name"] for r in rules] for rules in lists]


# Backends down -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_backend_down_is_503_json_not_a_traceback(user: User) -> None:
    """With its userstore and scheduler gone a gateway answers 503 JSON; status says unavailable."""
    stack = user.stack
    dead = f"127.0.0.1:{_closed_port()}"
    base = await stack.start_gateway(
        "gateway-orphan", USERSTORE_ADDRS=dead, SCHEDULER_ADDR=dead, GRPC_TIMEOUT_SECONDS="2"
    )
    body = assert_error(await stack.call(base, "GET", "/api/automation/rules", key=user.key), 503)
    assert body["code"] == "UNAVAILABLE"
    assert "Traceback" not in json.dumps(body)
    reply = await stack.call(base, "POST", "/api/backend/api-key/ensure-db", key=user.key)
    assert_error(reply, 503)
    status, body, _ = await stack.call(base, "GET", "/api/backend/status")
    assert status == 200
    assert body["available"] is False
    assert body["scheduler"] is None
    assert body["userstores"] == [None]
    # Not ready (nothing behind it works), but alive: restarting it would not help.
    status, body, _ = await stack.call(base, "GET", "/health")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert (await stack.call(base, "GET", "/live"))[0] == 200


# Secrets ----------------------------------------------------------------------------------------


async def test_no_api_key_in_any_log(make_user: MakeUser) -> None:
    """After a full session through every endpoint, no key used in this module is in any log."""
    person = await make_user(register=False)
    stack = person.stack
    key = person.key
    await person.ok("POST", "/api/backend/api-key/ensure-db")
    await stack.gw(
        "POST", "/api/backend/api-key/ensure-db", json={"apiKey": key, "authId": "0" * 64}
    )
    bearer = {"Authorization": f"Bearer {key}"}
    await stack.gw("GET", f"/api/automation/rules?apiKey={key}", headers=bearer)
    await stack.gw("GET", f"/api/nope/{key}", headers=bearer)
    await stack.gw("GET", "/api/automation/rules", headers={"x-api-key": key + " !"})
    saved = await person.ok("POST", "/api/automation/rules", json={"rules": [rule("session")]})
    rule_id = saved["rules"][0]["id"]
    for method, path in (
        ("GET", "/api/backend/status"),
        ("POST", "/api/activity"),
        ("GET", "/api/automation/rules"),
        ("GET", f"/api/automation/rules/{rule_id}"),
        ("PUT", f"/api/automation/rules/{rule_id}"),
        ("POST", f"/api/automation/rules/{rule_id}/run"),
        ("GET", f"/api/automation/rules/{rule_id}/logs"),
        ("DELETE", f"/api/automation/rules/{rule_id}/logs"),
        ("POST", "/api/automation/rules/preview"),
        ("GET", "/api/automation/presets"),
        ("GET", "/api/automation/torrents"),
        ("GET", f"/api/automation/torrents/{person.torrent_ids[0]}/events"),
        ("PUT", f"/api/automation/torrents/{person.torrent_ids[0]}/limits"),
        ("GET", "/api/archived-downloads"),
        ("POST", "/api/archived-downloads"),
        ("PUT", "/api/downloads/protect"),
        ("DELETE", f"/api/automation/rules/{rule_id}"),
    ):
        payload = {
            "PUT": {"enabled": True, "seed_ratio": 2, "download_ids": [1]},
            "POST": {**rule("p"), "torrent_id": 1, "hash": "f" * 40},
        }.get(method)
        status, body, _ = await person.call(method, path, json=payload)
        assert status < 500, (method, path, body)
    assert stack.http is not None
    async with stack.http.get(
        stack.gw_url + "/api/automation/events",
        headers={"x-api-key": key},
        timeout=aiohttp.ClientTimeout(total=None),
    ) as response:
        assert (await response.content.readline()).startswith(b": connected")
    await person.ok("DELETE", "/api/backend/api-key")
    await stack.gw("DELETE", "/api/backend/api-key", key=key)

    logs = stack.logs()
    assert stack.keys, "the module's users were recorded"
    leaked = [k for k in stack.keys if k in logs]
    assert leaked == [], f"API keys found in the logs: {len(leaked)}"
    assert key not in logs
