"""Link history in a real user database: upserts, keyset and page order, bulk imports, bounds."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import limits
from common.errors import InvalidArgument, NotFound
from tests.userstore.conftest import Store
from userstore_svc.link_history_service import LinkHistoryService
from userstore_svc.store import link_history
from userstore_svc.store.link_history import EntryIn
from userstore_svc.store.migrations import USER_MIGRATIONS, migrate

AUTH = hashlib.sha256(b"history-user").hexdigest()


@pytest.fixture
async def history(store: Store) -> LinkHistoryService:
    """The link history service over the store, with one registered user."""
    await store.users.register(AUTH, b"x")
    return LinkHistoryService(store.pool, store.registry, store.clock)


def entry(item: str = "1", file: str | None = None, **overrides: object) -> EntryIn:
    base: dict[str, object] = {
        "item_id": item,
        "file_id": file,
        "url": f"https://cdn.example/{item}/{file}",
        "asset_type": "torrents",
        "item_name": f"Item {item}",
        "file_name": None,
        "status": "success",
        "generated_at": None,
    }
    base.update(overrides)
    return EntryIn(**base)  # type: ignore[arg-type]


async def test_create_replaces_the_same_identity_null_safely(
    history: LinkHistoryService, store: Store
) -> None:
    """Same item, file (NULL matches NULL) and asset type: replaced; anything else: kept."""
    first = await history.create(AUTH, entry("1"))
    await history.create(AUTH, entry("1", "7"))
    await history.create(AUTH, entry("1", asset_type="usenet"))
    store.now[0] += 10
    again = await history.create(AUTH, entry("1", url="https://cdn.example/new"))
    rows, total = await history.page(AUTH, 1, 50, "")
    assert total == 3
    assert again.id > first.id
    assert again.generated_at == again.created_at == store.now[0]
    assert [(r.item_id, r.file_id, r.asset_type) for r in rows] == [
        ("1", None, "torrents"),
        ("1", None, "usenet"),
        ("1", "7", "torrents"),
    ]
    assert rows[0].url == "https://cdn.example/new"


async def test_import_dedupes_first_wins_and_counts(history: LinkHistoryService) -> None:
    """validated counts distinct identities, deleted the stored rows replaced."""
    await history.create(AUTH, entry("1"))
    validated, deleted, inserted = await history.import_entries(
        AUTH,
        [
            entry("1", url="https://first", generated_at=100.0),
            entry("1", url="https://second"),
            entry("2", "0", generated_at=200.0),
        ],
    )
    assert (validated, deleted, inserted) == (2, 1, 2)
    rows, _ = await history.page(AUTH, 1, 50, "")
    assert [(r.item_id, r.url, r.generated_at) for r in rows] == [
        ("2", "https://cdn.example/2/0", 200.0),
        ("1", "https://first", 100.0),
    ]


async def test_a_failed_entry_needs_no_url_but_a_successful_one_does(
    history: LinkHistoryService,
) -> None:
    """TBM's rule, enforced again here."""
    made = await history.create(AUTH, entry("1", url="", status="failed"))
    assert made.url == ""
    with pytest.raises(InvalidArgument, match="url is required"):
        await history.create(AUTH, entry("2", url=""))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"item_id": ""}, "item_id"),
        ({"asset_type": "torrent"}, "asset_type"),
        ({"status": "maybe"}, "status"),
        ({"url": "u" * (limits.MAX_LINK_URL + 1)}, "url"),
        ({"file_id": "f" * (limits.MAX_LINK_ID + 1)}, "file_id"),
        ({"item_name": "n" * (limits.MAX_LINK_NAME + 1)}, "item_name"),
        ({"generated_at": float("nan")}, "generated_at"),
    ],
)
async def test_bad_entries_are_refused_and_nothing_is_stored(
    history: LinkHistoryService, overrides: dict[str, Any], field: str
) -> None:
    """Bounds and vocabularies; an import with one bad entry stores none of them."""
    with pytest.raises(InvalidArgument) as caught:
        await history.import_entries(AUTH, [entry("ok"), entry("bad", **overrides)])
    assert caught.value.field == field
    assert await history.page(AUTH, 1, 50, "") == ([], 0)


async def test_search_is_literal_and_case_insensitive(history: LinkHistoryService) -> None:
    """% and _ match themselves; ASCII case is ignored; item_id, names and url are searched."""
    await history.create(AUTH, entry("a", item_name="Show S01E01"))
    await history.create(AUTH, entry("b", item_name="100% legit"))
    await history.create(AUTH, entry("c", item_name="a_b", url="https://HOST/x"))
    await history.create(AUTH, entry("item-d", item_name="axb"))
    for search, expected in (
        ("s01e01", {"a"}),
        ("100%", {"b"}),
        ("a_b", {"c"}),
        ("host", {"c"}),
        ("ITEM-D", {"item-d"}),
    ):
        rows, total = await history.page(AUTH, 1, 50, search)
        assert {r.item_id for r in rows} == expected, search
        assert total == len(expected)
        assert {r.item_id for r in await history.scan(AUTH, 50, search, None)} == expected


def _walk(conn: sqlite3.Connection, limit: int) -> list[int]:
    seen: list[int] = []
    after: tuple[float, int] | None = None
    while True:
        rows = link_history.scan(conn, limit, "", after)
        seen.extend(r.id for r in rows)
        if len(rows) < limit:
            return seen
        after = (rows[-1].generated_at, rows[-1].id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    times=st.lists(st.sampled_from([1.0, 2.0, 2.5, 1e9, 1e9 + 0.001]), min_size=0, max_size=300),
    limit=st.integers(min_value=1, max_value=40),
)
def test_keyset_walk_sees_every_row_once_in_page_order(times: list[float], limit: int) -> None:
    """Many equal generated_at values: walking by (generated_at, id) loses and repeats nothing."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, USER_MIGRATIONS)
    link_history.upsert(
        conn, [entry(str(i), generated_at=t) for i, t in enumerate(times)], 5.0, 10_000
    )
    walked = _walk(conn, limit)
    everything, total = link_history.page(conn, 1, 1000, "")
    assert total == len(times)
    assert walked == [r.id for r in everything]
    assert len(set(walked)) == len(walked)


def test_oldest_entries_go_beyond_the_per_user_bound() -> None:
    """Only the newest `keep` entries stay."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, USER_MIGRATIONS)
    link_history.upsert(conn, [entry(str(i), generated_at=float(i)) for i in range(10)], 0.0, 4)
    rows, total = link_history.page(conn, 1, 50, "")
    assert total == 4
    assert [r.item_id for r in rows] == ["9", "8", "7", "6"]


async def test_deletes_count_what_existed_and_ids_are_not_reused(
    history: LinkHistoryService,
) -> None:
    """Bulk delete ignores unknown ids; a single unknown id is NotFound; ids keep growing."""
    made = [await history.create(AUTH, entry(str(i))) for i in range(3)]
    assert await history.delete_many(AUTH, [made[0].id, made[0].id, 999]) == 1
    await history.delete(AUTH, made[2].id)
    with pytest.raises(NotFound, match="Link history entry not found"):
        await history.delete(AUTH, made[2].id)
    newer = await history.create(AUTH, entry("new"))
    assert newer.id > made[2].id
    with pytest.raises(InvalidArgument, match="Invalid ids"):
        await history.delete_many(AUTH, [0])


async def test_a_full_import_is_one_quick_transaction(history: LinkHistoryService) -> None:
    """The largest import TBM's migration could send stays well inside the gateway's deadline."""
    entries = [
        entry(str(i), str(i % 7), generated_at=float(i)) for i in range(limits.MAX_LINK_IMPORT)
    ]
    started = time.perf_counter()
    validated, _, inserted = await history.import_entries(AUTH, entries)
    elapsed = time.perf_counter() - started
    assert validated == inserted == limits.MAX_LINK_IMPORT
    assert elapsed < 5.0, elapsed
    rows = await history.scan(AUTH, 1000, "", None)
    assert rows[0].item_id == str(limits.MAX_LINK_IMPORT - 1)
