"""Tags and download tags in a user's database: TBM's rules, one transaction, events, a model."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import AlreadyExists, InvalidArgument, NotFound, UserNotRegistered
from common.tags import NAME_REQUIRED, NAME_TOO_LONG, clean_name, utf16_length
from tests.userstore.conftest import Store
from userstore_svc.hub import TAGS_CHANGED, Item
from userstore_svc.store import rule_tags
from userstore_svc.store import tags as tag_store
from userstore_svc.store.migrations import USER_MIGRATIONS, migrate
from userstore_svc.store.tags import Operation
from userstore_svc.tags_service import TagService

USER = "a" * 64


@pytest.fixture
async def tags(store: Store) -> TagService:
    """A registered user's tag service, on the store's real files and event hub."""
    await store.users.register(USER, b"ciphertext")
    return TagService(store.pool, store.registry, store.clock, store.hub)


def drained(queue: asyncio.Queue[Item]) -> list[str]:
    """The event types a subscriber has received so far."""
    seen = []
    while not queue.empty():
        item = queue.get_nowait()
        seen.append(getattr(item, "type", "changed"))
    return seen


async def pairs(tags: TagService) -> set[tuple[int, int]]:
    """Every (download id, tag id) stored."""
    return {(m.download_id, m.tag_id) for m in await tags.mappings(USER)}


# Names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("  4K  ", "4K"),
        ("\ufeff\u00a0keep\u3000\n", "keep"),  # what JavaScript's trim() removes
        ("\x1cx\x1f", "\x1cx\x1f"),  # and what it keeps (Python's strip() would remove it)
        ("a" * 100, "a" * 100),
        (" " + "é" * 100 + " ", "é" * 100),
    ],
)
def test_names_are_trimmed_as_tbm_trims_them(raw: str, name: str) -> None:
    """TBM trims with JavaScript's trim(); the stored name is the trimmed one."""
    assert clean_name(raw) == name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, NAME_REQUIRED),
        ("", NAME_REQUIRED),
        ("   \t", NAME_REQUIRED),
        (5, NAME_REQUIRED),
        (["x"], NAME_REQUIRED),
        ("a" * 101, NAME_TOO_LONG),
        ("😀" * 51, NAME_TOO_LONG),  # 102 UTF-16 units: JavaScript's length, TBM's limit
    ],
)
def test_bad_names_are_refused_in_tbms_words(raw: object, message: str) -> None:
    """A missing, blank or non-string name, and one over 100 characters, as TBM words them."""
    with pytest.raises(InvalidArgument) as caught:
        clean_name(raw)
    assert caught.value.message == message
    assert caught.value.field == "name"


def test_utf16_length_counts_as_javascript() -> None:
    """An astral character is two code units, as String.length counts it."""
    assert utf16_length("a😀é") == 4
    assert clean_name("😀" * 50) == "😀" * 50


# Tag CRUD ----------------------------------------------------------------------------------------


async def test_tags_are_listed_by_binary_name_with_usage_counts(tags: TagService) -> None:
    """ORDER BY name as SQLite's BINARY collation: capitals first; counts are mappings."""
    made = {n: (await tags.create_tag(USER, n)).id for n in ("beta", "Zulu", "alpha", "Beta2")}
    assert [t.name for t in await tags.list_tags(USER)] == ["Beta2", "Zulu", "alpha", "beta"]
    await tags.change_mappings(USER, Operation.ADD, [10, 11, 12], [made["alpha"]])
    await tags.change_mappings(USER, Operation.ADD, [11], [made["Zulu"]])
    counts = {t.name: t.usage_count for t in await tags.list_tags(USER)}
    assert counts == {"Beta2": 0, "Zulu": 1, "alpha": 3, "beta": 0}
    one = await tags.get_tag(USER, made["alpha"])
    assert (one.name, one.usage_count) == ("alpha", 3)


async def test_a_new_tag_is_trimmed_and_timed(tags: TagService, store: Store) -> None:
    """The answer is what is stored: trimmed name, the clock's time twice, no mappings."""
    tag = await tags.create_tag(USER, "  4K ")
    assert (tag.name, tag.created_at, tag.updated_at, tag.usage_count) == (
        "4K",
        store.now[0],
        store.now[0],
        0,
    )
    assert await tags.get_tag(USER, tag.id) == tag


async def test_names_are_unique_in_any_ascii_case(tags: TagService) -> None:
    """409 for another tag's name in another case, on create and on rename; a tag may re-case
    itself. Like TBM's LOWER() (and SQLite's NOCASE), only ASCII letters fold."""
    four_k = await tags.create_tag(USER, "4K")
    keep = await tags.create_tag(USER, "keep")
    for name in ("4k", " 4K ", "4K"):
        with pytest.raises(AlreadyExists) as caught:
            await tags.create_tag(USER, name)
        assert caught.value.message == "A tag with this name already exists"
    with pytest.raises(AlreadyExists):
        await tags.rename_tag(USER, keep.id, "4k")
    renamed = await tags.rename_tag(USER, four_k.id, "4k")
    assert renamed.name == "4k"
    await tags.create_tag(USER, "Ä")
    await tags.create_tag(USER, "ä")  # not an ASCII letter: a different name, as in TBM
    assert sorted(t.name for t in await tags.list_tags(USER)) == ["4k", "keep", "Ä", "ä"]


async def test_rename_checks_the_tag_before_the_name_conflict(tags: TagService) -> None:
    """TBM's order: the name's 400s, then 404 for an unknown tag, then 409."""
    await tags.create_tag(USER, "taken")
    with pytest.raises(InvalidArgument):
        await tags.rename_tag(USER, 999, " ")
    with pytest.raises(NotFound) as caught:
        await tags.rename_tag(USER, 999, "taken")
    assert caught.value.message == "Tag not found"


async def test_rename_keeps_creation_time_and_usage(tags: TagService, store: Store) -> None:
    """updated_at moves, created_at and the usage count do not."""
    tag = await tags.create_tag(USER, "old")
    await tags.change_mappings(USER, Operation.ADD, [1, 2], [tag.id])
    store.now[0] += 90
    renamed = await tags.rename_tag(USER, tag.id, "new")
    assert (renamed.created_at, renamed.updated_at, renamed.usage_count) == (
        tag.created_at,
        store.now[0],
        2,
    )
    assert await tags.get_tag(USER, tag.id) == renamed


async def test_deleting_a_tag_takes_its_mappings_and_never_frees_its_id(tags: TagService) -> None:
    """The cascade removes the mappings; a new tag never takes a deleted tag's id (a rule or an
    open tab that names it must not start meaning another tag), as TBM's AUTOINCREMENT."""
    first = await tags.create_tag(USER, "first")
    last = await tags.create_tag(USER, "last")
    await tags.change_mappings(USER, Operation.ADD, [7, 8], [first.id, last.id])
    await tags.delete_tag(USER, last.id)
    assert await pairs(tags) == {(7, first.id), (8, first.id)}
    with pytest.raises(NotFound):
        await tags.get_tag(USER, last.id)
    with pytest.raises(NotFound):
        await tags.delete_tag(USER, last.id)
    again = await tags.create_tag(USER, "last")
    assert again.id > last.id


async def test_unknown_users_are_refused(tags: TagService) -> None:
    """Every call names a registered user; nothing is created for another."""
    with pytest.raises(UserNotRegistered):
        await tags.list_tags("b" * 64)
    with pytest.raises(UserNotRegistered):
        await tags.change_mappings("b" * 64, Operation.ADD, [1], [])


# Mappings ----------------------------------------------------------------------------------------


async def test_mappings_are_grouped_by_download_and_ordered_by_tag_name(tags: TagService) -> None:
    """By download id, then tag name (binary), as TBM's query orders them."""
    keep = await tags.create_tag(USER, "keep")
    four_k = await tags.create_tag(USER, "4K")
    await tags.change_mappings(USER, Operation.ADD, [20, 3], [keep.id, four_k.id])
    listed = [(m.download_id, m.tag_name) for m in await tags.mappings(USER)]
    assert listed == [(3, "4K"), (3, "keep"), (20, "4K"), (20, "keep")]


async def test_add_remove_replace(tags: TagService) -> None:
    """add keeps what is there; remove takes the pairs; replace clears the downloads first."""
    a, b, c = [(await tags.create_tag(USER, n)).id for n in "abc"]
    await tags.change_mappings(USER, Operation.ADD, [1, 2], [a, b])
    await tags.change_mappings(USER, Operation.ADD, [1], [a])  # idempotent
    assert await pairs(tags) == {(1, a), (1, b), (2, a), (2, b)}
    await tags.change_mappings(USER, Operation.REMOVE, [1, 9], [b])
    assert await pairs(tags) == {(1, a), (2, a), (2, b)}
    await tags.change_mappings(USER, Operation.REPLACE, [2, 3], [c])
    assert await pairs(tags) == {(1, a), (2, c), (3, c)}
    await tags.change_mappings(USER, Operation.REPLACE, [1, 2], [])  # clears them
    assert await pairs(tags) == {(3, c)}
    await tags.change_mappings(USER, Operation.ADD, [5], [])  # a no-op
    await tags.change_mappings(USER, Operation.REMOVE, [3], [])  # a no-op
    assert await pairs(tags) == {(3, c)}


async def test_an_unknown_tag_refuses_the_whole_change(tags: TagService) -> None:
    """'One or more tag IDs are invalid', and nothing stored changes (replace included)."""
    a = (await tags.create_tag(USER, "a")).id
    await tags.change_mappings(USER, Operation.ADD, [1, 2], [a])
    for operation in Operation:
        with pytest.raises(InvalidArgument) as caught:
            await tags.change_mappings(USER, operation, [1, 2, 3], [a, a + 50])
        assert caught.value.message == "One or more tag IDs are invalid"
        assert caught.value.field == "tag_ids"
        assert await pairs(tags) == {(1, a), (2, a)}


async def test_repeated_ids_count_once_and_limits_hold(tags: TagService) -> None:
    """The service takes ids as a set; its own limits match the gateway's."""
    a = (await tags.create_tag(USER, "a")).id
    await tags.change_mappings(USER, Operation.ADD, [4, 4, 5], [a, a])
    assert await pairs(tags) == {(4, a), (5, a)}
    for downloads, tag_ids in (([], [a]), (list(range(1, 1002)), [a]), ([1], range(1, 102))):
        with pytest.raises(InvalidArgument):
            await tags.change_mappings(USER, Operation.ADD, downloads, list(tag_ids))
    with pytest.raises(InvalidArgument):
        await tags.change_mappings(USER, Operation.ADD, [0], [a])


async def test_tags_changed_follows_every_change_but_a_creation(
    tags: TagService, store: Store
) -> None:
    """PUT, DELETE and every accepted mapping change (even a no-op) publish it; POST and
    refused calls do not."""
    queue = store.hub.subscribe(USER)
    tag = await tags.create_tag(USER, "a")
    assert drained(queue) == []
    await tags.rename_tag(USER, tag.id, "b")
    assert drained(queue) == [TAGS_CHANGED]
    await tags.change_mappings(USER, Operation.REMOVE, [1], [tag.id])  # nothing to remove
    assert drained(queue) == [TAGS_CHANGED]
    for refused in (
        tags.change_mappings(USER, Operation.ADD, [1], [tag.id + 1]),
        tags.rename_tag(USER, tag.id + 1, "c"),
        tags.delete_tag(USER, tag.id + 1),
    ):
        with pytest.raises((InvalidArgument, NotFound)):
            await refused
    assert drained(queue) == []
    await tags.delete_tag(USER, tag.id)
    assert drained(queue) == [TAGS_CHANGED]


async def test_rules_read_every_write_of_the_tag_routes(tags: TagService, store: Store) -> None:
    """The tag sets rules read (never cached) follow every mapping change and tag deletion."""
    a = (await tags.create_tag(USER, "a")).id
    b = (await tags.create_tag(USER, "b")).id

    async def sets() -> dict[int, frozenset[int]]:
        async with store.pool.use(USER) as handle:
            return await rule_tags.load_mappings(handle)

    assert await sets() == {}
    await tags.change_mappings(USER, Operation.ADD, [1, 2], [a, b])
    assert await sets() == {1: frozenset({a, b}), 2: frozenset({a, b})}
    await tags.delete_tag(USER, b)
    assert await sets() == {1: frozenset({a}), 2: frozenset({a})}


# The SQL against a model ---------------------------------------------------------------------

DOWNLOADS = st.lists(st.integers(1, 6), min_size=1, max_size=4, unique=True)
TAG_IDS = st.lists(st.integers(1, 5), max_size=4, unique=True)  # 5 is never a tag
CHANGES = st.lists(st.tuples(st.sampled_from(list(Operation)), DOWNLOADS, TAG_IDS), max_size=12)


def _model(
    pairs: set[tuple[int, int]], operation: Operation, downloads: list[int], tag_ids: list[int]
) -> set[tuple[int, int]]:
    wanted = {(d, t) for d in downloads for t in tag_ids}
    if operation is Operation.ADD:
        return pairs | wanted
    if operation is Operation.REMOVE:
        return pairs - wanted
    return {p for p in pairs if p[0] not in downloads} | wanted


@settings(max_examples=150, deadline=None)
@given(CHANGES)
def test_changes_match_a_model_set(changes: list[tuple[Operation, list[int], list[int]]]) -> None:
    """Any sequence of add/remove/replace leaves exactly the model's pairs; a change naming an
    unknown tag leaves everything as it was."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn, USER_MIGRATIONS)
    conn.executemany(
        "INSERT INTO tags(id, name, created_at, updated_at) VALUES (?,?,0,0)",
        [(i, f"t{i}") for i in range(1, 5)],
    )
    model: set[tuple[int, int]] = set()
    for operation, downloads, tag_ids in changes:
        unknown = tag_store.apply_change(conn, operation, downloads, tag_ids, 1.0)
        if 5 in tag_ids:
            assert unknown == [5]
        else:
            assert unknown == []
            model = _model(model, operation, downloads, tag_ids)
        stored = set(conn.execute("SELECT download_id, tag_id FROM download_tags").fetchall())
        assert stored == model
    assert not conn.in_transaction
