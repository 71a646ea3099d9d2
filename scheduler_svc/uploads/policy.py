"""The upload queue's pure decisions: what a create's answer means for the row and its type.

Synchronous, with `now` passed in: no I/O, so every rule is tested table-driven. The marker
strings are TBM's exactly (its Uploads page hides queued rows' messages that equal them).
Deferral always covers the whole type (the row and its queued siblings) so the order within a
type survives a pause; only a business refusal fails a row, never a transient cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

UNCACHED_MARKER = "Uncached rate limit reached. Will retry automatically."
RATE_MARKER = "Rate limit reached. Will retry automatically."
HARD_MARKER = "TorBox API unavailable. Will retry automatically."
SOFT_MARKER = "TorBox create timed out or failed to connect. Will retry shortly."
SIBLING_TRANSIENT_MARKER = "TorBox is still processing a queued upload. Will retry automatically."
MARKERS = (UNCACHED_MARKER, RATE_MARKER, HARD_MARKER, SOFT_MARKER, SIBLING_TRANSIENT_MARKER)

SOFT_SECONDS = 30.0
HARD_SECONDS = 15 * 60.0
STRIKES_BEFORE_HARD = 3
UNCACHED_ENVELOPE_MAX = 120  # a header limit above this is the cached per-minute envelope
EPOCH_THRESHOLD = 1_577_836_800  # a reset above this is a unix time, else delta seconds
ENDPOINTS = {
    "torrent": "torrents/createtorrent",
    "usenet": "usenet/createusenetdownload",
    "webdl": "webdl/createwebdownload",
}
ID_KEYS = {
    "torrent": ("torrent_id", "id", "queued_id"),
    "usenet": ("usenetdownload_id", "usenet_id", "id", "queued_id"),
    "webdl": ("webdownload_id", "webdl_id", "web_id", "id", "queued_id"),
}
AUTH_CODES = frozenset({"BAD_TOKEN", "AUTH_ERROR", "NO_AUTH"})
DUPLICATE = re.compile(r"already (queued|exists)", re.IGNORECASE)
_BTIH = re.compile(r"btih:([0-9a-fA-F]{40})")


@dataclass(frozen=True, slots=True)
class Row:
    """What the policy needs of a claimed row."""

    type: str
    upload_type: str
    url: str | None
    retry_count: int
    unconfirmed: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """A row's outcome; `stop_type` ends this cycle's sends of the type (they are released)."""

    status: str
    error_message: str | None = None
    next_attempt_at: float | None = None
    torbox_hash: str | None = None
    torbox_id: int | None = None
    torbox_auth_id: str | None = None
    log_attempt: bool = False
    cached: bool = False
    retry_increment: bool = False
    defer_type_until: float | None = None
    defer_type_message: str = ""
    status_code: int = 0
    error_code: str = ""
    stop_type: bool = False
    # Counts toward the (user, type) connection strikes; a success or duplicate resets them.
    strike: bool = False


def expected_hash(row: Row) -> str | None:
    """The infohash a magnet names (lower case), when it names one."""
    found = _BTIH.search(row.url or "") if row.upload_type == "magnet" else None
    return found.group(1).lower() if found else None


def _defer(until: float, message: str, **kw: Any) -> Decision:
    """Queued again with the type paused until `until` under `message`."""
    return Decision(
        "queued",
        error_message=message,
        next_attempt_at=until,
        defer_type_until=until,
        defer_type_message=message,
        stop_type=True,
        **kw,
    )


def connection_failure(strikes: int, now: float, *, server_error: bool = False) -> Decision:
    """No usable answer: soft (30 s) until the third strike in a row or a 5xx, then hard."""
    if server_error or strikes + 1 >= STRIKES_BEFORE_HARD:
        return _defer(now + HARD_SECONDS, HARD_MARKER, strike=True)
    return _defer(now + SOFT_SECONDS, SOFT_MARKER, strike=True)


def reset_at(headers: dict[str, str], now: float) -> float | None:
    """When a rate limit lifts: retry-after, else x-ratelimit-reset (epoch or delta)."""
    for name in ("retry-after", "x-ratelimit-reset", "ratelimit-reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if value > EPOCH_THRESHOLD:
            return value
        if value >= 0:
            return now + value
    return None


def _limit(headers: dict[str, str], name: str) -> int | None:
    raw = headers.get(f"x-ratelimit-{name}", headers.get(f"ratelimit-{name}"))
    try:
        return int(float(raw)) if raw is not None else None
    except ValueError:
        return None


def rate_limited(headers: dict[str, str], now: float, fallback: float) -> Decision:
    """A 429: the uncached marker unless the headers are the cached envelope's."""
    limit = _limit(headers, "limit")
    until = reset_at(headers, now) or now + fallback
    if limit is not None and limit > UNCACHED_ENVELOPE_MAX:
        return _defer(until, RATE_MARKER, status_code=429)
    return _defer(until, UNCACHED_MARKER, status_code=429)


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _first_id(kind: str, data: Any) -> int | None:
    if isinstance(data, bool):
        return None
    if isinstance(data, int | str) and str(data).isdigit():
        return int(data)
    if not isinstance(data, dict):
        return None
    for key in ID_KEYS[kind]:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _is_cached(detail: str) -> bool:
    lowered = detail.lower()
    return "cached" in lowered and "not cached" not in lowered and "uncached" not in lowered


def succeeded(row: Row, payload: dict[str, Any], headers: dict[str, str], now: float) -> Decision:
    """A 2xx success: done with TorBox's ids, unless a torrent came back with none."""
    data = payload.get("data")
    detail = str(payload.get("detail") or "")
    as_dict = data if isinstance(data, dict) else {}
    info_hash = as_dict.get("hash") if isinstance(as_dict.get("hash"), str) else None
    auth_id = as_dict.get("auth_id") if isinstance(as_dict.get("auth_id"), str) else None
    torbox_id = _first_id(row.type, data)
    if row.type == "torrent" and info_hash is None and torbox_id is None and auth_id is None:
        tries = row.retry_count + 1
        wait = min(30.0 * 2 ** (tries - 1), 300.0)
        message = (
            "TorBox queued this upload but did not return resource IDs. "
            f"Retry {tries} in {int(wait)}s."
        )
        return Decision(
            "queued",
            error_message=message,
            next_attempt_at=now + wait,
            retry_increment=True,
            defer_type_until=now + wait,
            defer_type_message=SIBLING_TRANSIENT_MARKER,
            stop_type=True,
        )
    decision = Decision(
        "completed",
        torbox_hash=info_hash or expected_hash(row),
        torbox_id=torbox_id,
        torbox_auth_id=auth_id,
        log_attempt=True,
        cached=_is_cached(detail),
        status_code=200,
    )
    limit, remaining = _limit(headers, "limit"), _limit(headers, "remaining")
    if limit is not None and limit <= UNCACHED_ENVELOPE_MAX and remaining == 0:
        # The budget is spent: pause the siblings until it reopens instead of sending into 429s.
        until = reset_at(headers, now)
        if until is not None and until > now:
            return replace(
                decision,
                defer_type_until=until,
                defer_type_message=UNCACHED_MARKER,
                stop_type=True,
            )
    return decision


def duplicate(row: Row, status: int) -> Decision:
    """TorBox already has it: done (a create that timed out earlier probably went through)."""
    return Decision(
        "completed",
        torbox_hash=expected_hash(row),
        log_attempt=True,
        cached=not row.unconfirmed,
        status_code=status,
        error_code="DUPLICATE_ITEM",
    )


def decide(
    row: Row,
    status: int,
    body: bytes,
    headers: dict[str, str],
    now: float,
    strikes: int,
    fallback: float,
) -> Decision:
    """What TorBox's answer to a create means (TBM's classification, fail-closed)."""
    if status == 429:
        return rate_limited(headers, now, fallback)
    payload = _payload(body)
    if payload is None or ("success" not in payload and status < 400):
        # Not a TorBox envelope (an HTML page, a cut body): an outage, never a verdict.
        return connection_failure(strikes, now, server_error=status >= 500)
    code = str(payload.get("error") or "")
    detail = payload.get("detail")
    text = detail if isinstance(detail, str) else ""
    if payload.get("success") is True and 200 <= status < 300 and not code:
        return succeeded(row, payload, headers, now)
    if code == "DUPLICATE_ITEM" or DUPLICATE.search(text):
        return duplicate(row, status)
    if payload.get("success") is False and re.search("queued successfully", text, re.I):
        return succeeded(row, {"data": None}, {}, now)
    if code in AUTH_CODES or status == 401:
        # The key is refused now; the directory stops the user. Keep the rows for its return.
        return _defer(now + HARD_SECONDS, HARD_MARKER, status_code=status, error_code=code)
    if status >= 500 and (not code or code.endswith("_ERROR")):
        return connection_failure(strikes, now, server_error=True)
    if "success" not in payload and status == 422:
        text = "Invalid option. Please check upload settings."
    return Decision(
        "failed",
        error_message=text or code or "Unknown error",
        retry_increment=True,
        status_code=status,
        error_code=code,
    )


def form_fields(
    kind: str,
    upload_type: str,
    url: str | None,
    name: str,
    options: tuple[int | None, bool, bool, bool],
    password: str | None,
) -> dict[str, str]:
    """The create's form fields as TBM sends them (the file, if any, goes beside them).

    `options` is (seed, allow_zip, as_queued, add_only_if_cached).
    """
    seed, allow_zip, as_queued, only_cached = options
    fields = {"name": name}
    if upload_type == "magnet":
        fields["magnet"] = url or ""
    elif upload_type == "link":
        fields["link"] = url or ""
    if kind == "torrent":
        fields["seed"] = str(seed or 1)
        fields["allow_zip"] = "1" if allow_zip else "0"
        if only_cached:
            fields["add_only_if_cached"] = "true"
    if as_queued:
        fields["as_queued"] = "true"
    if password:
        fields["password"] = password
    return fields


def plan(
    due: list[tuple[str, float]],
    eligible: set[str],
    busy: set[str],
    last_served: dict[str, int],
    slots: int,
) -> list[str]:
    """Which due users to serve now: least recently served first, then earliest due.

    A user with a thousand queued rows is due all the time; ordering by when each user was last
    served (not by due time alone) lets every other due user in within one cycle.
    """
    candidates = [(a, at) for a, at in due if a in eligible and a not in busy]
    candidates.sort(key=lambda pair: (last_served.get(pair[0], -1), pair[1], pair[0]))
    return [a for a, _ in candidates[: max(0, slots)]]
