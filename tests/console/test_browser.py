"""The web console in headless Chromium against the real services and the simulated TorBox.

Sign in, the torrents with their derived status, the last action's tooltip (rule and each
condition's value against its threshold), a rule toggled, a destructive rule previewed and saved
after confirming, and a live update arriving from the event stream without a reload.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.scenarios import torrents
from tests.e2e.stack import Stack, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 20_000  # ms: what the browser waits for an element at most


STALLED = {"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 0.01}
EVERYTHING = {"type": "NAME", "operator": "matches", "value": "."}


def shown(value: Any) -> str:
    """A value as the console shows it (three decimals at most, no trailing .0, a lower bound)."""
    if isinstance(value, dict):
        return f"at least {shown(value['at_least'])}"
    rounded = math.floor(value * 1000 + 0.5) / 1000
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def rule(name: str, conditions: list[dict[str, Any]], action: str) -> dict[str, Any]:
    """An enabled rule in TBM's format evaluated on every poll."""
    return {
        "name": name,
        "enabled": True,
        "trigger": {"type": "interval", "value": 0},
        "groups": [{"logicOperator": "and", "conditions": conditions}],
        "action": {"type": action},
    }


async def save_rules(stack: Stack, key: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace the user's rules over REST; returns them as saved."""
    status, body, _ = await stack.gw(
        "POST", "/api/automation/rules", key=key, json={"rules": rules}
    )
    assert status == 200, body
    saved: list[dict[str, Any]] = body["rules"]
    return saved


async def signed_in(browser: Any, stack: Stack, key: str) -> tuple[Any, set[str]]:
    """A page signed in with `key`, and the set of hosts it has requested (filled as it goes)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT)
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(stack.gw_url + "/")
    await page.fill("#key", key)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#torrents tbody tr")
    assert errors == []
    return page, hosts


async def test_sign_in_status_tooltip_and_live_update(browser: Any, live_stack: Stack) -> None:
    """The torrents page: derived status, the why of the last action, a new torrent live."""
    stack = live_stack
    account = await stack.account(mix={"seeding": 2, "stalled": 1, "downloading": 1})
    key = account["api_key"]
    await stack.register(key)
    await save_rules(
        stack,
        key,
        [rule("Stall check", [STALLED], "reannounce")],
    )

    async def acted() -> bool:
        listed = (await torrents(stack, key))["torrents"]
        return any(t["last_action"] for t in listed)

    await eventually(acted, timeout=30, what="the rule to act")

    # A refused key gets a clear message and no session.
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT)
    response = await page.goto(stack.gw_url + "/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    await page.fill("#key", "not-a-real-key-0123456789")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#signin-error:has-text('TorBox refused')")
    assert await page.evaluate("sessionStorage.length") == 0
    await page.close()

    page, hosts = await signed_in(browser, stack, key)
    assert await page.evaluate("Object.values(sessionStorage)") == [key]
    table = page.locator("#torrents")
    await table.locator("td:has-text('of real seeding time')").first.wait_for()
    await table.locator("td:has-text('stalled for')").first.wait_for()

    # Hover the last action of a torrent the rule acted on: rule, outcome, value vs threshold.
    button = table.locator("button.last-action").first
    await button.hover()
    tooltip = page.locator("#tooltip")
    await tooltip.wait_for(state="visible")
    text = await tooltip.inner_text()
    assert "Stall check" in text
    assert "reannounce" in text
    assert "DOWNLOAD_STALLED_TIME" in text
    assert "> 0.01" in text
    assert "match" in text
    acted_on = [t for t in (await torrents(stack, key))["torrents"] if t["last_action"]]
    seen = {shown(c["value"]) for t in acted_on for c in t["last_action"]["reason"]}
    assert any(value in text for value in seen), (text, seen)
    # Keyboard users get the same tooltip on focus, and Escape hides it.
    await page.mouse.move(0, 0)
    await button.focus()
    await tooltip.wait_for(state="visible")
    await page.keyboard.press("Escape")
    await tooltip.wait_for(state="hidden")

    # Filter by "matched by rule": only the torrents the rule acted on remain.
    await page.select_option("#f-rule", label="matched by Stall check")
    assert await table.locator("tbody tr").count() == len(acted_on)
    await page.select_option("#f-rule", value="")

    # A live update: a torrent added on TorBox appears without a reload.
    await page.evaluate("window.__sameDocument = true")
    added = await stack.sim(
        "POST", f"/_sim/accounts/{key}/torrents", json={"profile": "downloading"}
    )
    await page.locator(f"tr[data-torrent='{added['torrent_id']}']").wait_for()
    assert await page.evaluate("window.__sameDocument") is True
    assert await page.locator("#live").inner_text() == "live"

    # The detail view: facts, transfer chart and event timeline.
    await page.click(f"tr[data-torrent='{acted_on[0]['torrent_id']}'] td.name a")
    await page.locator("#timeline li").first.wait_for()
    assert await page.locator("#charts > *").count() == 2
    # A download's chart draws its bytes once two samples are kept (the view follows the stream).
    await page.goto(f"{stack.gw_url}/#/torrents/{added['torrent_id']}")
    await page.locator("#charts svg path.down").first.wait_for(state="attached")
    # Live redraws replace only what changed, in place: the reader keeps their place.
    await page.set_viewport_size({"width": 1280, "height": 400})
    await page.evaluate("document.getElementById('charts').scrollIntoView()")
    place = await page.evaluate("window.scrollY")
    assert place > 0
    await page.evaluate(
        "document.querySelector('main h1').dataset.kept = 'yes';"
        "document.getElementById('facts').dataset.old = 'yes'"
    )
    await page.wait_for_function("() => !document.getElementById('facts').dataset.old")
    assert await page.evaluate("window.scrollY") == place
    assert await page.evaluate("document.querySelector('main h1').dataset.kept") == "yes"

    assert hosts == {urlsplit(stack.gw_url).netloc}, hosts  # no CDN, no fonts, nothing else
    await page.close()


async def test_rules_toggle_preview_and_save(browser: Any, live_stack: Stack) -> None:
    """Toggle a rule off; preview a destructive preset, confirm, save; REST sees both."""
    stack = live_stack
    account = await stack.account(mix={"seeding": 1, "stalled": 2})
    key = account["api_key"]
    await stack.register(key)
    saved = await save_rules(
        stack,
        key,
        [rule("Ratio check", [{"type": "RATIO", "operator": "gte", "value": 100}], "stop_seeding")],
    )

    async def stalled() -> bool:
        # Seen stalled by two polls: a stall's length is known (greater than 0) only from the
        # second poll on, and the preview below counts on it.
        listed = (await torrents(stack, key))["torrents"]
        return sum(1 for t in listed if (t["stalled_since"] or "~") < t["last_seen_at"]) == 2

    await eventually(stalled, timeout=30, what="two torrents seen stalled by two polls")
    page, _ = await signed_in(browser, stack, key)

    await page.click("a[data-nav=rules]")
    toggle = page.locator(f"#enable-{saved[0]['id']}")
    assert await toggle.is_checked()
    await toggle.uncheck()
    await page.locator("#toast:has-text('Ratio check disabled')").wait_for()
    status, body, _ = await stack.gw("GET", f"/api/automation/rules/{saved[0]['id']}", key=key)
    assert status == 200
    assert body["rule"]["enabled"] is False

    # A preset one click away: archive stalled downloads, shortened, enabled.
    await page.click("#presets a:has-text('stalled')")
    await page.fill("#rule-name", "Archive stalled")
    await page.fill("#rule-form .c-value >> nth=0", "0")
    await page.check("#rule-enabled")
    await page.fill("#rule-interval", "0")
    await page.click("#preview-rule")
    preview = page.locator("#preview-box")
    await preview.locator("text=would archive 2 torrents").wait_for()
    names = [t["name"] for t in (await torrents(stack, key))["torrents"] if t["stalled_since"]]
    for name in names:
        assert name in await preview.inner_text()

    # The raw JSON view shows the same rule; saving asks first, then saves.
    await page.click("#tab-json")
    document = await page.locator("#rule-json").input_value()
    assert '"Archive stalled"' in document
    assert '"archive"' in document
    await page.click("#save-rule")
    dialog = page.locator("#confirm")
    await dialog.locator("text=would archive 2 torrents").wait_for()
    await page.click("#confirm-cancel")
    await dialog.wait_for(state="detached")
    listed = (await stack.gw("GET", "/api/automation/rules", key=key))[1]["rules"]
    assert [r["name"] for r in listed] == ["Ratio check"]  # cancelled: nothing saved
    await page.click("#save-rule")
    await page.click("#confirm-ok")
    await page.locator("#rules").wait_for()
    status, body, _ = await stack.gw("GET", "/api/automation/rules", key=key)
    rules = {r["name"]: r for r in body["rules"]}
    assert set(rules) == {"Ratio check", "Archive stalled"}
    assert rules["Archive stalled"]["enabled"] is True
    assert rules["Archive stalled"]["action"]["type"] == "archive"
    assert rules["Ratio check"]["enabled"] is False

    # Deleting asks in the console's own dialog (never the browser's confirm()).
    native: list[str] = []
    page.on("dialog", lambda d: native.append(d.message))
    ratio_row = page.locator(f"tr[data-rule='{rules['Ratio check']['id']}']")
    await ratio_row.locator("button:has-text('Delete')").click()
    await dialog.locator("text=cannot be undone").wait_for()
    await page.click("#confirm-cancel")
    await dialog.wait_for(state="detached")
    status, body, _ = await stack.gw("GET", "/api/automation/rules", key=key)
    assert {r["name"] for r in body["rules"]} == {"Ratio check", "Archive stalled"}
    await ratio_row.locator("button:has-text('Delete')").click()
    await page.click("#confirm-ok")
    await page.locator("#toast:has-text('Ratio check deleted')").wait_for()
    status, body, _ = await stack.gw("GET", "/api/automation/rules", key=key)
    assert [r["name"] for r in body["rules"]] == ["Archive stalled"]
    assert native == []
    await page.close()


async def test_health_shows_next_poll_and_held_actions_with_why(
    browser: Any, live_stack: Stack
) -> None:
    """The health view: key health, the scheduler's next poll, and a held delete with its why."""
    stack = live_stack
    account = await stack.account(mix={"seeding": 4})
    key = account["api_key"]
    await stack.register(key)
    await save_rules(stack, key, [rule("Delete everything", [EVERYTHING], "delete")])

    async def held() -> list[dict[str, Any]] | None:
        status, body, _ = await stack.gw("GET", "/api/automation/account/events", key=key)
        assert status == 200, body
        return [e for e in body["events"] if e["type"] == "AUTOMATION_HELD"] or None

    reason = (await eventually(held, timeout=30, what="an AUTOMATION_HELD event"))[0]["data"][
        "reason"
    ]
    page, _ = await signed_in(browser, stack, key)
    await page.click("a[data-nav=health]")
    await page.locator("#health").wait_for()

    next_poll = page.locator("#next-poll")
    await next_poll.wait_for()
    text = await next_poll.inner_text()
    assert "unknown" not in text, text
    assert "in " in text or "due now" in text, text
    assert "every 1 s" in text, text
    assert "healthy" in await page.locator("#key-health").inner_text()

    holds = page.locator("#holds")
    await holds.locator("li").first.wait_for()
    shown_text = await holds.inner_text()
    assert f"Why: {reason}" in shown_text, shown_text
    assert "Delete everything → delete" in shown_text
    names = {t["name"] for t in (await torrents(stack, key))["torrents"]}
    assert any(name in shown_text for name in names), (shown_text, names)
    # Held, so nothing was deleted: every torrent is still listed.
    assert len(names) == 4
    await page.close()
