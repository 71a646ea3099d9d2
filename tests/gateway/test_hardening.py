"""Issue 20's security probe kept: malformed requests, timeouts, limits, declared auth ids."""

from __future__ import annotations

import asyncio
import json
import secrets
import stat
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import eventually
from tests.gateway.conftest import MakeUser
from tests.gateway.support import GatewayStack, User, assert_error, rule

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
# Bounds a test waits before calling a connection "left open"; the gateways under test use 1 s.
LEFT_OPEN = 30.0


async def exchange(base: str, data: bytes, *, wait: float = LEFT_OPEN) -> bytes:
    """Send raw bytes and read until the server closes (b"" if it closed without answering)."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in a byte stream: (status, headers in lower case, body)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return found


def malformed(key: str) -> list[bytes]:
    """Requests aiohttp's parser refuses, each carrying the key where a log might quote it."""
    k = key.encode()
    get = b"GET /api/automation/rules HTTP/1.1\r\nHost: gw\r\n"
    return [
        get + b"x-api-key: " + k + b"\x00\r\n\r\n",
        get + b"x-api-key: " + k + b"\x7f\r\n\r\n",
        get + b"x-api-key: \x01" + k + b"\r\n\r\n",
        get + b"Authorization: Bearer " + k + b"\x00\r\n\r\n",
        get + b"x-auth-id: " + k + b"\x7f\r\n\r\n",
        get + b"x-api\x00key: " + k + b"\r\n\r\n",
        get + b"x-api-key " + k + b"\x00\r\n\r\n",
        get + b"x-api-key: " + k + b"\r\n \x00folded\r\n\r\n",
        get + b"x-api-key: " + k + b"x" * 9000 + b"\r\n\r\n",
        get + b"x-api-key: " + k + b"\r\nContent-Length: -" + k + b"\r\n\r\n",
        b"GET /api/automation/rules?apiKey=" + k + b"\x00 HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /" + k + b"\x7f HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"G\x00T /" + k + b" HTTP/1.1\r\nHost: gw\r\n\r\n",
        # A good request, then a bad one on the same connection.
        get + b"x-api-key: " + k + b"\r\n\r\n" + get + b"x-api-key: " + k + b"\x00\r\n\r\n",
    ]


async def test_malformed_headers_never_leak_the_key(user: User) -> None:
    """Every answer is our JSON error shape and neither an answer nor any log line has the key."""
    stack = user.stack
    bodies: list[bytes] = []
    for request in malformed(user.key):
        raw = await exchange(stack.gw_url, request)
        replies = answers(raw)
        assert replies, request[:60]
        for status, headers, body in replies:
            bodies.append(raw)
            assert headers.get("content-type", "").startswith("application/json"), raw[:300]
            parsed = json.loads(body)
            assert parsed["success"] is (status == 200), parsed
            if status != 200:
                assert set(parsed) == {"success", "error", "code"}, parsed
                assert 400 <= status < 500, (status, parsed)
    await user.ok("GET", "/api/automation/rules")  # the gateway still serves
    leaked = [raw[:200] for raw in bodies if user.key.encode() in raw]
    assert not leaked, leaked
    logs = stack.logs()
    assert user.key not in logs
    assert "Traceback" not in logs


async def test_404_never_echoes_the_path(user: User) -> None:
    """A key pasted into a URL does not come back in the 404."""
    status, body, _ = await user.call("GET", f"/api/nope/{user.key}")
    assert status == 404
    assert user.key not in json.dumps(body)
    assert set(body) == {"success", "error", "code"}


async def test_hang_up_mid_body_is_one_quiet_line(user: User) -> None:
    """A client that closes mid-body leaves its access line (499) and no traceback or ERROR."""
    stack = user.stack
    assert stack.gateway is not None
    gateway = stack.gateway
    before = len(gateway.lines)
    head = (
        b"POST /api/automation/rules HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"x-api-key: " + user.key.encode() + b"\r\nContent-Length: 5000\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    url = urlsplit(stack.gw_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head)
    # "100 Continue" comes once the app has the request: the hang-up is then surely mid-body.
    assert b" 100 " in await asyncio.wait_for(reader.readline(), LEFT_OPEN)
    writer.write(b'{"rules": [')
    await writer.drain()
    writer.close()

    def new_lines() -> list[str]:
        return gateway.lines[before:]

    async def logged() -> bool:
        return any("POST /api/automation/rules " in line for line in new_lines())

    await eventually(logged)
    lines = new_lines()
    assert any("POST /api/automation/rules 499" in line for line in lines), lines
    assert not [line for line in lines if "Traceback" in line or '"ERROR"' in line], lines
    assert all(len(line) < 400 for line in lines), lines


# Read timeouts -----------------------------------------------------------------------------------


async def test_half_sent_request_head_is_closed(stack: GatewayStack) -> None:
    """A request head that never completes (even trickling) is closed after HEADER_TIMEOUT."""
    base = await stack.start_gateway("gateway-head-timeout", HEADER_TIMEOUT_SECONDS="1")
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(b"GET /api/automation/rules HTTP/1.1\r\nHost: gw\r\n")
        for _ in range(3):
            await asyncio.sleep(0.2)
            writer.write(b"x-a: b\r\n")
        assert await asyncio.wait_for(reader.read(), LEFT_OPEN) == b""
    finally:
        writer.close()


async def test_half_sent_body_is_408_then_closed(user: User) -> None:
    """A body that stops arriving gets a JSON 408 and the connection is closed."""
    base = await user.stack.start_gateway("gateway-body-timeout", BODY_TIMEOUT_SECONDS="1")
    head = (
        b"POST /api/automation/rules HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"x-api-key: " + user.key.encode() + b"\r\nContent-Length: 5000\r\n\r\n"
    )
    replies = answers(await exchange(base, head + b'{"rules": ['))
    assert len(replies) == 1
    status, headers, body = replies[0]
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["code"] == "BODY_TIMEOUT"


# Declared auth ids -------------------------------------------------------------------------------


async def test_conflicting_auth_id_declarations_are_refused(user: User) -> None:
    """The right authId in one place does not excuse another one elsewhere."""
    other = "0" * 64
    own = user.auth_id
    for query, header, body in (
        (own, other, None),
        (other, own, None),
        (own, None, other),
        (None, own, other),
        (None, other, own),
    ):
        path = "/api/automation/rules/preview" + (f"?authId={query}" if query else "")
        headers = {"x-auth-id": header} if header else {}
        payload: dict[str, Any] = {**rule("p"), **({"authId": body} if body else {})}
        reply = await user.call("POST", path, json=payload, headers=headers)
        assert_error(reply, 403, code="AUTH_ID_MISMATCH")
    status, _, _ = await user.call(
        "POST",
        f"/api/automation/rules/preview?authId={own}",
        json={**rule("p"), "authId": own},
        headers={"x-auth-id": own},
    )
    assert status == 200


# Rate limit by address ---------------------------------------------------------------------------


async def test_random_keys_are_limited_by_address(make_user: MakeUser) -> None:
    """Unknown keys draw on the client address's budget; a known user keeps being served."""
    known = await make_user()
    stack = known.stack
    base = await stack.start_gateway(
        "gateway-address-limit", ADDRESS_RATE_LIMIT_PER_MINUTE="1", ADDRESS_RATE_LIMIT_BURST="5"
    )
    assert (await stack.call(base, "GET", "/api/automation/rules", key=known.key))[0] == 200
    statuses = []
    for _ in range(20):
        key = secrets.token_hex(16)
        statuses.append((await stack.call(base, "GET", "/api/automation/rules", key=key))[0])
    assert statuses.count(429) >= 14, statuses
    assert statuses[:5] == [404] * 5, statuses
    missing = await stack.call(base, "GET", "/api/automation/rules")
    assert_error(missing, 429, code="RATE_LIMITED")
    # A user this gateway has served before is not held back by others' failures.
    assert (await stack.call(base, "GET", "/api/automation/rules", key=known.key))[0] == 200


# Rule metadata -----------------------------------------------------------------------------------


async def test_oversized_rule_metadata_is_a_400_naming_the_field(user: User) -> None:
    """Through REST: a rule's metadata over its bound is refused by field; the rule is kept."""
    saved = await user.ok("POST", "/api/automation/rules", json={"rules": [rule("meta")]})
    rule_id = saved["rules"][0]["id"]
    big = {"note": "x" * 20_000}
    reply = await user.call("PUT", f"/api/automation/rules/{rule_id}", json={"metadata": big})
    assert_error(reply, 400, field="metadata")
    reply = await user.call(
        "POST", "/api/automation/rules", json={"rules": [rule("meta", metadata=big)]}
    )
    assert_error(reply, 400, field="rules[0].metadata")
    listed = await user.ok("GET", "/api/automation/rules")
    assert [r["id"] for r in listed["rules"]] == [rule_id]


# Files at rest -----------------------------------------------------------------------------------


async def test_data_and_key_files_are_private(user: User) -> None:
    """Everything the services wrote (registry, user databases, journals, key) is 0600 in 0700."""
    stack = user.stack
    await user.ok("POST", "/api/automation/rules", json={"rules": [rule("files")]})
    written = [stack.root / "shard0", stack.root / "encryption.key"]
    found = [p for top in written for p in (top, *top.rglob("*"))]
    assert any(p.name.startswith("user_") for p in found), found
    assert any(p.name == "master.sqlite-wal" for p in found), found
    modes = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in found if p.exists()}
    expected = {str(p): oct(0o700 if p.is_dir() else 0o600) for p in found if p.exists()}
    assert modes == expected
