# ruff: noqa: E501  (one TorBox answer a row reads best as one table)
"""The upload queue's pure decisions, table-driven: every TorBox answer and its outcome."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler_svc.uploads import policy
from scheduler_svc.uploads.policy import Row

NOW = 1_800_000_000.0
MAGNET = Row("torrent", "magnet", "magnet:?xt=urn:btih:" + "AB" * 20, 0, False)
WEBDL = Row("webdl", "link", "https://x/y", 0, False)


def body(**kw: object) -> bytes:
    """A TorBox envelope."""
    return orjson.dumps({"success": True, "error": None, "detail": "", "data": None, **kw})


CASES = [
    # (row, status, body, headers, strikes) -> (status, message, defer until, log attempt)
    (MAGNET, 200, body(data={"hash": "h", "torrent_id": 7, "auth_id": "a"}, detail="Torrent Added"), {}, 0,
     ("completed", None, None, True)),
    (MAGNET, 200, body(data={"hash": "h", "torrent_id": 7}), {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}, 0,
     ("completed", None, NOW + 30, True)),
    (MAGNET, 200, body(data=None), {}, 0,
     ("queued", "TorBox queued this upload but did not return resource IDs. Retry 1 in 30s.", NOW + 30, False)),
    (WEBDL, 200, body(data=None), {}, 0, ("completed", None, None, True)),
    (MAGNET, 429, b'{"detail":"60 per 1 hour"}', {}, 0,
     ("queued", policy.UNCACHED_MARKER, NOW + 300, False)),
    (MAGNET, 429, b"{}", {"x-ratelimit-limit": "300", "retry-after": "12"}, 0,
     ("queued", policy.RATE_MARKER, NOW + 12, False)),
    (MAGNET, 429, b"{}", {"x-ratelimit-limit": "60", "x-ratelimit-reset": str(NOW + 99)}, 0,
     ("queued", policy.UNCACHED_MARKER, NOW + 99, False)),
    (MAGNET, 500, body(success=False, error="DUPLICATE_ITEM", detail="This torrent already exists"), {}, 0,
     ("completed", None, None, True)),
    (MAGNET, 400, body(success=False, error="BOZO_TORRENT", detail="The torrent or magnet link is not valid."), {}, 0,
     ("failed", "The torrent or magnet link is not valid.", None, False)),
    (MAGNET, 400, body(success=False, error="DOWNLOAD_NOT_CACHED", detail="This download is not cached on TorBox."), {}, 0,
     ("failed", "This download is not cached on TorBox.", None, False)),
    (MAGNET, 500, body(success=False, error="UNKNOWN_ERROR", detail="x"), {}, 0,
     ("queued", policy.HARD_MARKER, NOW + 900, False)),
    (MAGNET, 502, b"<html>bad gateway</html>", {}, 0,
     ("queued", policy.HARD_MARKER, NOW + 900, False)),
    (MAGNET, 200, b'{"detail": "half', {}, 0,
     ("queued", policy.SOFT_MARKER, NOW + 30, False)),
    (MAGNET, 200, b'{"detail": "half', {}, 2,
     ("queued", policy.HARD_MARKER, NOW + 900, False)),
    (MAGNET, 403, body(success=False, error="BAD_TOKEN"), {}, 0,
     ("queued", policy.HARD_MARKER, NOW + 900, False)),
    (MAGNET, 422, b'{"detail":[{"loc":["body","seed"]}]}', {}, 0,
     ("failed", "Invalid option. Please check upload settings.", None, False)),
]  # fmt: skip


@pytest.mark.parametrize(("row", "status", "raw", "headers", "strikes", "expected"), CASES)
def test_decisions(
    row: Row,
    status: int,
    raw: bytes,
    headers: dict[str, str],
    strikes: int,
    expected: tuple[str, str | None, float | None, bool],
) -> None:
    """TBM's classification with our fail-closed reading of what is not an answer."""
    decision = policy.decide(row, status, raw, headers, NOW, strikes, 300.0)
    assert (
        decision.status,
        decision.error_message,
        decision.defer_type_until,
        decision.log_attempt,
    ) == expected
    if decision.status == "queued":
        assert decision.stop_type
        assert decision.defer_type_message in policy.MARKERS


def test_success_reads_ids_and_cache_flags() -> None:
    """Ids by type, the magnet's hash as a fallback, cached from the detail's words."""
    done = policy.decide(
        WEBDL,
        200,
        body(data={"webdownload_id": 5}, detail="Found Cached Web download"),
        {},
        NOW,
        0,
        1,
    )
    assert (done.torbox_id, done.cached) == (5, True)
    dup = policy.decide(MAGNET, 500, body(success=False, error="DUPLICATE_ITEM"), {}, NOW, 0, 1)
    assert dup.torbox_hash == "ab" * 20


def test_form_fields_as_tbm_sends_them() -> None:
    """Seed and zip for torrents; flags only when set; the password only when given."""
    fields = policy.form_fields(
        "torrent", "magnet", "magnet:?x", "N", (None, True, False, True), None
    )
    assert fields == {"name": "N", "magnet": "magnet:?x", "seed": "1", "allow_zip": "1",
                      "add_only_if_cached": "true"}  # fmt: skip
    web = policy.form_fields("webdl", "link", "https://x", "N", (None, True, True, False), "pw")
    assert web == {"name": "N", "link": "https://x", "as_queued": "true", "password": "pw"}


@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0, 100)), unique_by=lambda p: p[0]),
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 50)),
    st.integers(0, 6),
)
def test_plan_serves_the_least_recently_served_first(
    due: list[tuple[str, float]], served: dict[str, int], slots: int
) -> None:
    """Never more than the free slots; a never-served user comes before any served one."""
    chosen = policy.plan(due, {"a", "b", "c", "d", "e"}, {"f"}, served, slots)
    assert len(chosen) == min(slots, len([a for a, _ in due if a in "abcde"]))
    assert "f" not in chosen
    ranks = [served.get(a, -1) for a in chosen]
    assert ranks == sorted(ranks)
    never = [a for a, _ in due if a in "abcde" and a not in served]
    if chosen and never:
        assert served.get(chosen[0], -1) == -1
