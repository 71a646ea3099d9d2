"""The server's stream wrapper: a stream closed from another context ends quietly."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

from common.grpc_server import _wrap_stream
from common.logs import request_id


async def test_a_stream_closed_from_another_context_ends_without_an_error() -> None:
    """At shutdown or a client's cancel, the event loop closes a stream's generator in a task of
    its own: the request id is not reset there (its token belongs to the RPC's context), and
    closing raises nothing, which asyncio would log as "Task exception was never retrieved"."""

    async def answers(_request: Any, _context: Any) -> AsyncIterator[int]:
        assert request_id.get() == "rid-1"
        yield 1
        yield 2

    stream = _wrap_stream(answers, "rid-1", None)(None, None)
    assert await stream.__anext__() == 1
    assert request_id.get() == "rid-1"
    closing = asyncio.get_running_loop().create_task(stream.aclose(), context=contextvars.Context())
    await closing  # raised ValueError ("created in a different Context") before
    assert closing.exception() is None
