"""Who is calling: the API key from the request and the auth id derived from it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from common.auth import auth_id_for, is_valid_api_key
from common.errors import InvalidArgument, PermissionDenied
from gateway.errors import Unauthenticated
from gateway.inputs import parse_json


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: their key (kept in the request path only) and auth id."""

    api_key: str
    auth_id: str


async def caller_of(request: web.Request) -> Caller:
    """The caller, from x-api-key, else Authorization: Bearer, else a JSON body's apiKey.

    Every declared auth id (``?authId=``, ``x-auth-id``, a body ``authId``) must match the key's.
    """
    body = await _json_body(request)
    key = request.headers.get("x-api-key")
    if not key:
        authorization = request.headers.get("Authorization", "")
        if authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
    body_key = body.get("apiKey")
    if not key and isinstance(body_key, str):
        key = body_key
    if not key:
        raise Unauthenticated("API key required: send it in the x-api-key header")
    key = key.strip()
    if not is_valid_api_key(key):
        raise InvalidArgument("Invalid API key format", code="INVALID_API_KEY", field="apiKey")
    auth_id = auth_id_for(key)
    # Every declaration must match, not the first found: a caller naming two different users
    # (one of them its own) is refused, never served as whichever we happened to check.
    declared = (request.query.get("authId"), request.headers.get("x-auth-id"), body.get("authId"))
    if any(value not in (None, "", auth_id) for value in declared):
        raise PermissionDenied(
            "authId does not match API key", code="AUTH_ID_MISMATCH", field="authId"
        )
    return Caller(key, auth_id)


async def _json_body(request: web.Request) -> dict[str, object]:
    """The JSON object body if there is one (malformed bodies are reported by the handler)."""
    if not request.body_exists or request.content_type != "application/json":
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        value = parse_json(raw)
    except InvalidArgument:
        return {}
    return value if isinstance(value, dict) else {}
