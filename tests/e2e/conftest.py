"""Fixtures for the end-to-end tests: a running stack in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The simulator and one userstore, scheduler and gateway, polling every second."""
    running = await Stack(tmp_path).start()
    try:
        yield running
    finally:
        await running.stop()
