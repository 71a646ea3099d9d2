"""Fixtures: one real stack per test module, and fresh simulated users per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from tests.gateway.support import GENEROUS_LIMITS, GatewayStack, User, new_user

MakeUser = Callable[..., Awaitable[User]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[GatewayStack]:
    """Simulator, userstore, scheduler and gateway as processes (env from a module's STACK_ENV)."""
    env = {**GENEROUS_LIMITS, **getattr(request.module, "STACK_ENV", {})}
    running = GatewayStack(tmp_path_factory.mktemp("stack"), env=env)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def make_user(stack: GatewayStack) -> AsyncIterator[MakeUser]:
    """A factory of fresh users; each registered one removes its key afterwards (polls stop)."""
    made: list[User] = []

    async def make(*, register: bool = True, **spec: Any) -> User:
        user = await new_user(stack, register=register, **spec)
        made.append(user)
        return user

    yield make
    for user in made:
        await user.call("DELETE", "/api/backend/api-key")


@pytest_asyncio.fixture(loop_scope="module")
async def user(make_user: MakeUser) -> User:
    """One fresh registered user with two seeding torrents and one downloading."""
    return await make_user()
