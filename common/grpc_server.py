"""Every gRPC server's frame: error mapping, request ids, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common import errors
from common.files import private_umask
from common.logs import configure as configure_logs
from common.logs import new_request_id, request_id
from common.settings import SettingsError

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
# Generous message size: a 10,000-torrent snapshot is about 3 MB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)


# Turns a service's own failures (a full disk, say) into the domain error they mean, or None.
Translate = Callable[[BaseException], "errors.AutomationError | None"]


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    exc: BaseException,
    translate: Translate | None = None,
) -> None:
    """End the RPC with the status that the exception means (the one mapping of the project)."""
    if translate is not None and not isinstance(exc, errors.AutomationError):
        exc = translate(exc) or exc
    if isinstance(exc, errors.AutomationError):
        status = grpc.StatusCode[exc.status]
        if status == grpc.StatusCode.INTERNAL:
            log.error("rpc failed: %s", exc.message)
        # Messages may quote user input; keep them well under gRPC's metadata limits.
        message = exc.message if len(exc.message) <= 1000 else exc.message[:999] + "…"
        await context.abort(status, message, errors.trailing_metadata(exc))
    log.exception("unexpected error in rpc", exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, "internal error", ((errors.CODE_KEY, "INTERNAL"),)
    )


def _request_id_from(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 64:
            return value
    return new_request_id()


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Sets the request id for each RPC and turns domain errors into statuses, never tracebacks."""

    def __init__(self, translate: Translate | None = None) -> None:
        self.translate = translate

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        rid = _request_id_from(handler_call_details)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, rid, self.translate),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, rid, self.translate),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, rid, self.translate),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream(handler.stream_stream, rid, self.translate),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _wrap_unary(inner: Any, rid: str, translate: Translate | None) -> Any:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        token = request_id.set(rid)
        try:
            return await inner(request, context)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, translate)
        finally:
            request_id.reset(token)

    return call


def _wrap_stream(inner: Any, rid: str, translate: Translate | None) -> Any:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        token = request_id.set(rid)
        try:
            async for item in inner(request, context):
                yield item
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, translate)
        finally:
            # A stream cancelled at shutdown (or by its client) is closed by the event loop in a
            # task of its own, where the token is foreign; the RPC's context ends with it anyway.
            with contextlib.suppress(ValueError):
                request_id.reset(token)

    return call


class GrpcServer:
    """A grpc.aio server with health, reflection and the error interceptor wired in.

    Health reports NOT_SERVING until :meth:`set_serving` (the service is ready), and again from
    the moment :meth:`stop` begins, so a load balancer drains it before in-flight RPCs end.
    """

    def __init__(self, service_names: Sequence[str], translate: Translate | None = None) -> None:
        self._interceptor = ErrorInterceptor(translate)
        self.server = grpc.aio.server(interceptors=[self._interceptor], options=SERVER_OPTIONS)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names = ("", *service_names)
        reflection.enable_server_reflection(
            (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = 0

    async def start(self, bind: str) -> int:
        """Bind (``host:0`` picks a free port), start serving RPCs and return the port."""
        for name in self._names:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.port = self.server.add_insecure_port(bind)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {bind}")
        await self.server.start()
        return self.port

    async def set_serving(self, *, ready: bool = True) -> None:
        """Report SERVING for the whole server, and for each named service when `ready`."""
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.set_ready(ready)

    def translate(self, translate: Translate) -> None:
        """Map the service's own failures (a full disk) to domain errors from now on."""
        self._interceptor.translate = translate

    async def set_ready(self, ready: bool) -> None:
        """Readiness of the named services only: the process ("") stays alive either way.

        Probes read "" as liveness and the service's own name as readiness, so a service whose
        path does not work yet (or no longer: a full disk) leaves the load balancer without a
        restart. Ignored once shutdown began.
        """
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names[1:]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """NOT_SERVING at once, refuse new RPCs, let in-flight ones finish within `grace`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT.

    Install it before announcing readiness, so a signal that arrives right after the "serving"
    line is not lost.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def wait_for_signal() -> None:
    """Return when the process receives SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


class Service(Protocol):
    """A gRPC service's composition root, as :func:`run_service` drives it."""

    async def start(self) -> int: ...

    async def stop(self) -> None: ...


class LogSettings(Protocol):
    """The settings every service has for its logging."""

    @property
    def log_format(self) -> str: ...

    @property
    def log_level(self) -> str: ...


SettingsT = TypeVar("SettingsT", bound=LogSettings)


def run_service(
    name: str,
    from_env: Callable[[Mapping[str, str]], SettingsT],
    make: Callable[[SettingsT], Service],
) -> None:
    """The `python -m <service>` entry point.

    Settings (failing fast, every bad variable named), logging, start, serve until SIGTERM or
    SIGINT, then stop gracefully.
    """
    try:
        settings = from_env(os.environ)
    except SettingsError as error:
        print(f"{name}: {error}", file=sys.stderr)  # noqa: T201 - before logging exists
        sys.exit(2)
    configure_logs(name, fmt=settings.log_format, level=settings.log_level)
    # Databases, journals and keys: nothing this service writes is for other users to read.
    private_umask()

    async def serve() -> None:
        service = make(settings)
        stop = stop_event()
        try:
            await service.start()
            await stop.wait()
        finally:
            await service.stop()

    asyncio.run(serve())
