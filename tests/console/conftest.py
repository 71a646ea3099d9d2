"""Browser fixtures: the system's Chromium driven by playwright, or a skip saying why."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.scenarios import REAL_TIME
from tests.e2e.stack import Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return (
            "Chromium is not installed (`apt-get install -y chromium`; .ci/run installs it): "
            "the console's browser tests are skipped"
        )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (`make install` installs it): browser tests skipped"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (the system's, no download)."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def live_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The real services on a simulator whose clock runs (torrents move, stall and seed)."""
    if missing() is not None:
        pytest.skip(missing() or "")
    running = await Stack(tmp_path, sim_args=REAL_TIME, env={"STALL_AFTER_MINUTES": "0.05"}).start()
    try:
        yield running
    finally:
        await running.stop()
