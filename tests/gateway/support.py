"""Helpers for the gateway's contract tests: a stack that remembers keys, fresh users, checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.auth import auth_id_for
from common.processes import ManagedProcess
from tests.e2e.stack import Stack

# The module stacks' gateways must not rate-limit the tests themselves.
GENEROUS_LIMITS = {
    "RATE_LIMIT_PER_MINUTE": "6000000",
    "RATE_LIMIT_BURST": "1000000",
    "ADDRESS_RATE_LIMIT_PER_MINUTE": "6000000",
    "ADDRESS_RATE_LIMIT_BURST": "1000000",
}
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
Reply = tuple[int, Any, dict[str, str]]


class Headers(dict[str, str]):
    """Response headers looked up without regard to case, as HTTP means them."""

    def __init__(self, raw: dict[str, str]) -> None:
        super().__init__((name.lower(), value) for name, value in raw.items())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class GatewayStack(Stack):
    """A Stack that also runs extra gateways and remembers every API key a test used."""

    def __init__(self, root: Path, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.keys: set[str] = set()
        self.extra: list[ManagedProcess] = []

    async def start_gateway(self, name: str, **env: str) -> str:
        """Another gateway process on the same userstores and scheduler; returns its base URL."""
        process = ManagedProcess(
            name,
            "gateway",
            {
                **self.env,
                "PORT": "0",
                "USERSTORE_ADDRS": ",".join(self.userstore_addrs),
                "SCHEDULER_ADDR": ",".join(self.scheduler_addr(i) for i in range(self.schedulers)),
                **env,
            },
        )
        self.extra.append(process)
        return f"http://127.0.0.1:{await process.start()}"

    async def stop(self) -> dict[str, int]:
        """Stop the extra gateways, then everything else."""
        codes = {p.name: await p.stop() for p in self.extra}
        return {**codes, **await super().stop()}

    def logs(self) -> str:
        """Every process's output, the extra gateways included."""
        extra = [f"----- {p.name}\n{p.output()}" for p in self.extra]
        return "\n".join([super().logs(), *extra])

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        """One HTTP call, its headers readable in any case."""
        status, body, headers = await super().request(method, url, **kwargs)
        return status, body, Headers(headers)

    async def call(self, base: str, method: str, path: str, **kwargs: Any) -> Reply:
        """Call any gateway of the stack by its base URL."""
        return await self.request(method, base + path, **kwargs)


@dataclass
class User:
    """A simulated TorBox account (registered or not) and the stack it lives on."""

    stack: GatewayStack
    key: str
    torrent_ids: list[int]
    queued_ids: list[int] = field(default_factory=list)

    @property
    def auth_id(self) -> str:
        """sha256 hex of the key."""
        return auth_id_for(self.key)

    async def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        """Call the stack's gateway with this user's key in x-api-key."""
        return await self.stack.gw(method, path, key=self.key, **kwargs)

    async def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Call and expect a 200 with success true; returns the body."""
        status, body, _ = await self.call(method, path, **kwargs)
        assert status == 200, (method, path, status, body)
        assert body["success"] is True, body
        result: dict[str, Any] = body
        return result


async def new_user(stack: GatewayStack, *, register: bool = True, **spec: Any) -> User:
    """A fresh simulated account (default: two seeding, one downloading), registered by default."""
    account = await stack.account(**(spec or {"mix": {"seeding": 2, "downloading": 1}}))
    user = User(stack, account["api_key"], account["torrent_ids"], account["queued_ids"])
    stack.keys.add(user.key)
    if register:
        await stack.register(user.key)
    return user


def assert_error(
    reply: Reply, status: int, *, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The reply is the contract's error: this status, {success: false, error, code}, a field."""
    got, body, headers = reply
    assert got == status, (got, body)
    assert isinstance(body, dict), body
    assert body["success"] is False, body
    assert isinstance(body["error"], str), body
    assert body["error"], body
    assert isinstance(body["code"], str), body
    assert body["code"], body
    assert "Traceback" not in body["error"], body
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    if code is not None:
        assert body["code"] == code, body
    if status == 400:
        assert isinstance(body.get("field"), str), body
        assert body["field"], body
    if field is not None:
        assert body.get("field") == field, body
    return body


def assert_iso(value: Any) -> datetime:
    """An ISO-8601 UTC timestamp with a Z, as the contract promises; returns it parsed."""
    assert isinstance(value, str), value
    assert ISO_Z.fullmatch(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rule(name: str = "Stop seeding at ratio 1", **overrides: Any) -> dict[str, Any]:
    """A rule as TBM's editor writes it; disabled, so only manual runs evaluate it (no races)."""
    doc: dict[str, Any] = {
        "name": name,
        "enabled": False,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 30},
        "logicOperator": "and",
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "RATIO", "operator": "gte", "value": 1}],
            }
        ],
        "action": {"type": "stop_seeding"},
    }
    doc.update(overrides)
    return doc
