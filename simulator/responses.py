"""Every response shape TorBox produces: the envelope, FastAPI errors, 429s and gateway pages."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence

from aiohttp import web

JSON_TYPE = "application/json"


def dumps(value: object) -> str:
    """Compact JSON, the way TorBox sends it."""
    return json.dumps(value, separators=(",", ":"))


def json_response(value: object, status: int = 200) -> web.Response:
    """A plain JSON body (used by the admin API and by FastAPI-style errors)."""
    return web.Response(text=dumps(value), status=status, content_type=JSON_TYPE)


def envelope(
    data: object = None,
    *,
    detail: str,
    status: int = 200,
    success: bool = True,
    error: str | None = None,
) -> web.Response:
    """TorBox's standard {success, error, detail, data} body."""
    body = {"success": success, "error": error, "detail": detail, "data": data}
    return json_response(body, status)


def raw_envelope(data_json: str, detail: str) -> web.Response:
    """A success envelope around data that is already JSON text (the fast mylist path)."""
    head = '{"success":true,"error":null,"detail":' + json.dumps(detail) + ',"data":'
    return web.Response(body=(head + data_json + "}").encode(), content_type=JSON_TYPE)


def failure(status: int, error: str, detail: str, data: object = None) -> web.Response:
    """A TorBox business or auth error: success false with a machine code."""
    return envelope(data, detail=detail, status=status, success=False, error=error)


def no_auth() -> web.Response:
    """No bearer token at all."""
    return failure(403, "NO_AUTH", "Please provide a valid API token.")


def bad_token() -> web.Response:
    """A token TorBox does not know, or one that was revoked."""
    return failure(
        403,
        "BAD_TOKEN",
        "Your token is invalid or has expired. Please log in again or reset your token.",
    )


def not_found_quirk(detail: str) -> web.Response:
    """The empty-result answer: HTTP 404 and ITEM_NOT_FOUND, yet success is true."""
    return envelope(None, detail=detail, status=404, success=True, error="ITEM_NOT_FOUND")


def endpoint_not_found() -> web.Response:
    """An unknown path."""
    return failure(
        404, "ENDPOINT_NOT_FOUND", "Endpoint not found. Please check the URL and try again."
    )


class FieldProblem(Exception):
    """One request field failed FastAPI-style validation; becomes a 422 without envelope."""

    def __init__(self, loc: Sequence[str | int], kind: str, msg: str, value: object) -> None:
        super().__init__(msg)
        self.item = {"type": kind, "loc": list(loc), "msg": msg, "input": value}


def validation_error(problem: FieldProblem) -> web.Response:
    """FastAPI's 422 body: {"detail": [{type, loc, msg, input}]}, no TorBox envelope."""
    return json_response({"detail": [problem.item]}, 422)


def rate_limited(limit: int, retry_after: float, window: str = "1 minute") -> web.Response:
    """The limiter's 429: a bare FastAPI detail plus retry-after and x-ratelimit-* headers."""
    response = json_response({"detail": f"{limit} per {window}"}, 429)
    response.headers.update(rate_limit_headers(limit, 0, retry_after))
    response.headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return response


def rate_limit_headers(limit: int, remaining: int, reset_in: float) -> Mapping[str, str]:
    """The x-ratelimit-* headers; the reset is a float epoch, as TorBox sends it."""
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": f"{time.time() + reset_in:.6f}",
    }


_CLOUDFLARE_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head><title>api.torbox.app | {code}: {title}</title></head>
<body>
<div id="cf-wrapper">
<h1><span>{title}</span> <span>Error code {code}</span></h1>
<p>Visit <a href="https://www.cloudflare.com/">cloudflare.com</a> for more information.</p>
<p>What happened? The web server reported a {lower} error.</p>
<p>What can I do? Please try again in a few minutes.</p>
<p>Cloudflare Ray ID: <strong>{ray}</strong> • Performance &amp; security by Cloudflare</p>
</div>
</body>
</html>
"""


def gateway_page(code: int, title: str, retry_after: float | None = None) -> web.Response:
    """A Cloudflare-style HTML error page, which is what clients see when the origin fails."""
    ray = f"{int(time.time() * 1000) & 0xFFFFFFFFFFFF:012x}"
    page = _CLOUDFLARE_PAGE.format(code=code, title=title, lower=title.lower(), ray=ray)
    response = web.Response(text=page, status=code, content_type="text/html")
    response.headers["server"] = "cloudflare"
    response.headers["cf-ray"] = f"{ray}-AMS"
    if retry_after is not None:
        response.headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return response
