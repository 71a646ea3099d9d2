"""The console's files as served: no key, the console's CSP, a fixed set of names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import console
from gateway.middleware import error_mapping, response_headers

Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(aiohttp_client: Client) -> TestClient[Any, Any]:
    """The console's routes behind the gateway's error mapping and header hook."""
    app = web.Application(middlewares=[error_mapping])
    app.on_response_prepare.append(response_headers(()))
    app.router.add_routes(console.routes())
    return await aiohttp_client(app)


async def test_page_and_modules_are_served_without_a_key(client: TestClient[Any, Any]) -> None:
    """/ is the page; each module it loads answers with its type and the console's CSP."""
    page = await client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert '<script type="module" src="/console/app.js">' in html
    assert "http" not in html.replace('href="data:,"', "")  # nothing from another host
    csp = page.headers["Content-Security-Policy"]
    assert csp == console.CSP
    for part in ("default-src 'none'", "script-src 'self'", "connect-src 'self'"):
        assert part in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        asset = await client.get(f"/console/{name}")
        assert asset.status == 200
        assert asset.content_type == kind
        assert asset.headers["Content-Security-Policy"] == console.CSP


@pytest.mark.parametrize("name", ["nope.js", "..%2Fconsole.py", "%2E%2E%2F__init__.py"])
async def test_other_names_are_404_in_the_api_shape(
    client: TestClient[Any, Any], name: str
) -> None:
    """Only the files in the console folder are served; the path is never echoed."""
    reply = await client.get(f"/console/{name}")
    assert reply.status == 404
    body = await reply.json()
    assert body["success"] is False
    assert body["code"] == "ENDPOINT_NOT_FOUND"


def test_modules_make_no_request_elsewhere() -> None:
    """No module names another host (no CDN, no web fonts): every fetch is a path on this one."""
    for name, (content, _) in console.FILES.items():
        text = content.decode()
        assert "://" not in text.replace("http://www.w3.org/2000/svg", ""), name
