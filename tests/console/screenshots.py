"""Regenerate the console's screenshots in docs/ (`make screenshots` or this module).

    .venv/bin/python -m tests.console.screenshots [--out DIR]

Starts the real services on a simulated TorBox whose clock runs (as the browser tests do), makes
one account with downloading, seeding, stalled and queued torrents and two rules, waits until
there is something to see (a rule acted, a download has a chart, a runaway rule was held), and
photographs each view with the system's Chromium: sign-in, torrents with a tooltip, one torrent,
rules, the rule editor with its preview, health, and the torrents on a phone-sized screen.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.console.conftest import CHROMIUM, missing
from tests.console.test_browser import EVERYTHING, STALLED, rule, save_rules
from tests.e2e.scenarios import REAL_TIME, torrents
from tests.e2e.stack import Stack, eventually

DOCS = Path(__file__).resolve().parents[2] / "docs"
WAIT = 60.0  # seconds: how long the account may take to show each thing photographed
DESKTOP = (1280, 760)
PHONE = (390, 800)


async def _acted(stack: Stack, key: str) -> bool:
    """A rule has acted on some torrent (so a tooltip has something to say)."""
    return any(t["last_action"] for t in (await torrents(stack, key))["torrents"])


async def _charted(stack: Stack, key: str) -> int | None:
    """A downloading torrent whose history has two speed samples (its chart draws), or None."""
    for t in (await torrents(stack, key))["torrents"]:
        if t["status"] != "downloading" or t["queued"]:
            continue
        status, body, _ = await stack.gw(
            "GET", f"/api/automation/torrents/{t['torrent_id']}/history", key=key
        )
        speeds = [s for s in body.get("samples", []) if s["download_speed"] is not None]
        if status == 200 and len(speeds) >= 2:
            torrent_id: int = t["torrent_id"]
            return torrent_id
    return None


async def _held(stack: Stack, key: str) -> bool:
    """The runaway rule's deletes were held (the health view has a why to show)."""
    status, body, _ = await stack.gw("GET", "/api/automation/account/events", key=key)
    return status == 200 and any(e["type"] == "AUTOMATION_HELD" for e in body["events"])


async def shoot(out: Path) -> list[Path]:
    """Take every screenshot into `out`; returns the files written."""
    from playwright.async_api import async_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    async def snap(page: Any, name: str, *, full_page: bool = False, hover: bool = False) -> None:
        path = out / f"console-{name}.png"
        if not hover:
            await page.mouse.move(0, 0)  # no tooltip or hover state left from the last view
        await page.evaluate("document.getElementById('toast').hidden = true")  # live notices
        await page.screenshot(path=path, full_page=full_page)
        written.append(path)

    with tempfile.TemporaryDirectory() as root:
        stack = Stack(Path(root), sim_args=REAL_TIME, env={"STALL_AFTER_MINUTES": "0.05"})
        await stack.start()
        try:
            account = await stack.account(
                mix={"downloading": 2, "seeding": 3, "stalled": 2, "queued": 1}
            )
            key = account["api_key"]
            await stack.register(key)
            rules = [
                rule("Reannounce stalled", [STALLED], "reannounce"),
                {
                    **rule(
                        "Stop seeding at ratio 5",
                        [{"type": "RATIO", "operator": "gte", "value": 5}],
                        "stop_seeding",
                    ),
                    "enabled": False,
                },
            ]
            await save_rules(stack, key, rules)
            await eventually(lambda: _acted(stack, key), timeout=WAIT, what="a rule to act")
            charted = await eventually(
                lambda: _charted(stack, key), timeout=WAIT, what="a download with a chart"
            )

            async with async_playwright() as driver:
                browser = await driver.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await browser.new_page(viewport={"width": DESKTOP[0], "height": DESKTOP[1]})
                page.set_default_timeout(WAIT * 1000)
                await page.goto(stack.gw_url + "/")
                await snap(page, "signin")
                await page.fill("#key", key)
                await page.click("button[type=submit]")
                await page.wait_for_selector("#torrents tbody tr")
                await page.locator("button.last-action").first.hover()
                await page.wait_for_selector("#tooltip", state="visible")
                await snap(page, "torrents", hover=True)

                await page.goto(f"{stack.gw_url}/#/torrents/{charted}")
                await page.locator("#charts svg path.down").first.wait_for(state="attached")
                await snap(page, "detail", full_page=True)

                await page.goto(stack.gw_url + "/#/rules")
                await page.wait_for_selector("#rules")
                await snap(page, "rules")
                await page.click("#presets a:has-text('stalled')")
                await page.fill("#rule-form .c-value >> nth=0", "0")
                await page.click("#preview-rule")
                await page.wait_for_selector("#preview")
                await snap(page, "rule-editor", full_page=True)

                phone = await browser.new_page(
                    viewport={"width": PHONE[0], "height": PHONE[1]}, device_scale_factor=1
                )
                phone.set_default_timeout(WAIT * 1000)
                await phone.goto(stack.gw_url + "/")
                await phone.evaluate(f"sessionStorage.setItem('torbox-automation.apiKey', {key!r})")
                await phone.goto(stack.gw_url + "/#/torrents")
                await phone.reload()
                await phone.wait_for_selector("#torrents tbody tr")
                await snap(phone, "phone")

                # A runaway rule (delete everything) that the safety cap holds, for the health view.
                await save_rules(
                    stack, key, [*rules, rule("Delete everything", [EVERYTHING], "delete")]
                )
                await eventually(lambda: _held(stack, key), timeout=WAIT, what="a held action")
                await page.goto(stack.gw_url + "/#/health")
                await page.locator("#holds li").first.wait_for()
                await snap(page, "health", full_page=True)

                await browser.close()
        finally:
            await stack.stop()
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, take the screenshots, list the files written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder to write (default: docs/)")
    args = parser.parse_args(argv)
    reason = missing()
    if reason is not None:
        sys.stderr.write(reason + "\n")
        return 1
    for path in asyncio.run(shoot(args.out)):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
