"""`make demo` works: every preset acts on the demo users within the run, and it exits cleanly."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytestmark = pytest.mark.e2e


async def test_demo_shows_every_preset_acting() -> None:
    """A short demo run prints actions by all three presets, each with its reason."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.demo",
        "--seconds",
        "120",
        "--fast",
        "--until-actions",
        "5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    text = output.decode()
    assert process.returncode == 0, text
    actions = [line for line in text.splitlines() if "ACTION" in line]
    assert any(
        "stop_seeding 'Big.Buck.Bunny.2008.1080p' by rule 'Stop seeding at ratio 1': done" in a
        for a in actions
    ), text
    assert any(
        "archive 'Obscure.Documentary.1987.DVDRip'" in a and ": done" in a for a in actions
    ), text
    assert any("Stop seeding after 8 s of seeding" in a for a in actions), text
    assert text.count("because ") >= len(actions)
    assert "Traceback" not in text
