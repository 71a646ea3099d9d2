"""Rule ids are never reused; rule metadata is bounded per rule and per user (issue 20, 5 and 7)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from common.errors import InvalidArgument
from tests.userstore.conftest import Store, close_store, open_store
from userstore_svc.core.rules.schema import MAX_METADATA_BYTES
from userstore_svc.rules_service import MAX_USER_METADATA_BYTES

USER = hashlib.sha256(b"bounds-user").hexdigest()


def rule(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "interval", "value": 0},
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "RATIO", "operator": "gte", "value": 1}],
            }
        ],
        "action": {"type": "pause"},
        **extra,
    }


def blob(size: int) -> dict[str, str]:
    """Metadata whose compact JSON is exactly `size` bytes."""
    return {"x": "y" * (size - len('{"x":""}'))}


@pytest.fixture
async def user(store: Store) -> Store:
    await store.users.register(USER, b"cipher")
    return store


async def ids(store: Store) -> list[int]:
    return [r["id"] for r in await store.rules.list_rules(USER)]


async def test_a_deleted_rules_id_is_never_given_again(user: Store) -> None:
    """Deleted by DELETE or left out of a replace-all: a later rule gets a higher id."""
    saved = await user.rules.save_all(USER, [rule("a"), rule("b"), rule("c")])
    a, b, c = (r["id"] for r in saved)
    await user.rules.delete(USER, c)
    (new,) = [
        r for r in await user.rules.save_all(USER, [*saved[:2], rule("d")]) if r["name"] == "d"
    ]
    assert new["id"] > c
    again = await user.rules.save_all(USER, [saved[0]])
    assert [r["id"] for r in again] == [a]
    (last,) = [
        r for r in await user.rules.save_all(USER, [saved[0], rule("e")]) if r["name"] == "e"
    ]
    assert last["id"] > new["id"] > b


async def test_the_high_water_mark_survives_a_restart(tmp_path: Path) -> None:
    """The mark is stored, not remembered: a reopened store still skips deleted ids."""
    store = await open_store(tmp_path)
    await store.users.register(USER, b"cipher")
    saved = await store.rules.save_all(USER, [rule("a"), rule("b")])
    await store.rules.save_all(USER, saved[:1])
    await close_store(store)
    store = await open_store(tmp_path)
    try:
        (new,) = [
            r for r in await store.rules.save_all(USER, [saved[0], rule("c")]) if r["name"] == "c"
        ]
        assert new["id"] > saved[1]["id"]
    finally:
        await close_store(store)


async def test_ids_in_the_action_log_are_not_reused(user: Store) -> None:
    """A database from before the mark: ids its action log names (cooldowns) are skipped too."""
    await user.rules.save_all(USER, [rule("a")])
    async with user.pool.use(USER) as handle:
        await handle.transaction(
            [
                (
                    "INSERT INTO actions(rule_id, rule_name, torrent_key, hash, name, action, "
                    "dry_run, status, reason, created_at) VALUES (7,'gone',1,'h','n','pause',0,"
                    "'sent','r',0)",
                    (),
                ),
                ("DELETE FROM meta WHERE key = 'rules_last_id'", ()),
            ]
        )
    saved = await user.rules.save_all(USER, [*(await user.rules.list_rules(USER)), rule("b")])
    assert saved[-1]["id"] == 8


async def test_metadata_over_the_rule_bound_is_refused_naming_the_field(user: Store) -> None:
    """Exactly the bound is stored; one byte more is a 400 naming metadata."""
    (saved,) = await user.rules.save_all(USER, [rule("a", metadata=blob(MAX_METADATA_BYTES))])
    assert saved["metadata"] == blob(MAX_METADATA_BYTES)
    with pytest.raises(InvalidArgument) as refused:
        await user.rules.save_all(USER, [rule("a", metadata=blob(MAX_METADATA_BYTES + 1))])
    assert refused.value.field == "rules[0].metadata"
    with pytest.raises(InvalidArgument) as refused:
        await user.rules.update(USER, saved["id"], {"metadata": blob(MAX_METADATA_BYTES + 1)})
    assert refused.value.field == "metadata"


async def test_metadata_is_bounded_per_user(user: Store) -> None:
    """Rules each within the bound cannot together exceed the user's total, by save or by PUT."""
    per_rule = MAX_METADATA_BYTES
    fitting = MAX_USER_METADATA_BYTES // per_rule
    docs = [rule(f"r{i}", metadata=blob(per_rule)) for i in range(fitting)]
    saved = await user.rules.save_all(USER, [*docs, rule("small")])
    with pytest.raises(InvalidArgument) as refused:
        await user.rules.save_all(USER, [*docs, rule("one more", metadata=blob(per_rule))])
    assert refused.value.field == f"rules[{fitting}].metadata"
    with pytest.raises(InvalidArgument) as refused:
        await user.rules.update(USER, saved[-1]["id"], {"metadata": blob(per_rule)})
    assert refused.value.field == "metadata"
    assert len(await user.rules.list_rules(USER)) == fitting + 1


async def test_rows_stored_too_big_do_not_break_reads(user: Store) -> None:
    """A row written before the bound (1 MB of metadata) still lists, runs and can be saved."""
    (saved,) = await user.rules.save_all(USER, [rule("old")])
    document = json.dumps({**rule("old"), "enabled": True, "metadata": blob(1_000_000)})
    async with user.pool.use(USER) as handle:
        await handle.transaction(
            [("UPDATE rules SET document=? WHERE id=?", (document, saved["id"]))]
        )
        handle.cache.clear()
    (listed,) = await user.rules.list_rules(USER)
    assert listed["name"] == "old"
    assert listed["metadata"] is None
    updated = await user.rules.update(USER, saved["id"], {"enabled": False})
    assert updated["enabled"] is False
    async with user.pool.use(USER) as handle:
        ((size,),) = await handle.fetchall("SELECT LENGTH(document) FROM rules")
    assert size < MAX_METADATA_BYTES
