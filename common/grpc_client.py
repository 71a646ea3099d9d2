"""Client-side helpers: channels with sane options, and metadata that carries the request id."""

from __future__ import annotations

from typing import Any

import grpc

from common import errors
from common.grpc_server import MAX_MESSAGE_BYTES, REQUEST_ID_KEY
from common.logs import request_id

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after a peer restarts instead of backing off for minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 1),
)


def channel(address: str) -> grpc.aio.Channel:
    """An insecure channel to a peer inside the deployment (gRPC never leaves the cluster)."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


def metadata() -> tuple[tuple[str, str], ...]:
    """Metadata for an outgoing call: the current request id, so logs join across services."""
    return ((REQUEST_ID_KEY, request_id.get()),)


def error_from_rpc(error: grpc.aio.AioRpcError) -> errors.AutomationError:
    """Rebuild the domain error a peer raised from its status and trailing metadata."""
    meta = {
        key: value for key, value in (error.trailing_metadata() or ()) if isinstance(value, str)
    }
    status = error.code()
    message = error.details() or status.name
    code = meta.get(errors.CODE_KEY)
    # Our rate limits carry a code; gRPC's own size limits do not and are not retryable waits.
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED and code is not None:
        retry = meta.get(errors.RETRY_KEY, "1")
        return errors.RateLimited(message, retry_after=float(retry), code=code)
    if code == errors.UserNotRegistered.default_code:
        return errors.UserNotRegistered()
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable(message, code=code or "TIMEOUT")
    kind = errors.BY_STATUS.get(status.name, errors.AutomationError)
    return kind(message, code=code, field=meta.get(errors.FIELD_KEY))
