"""The web console's static files: a page and its ES modules, served under / without a key.

The files live in ``gateway/console/`` (package data, no build step) and are read once, at import:
a fixed table of names, so no request path ever reaches the file system. Each answer carries the
console's own Content-Security-Policy (scripts, styles and requests from this origin only; no
inline code, no frames, no other hosts), replacing the API's ``default-src 'none'``.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

FOLDER = Path(__file__).with_name("console")
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


def _load() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(FOLDER.iterdir()):
        kind = TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            files[path.name] = (path.read_bytes(), kind)
    return files


FILES = _load()


def _file(name: str) -> web.Response:
    found = FILES.get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, kind = found
    return web.Response(
        body=body,
        content_type=kind,
        charset="utf-8",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
    )


async def page(request: web.Request) -> web.Response:
    """GET /: the console's single page."""
    return _file("index.html")


async def asset(request: web.Request) -> web.Response:
    """GET /console/{name}: one of the console's files (404 for any other name)."""
    return _file(request.match_info["name"])


def routes() -> list[web.RouteDef]:
    """The console's routes (not part of the REST API: no key, no envelope, not in OpenAPI)."""
    return [web.get("/", page), web.get("/console/{name}", asset)]
