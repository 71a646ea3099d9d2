"""The upload queue's store and service over real SQLite files: claims, reports, crash safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import NotFound
from tests.userstore.conftest import Store, close_store, open_store
from userstore_svc.store import uploads as store_uploads
from userstore_svc.store.uploads import NewUpload, Outcome
from userstore_svc.uploads_service import UploadService, owns, staged_path

USER = "a" * 64
OTHER = "b" * 64
MARKER = "Uncached rate limit reached. Will retry automatically."


def magnet(name: str, kind: str = "torrent") -> NewUpload:
    """A queued magnet (or link for other types)."""
    upload_type = "magnet" if kind == "torrent" else "link"
    return NewUpload(
        kind, upload_type, None, f"magnet:?{name}", name, None, True, False, False, None
    )


def done(**kw: object) -> Outcome:
    """A completed outcome (fields overridable)."""
    base: dict[str, object] = {
        "status": "completed", "error_message": None, "next_attempt_at": None,
        "torbox_hash": "h", "torbox_id": 1, "torbox_auth_id": "a", "log_attempt": True,
        "cached": False, "retry_increment": False, "defer_type_until": None,
        "defer_type_message": "", "status_code": 200, "error_code": "",
    }  # fmt: skip
    base.update(kw)
    return Outcome(**base)  # type: ignore[arg-type]


async def service(store: Store) -> UploadService:
    """A registered user and the service."""
    await store.users.register(USER, b"ciphertext")
    return UploadService(store.pool, store.registry, store.clock)


async def test_claims_are_fair_by_type_and_fifo_within_a_type(store: Store) -> None:
    """Round-robin over types, queue order within each; the registry knows the user is due."""
    uploads = await service(store)
    await uploads.create(
        USER,
        [magnet("t1"), magnet("t2"), magnet("w1", "webdl"), magnet("t3"), magnet("u1", "usenet")],
    )
    assert store.registry.due_uploads(store.clock(), 10) == [(USER, 0.0)]  # ready now
    claimed = await uploads.claim(USER, "0:boot", 4, 60.0)
    assert [c.row.name for c in claimed] == ["t1", "u1", "w1", "t2"]
    # A type with a claim in flight is not claimed again (its order is kept).
    assert [c.row.name for c in await uploads.claim(USER, "0:boot", 4, 60.0)] == []


async def test_report_applies_once_and_defers_the_type(store: Store) -> None:
    """A report needs the live claim; a deferral moves the queued siblings of its type."""
    uploads = await service(store)
    await uploads.create(USER, [magnet(f"t{i}") for i in range(3)] + [magnet("w", "webdl")])
    first = (await uploads.claim(USER, "0:boot", 1, 60.0))[0]
    until = store.clock() + 600
    deferred = done(
        status="queued", error_message=MARKER, next_attempt_at=until, torbox_hash=None,
        torbox_id=None, torbox_auth_id=None, log_attempt=False, defer_type_until=until,
        defer_type_message=MARKER,
    )  # fmt: skip
    assert await uploads.report(USER, first.row.id, first.claim, deferred)
    assert not await uploads.report(USER, first.row.id, first.claim, done())
    listing = await uploads.listing(USER, "queued", "", "", 1, 50)
    torrents = [r for r in listing.rows if r.type == "torrent"]
    assert all(r.error_message == MARKER and r.next_attempt_at == until for r in torrents)
    assert [c.row.name for c in await uploads.claim(USER, "0:boot", 5, 60.0)] == ["w"]
    stats = {s.type: s for s in listing.statistics}
    assert (stats["torrent"].deferred_count, stats["torrent"].deferred_until) == (3, until)


async def test_a_dead_boots_claim_is_handed_out_again_unconfirmed(tmp_path: Path) -> None:
    """A claim by an earlier boot of the same replica survives a restart and is resolved."""
    store = await open_store(tmp_path)
    uploads = await service(store)
    await uploads.create(USER, [magnet("t1"), magnet("t2")])
    held = await uploads.claim(USER, "0:old", 1, 600.0)
    await close_store(store)
    store = await open_store(tmp_path)
    try:
        uploads = UploadService(store.pool, store.registry, store.clock)
        assert store.registry.upload_due_at(USER) is not None
        again = await uploads.claim(USER, "0:new", 5, 600.0)
        assert [(c.row.id, c.unconfirmed) for c in again][:1] == [(held[0].row.id, True)]
        assert not await uploads.report(USER, held[0].row.id, held[0].claim, done())
        # Another replica's live claim is not taken.
        other = await uploads.claim(USER, "1:x", 5, 600.0)
        assert other == []
    finally:
        await close_store(store)


async def test_retry_reorder_delete_and_quota(store: Store) -> None:
    """Failed rows re-queue at the tail; deletes drop orphaned files; quota evicts finished."""
    uploads = await service(store)
    uploads.quota = type(uploads.quota)(max_bytes=10, max_files=2)
    paths = [await uploads.stage(USER, "torrent", f"f{i}.torrent", b"1234") for i in range(2)]
    rows = await uploads.create(
        USER,
        [NewUpload("torrent", "file", p, None, p, None, True, False, False, None) for p in paths],
    )
    claimed = await uploads.claim(USER, "0:b", 1, 60.0)
    failed = done(status="failed", error_message="bad", log_attempt=False, retry_increment=True)
    await uploads.report(USER, claimed[0].row.id, claimed[0].claim, failed)
    found, requeued = await uploads.retry(USER, [rows[0].id, rows[1].id, 999])
    assert (found, [r.id for r in requeued]) == (2, [rows[0].id])
    assert requeued[0].queue_order > rows[1].queue_order
    assert requeued[0].retry_count == 0
    # A third file goes over the quota: only queued rows hold files, so nothing is evicted.
    third = await uploads.stage(USER, "torrent", "f3.torrent", b"1234")
    _, data = await uploads.file(USER, rows[0].id)
    assert data == b"1234"
    assert await uploads.delete(USER, [rows[0].id]) == 1
    with pytest.raises(NotFound, match="Upload not found"):
        await uploads.file(USER, rows[0].id)
    assert third.startswith(f"user_{USER}/torrent/f3_")


def test_paths_belong_to_their_user() -> None:
    """Only a path under the user's own folder, without parent steps, is theirs."""
    path = staged_path(USER, "torrent", "../../etc/pass wd.torrent", 1.5)
    assert path.startswith(f"user_{USER}/torrent/pass_wd_1500_")
    assert owns(USER, path)
    assert not owns(OTHER, path)
    assert not owns(USER, f"user_{USER}/../user_{OTHER}/x.torrent")


async def test_a_claim_carries_a_bounded_number_of_file_bytes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staged files ride in the claim's answer: beyond the cap the rest wait for a later turn,
    but one file always goes (the cap is lowered here; it is 24 MiB)."""
    monkeypatch.setattr(store_uploads, "CLAIM_BYTES", 10)
    uploads = await service(store)
    paths = [await uploads.stage(USER, "torrent", f"f{i}.torrent", b"12345678") for i in range(3)]
    await uploads.create(
        USER,
        [NewUpload("torrent", "file", p, None, p, None, True, False, False, None) for p in paths],
    )
    first = await uploads.claim(USER, "0:b", 5, 60.0)
    assert [c.file_data for c in first] == [b"12345678"]
