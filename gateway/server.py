"""The HTTP layer under the app: its own errors in our JSON shape, its logs free of request text."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.errors import error_body
from gateway.middleware import SECURITY_HEADERS

log = logging.getLogger("gateway.http")
# aiohttp's own loggers: the server's error path formats the raw request line or header (an API
# key included) into its messages and tracebacks.
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal")


class RequestTextFilter(logging.Filter):
    """Rewrites aiohttp's records to their message template and exception type, no values.

    A second line of defence behind GuardedRequestHandler: whatever aiohttp logs, the arguments
    and exception text (where a header or path would be) never reach a handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        kind = None
        if record.exc_info and record.exc_info[0] is not None:
            kind = record.exc_info[0].__name__
        record.msg = str(record.msg) if kind is None else f"{record.msg} ({kind})"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def guard_aiohttp_logs() -> None:
    """Install RequestTextFilter on aiohttp's loggers (idempotent)."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestTextFilter) for f in logger.filters):
            logger.addFilter(RequestTextFilter())


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with an error path that never repeats the request's text.

    aiohttp answers a request it cannot parse (a control byte in a header, a line too long) with
    a text/plain 400 quoting the offending header and logs the same at ERROR with a traceback.
    Here the answer is our JSON error and the log is one line naming the error's kind.
    """

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        kind = type(exc).__name__ if exc is not None else "error"
        if status >= 500:
            log.error(
                "HTTP layer failed to serve a request", extra={"status": status, "kind": kind}
            )
        else:
            # A client's malformed request: its problem, worth a line, not an alarm.
            log.info("malformed HTTP request refused", extra={"status": status, "kind": kind})
        if request.writer.output_size > 0:
            # Part of an answer went out already; the connection cannot carry another.
            raise ConnectionError("response already started")
        if status == 504:
            body = error_body("The request took too long", "TIMEOUT")
        elif status >= 500:
            body = error_body("Internal error", "INTERNAL")
        else:
            body = error_body("Malformed HTTP request", "MALFORMED_REQUEST")
        response = web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # aiohttp's other failure reports ("Unhandled exception", a handler returning no
        # response): the kind, never the exception's text.
        exc = kw.get("exc_info")
        kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        log.error("HTTP layer error", extra={"kind": kind})


class GuardedServer(web.Server):
    """aiohttp's server, building GuardedRequestHandler connections."""

    @classmethod
    def like(cls, server: web.Server) -> GuardedServer:
        """The same server (handler, request factory, connection settings), guarded."""
        return cls(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer (aiohttp's own start-up and clean-up)."""

    async def _make_server(self) -> web.Server:
        return GuardedServer.like(await super()._make_server())
