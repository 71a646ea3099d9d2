"""Tag rules over real SQLite: TAGS reads download_tags, add_tag / remove_tag write it locally,
a missing tag fails the batch as TBM does, and tags_changed reaches the user's live stream."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from tests.userstore.conftest import Store
from tests.userstore.factory import T0, snap
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.hub import TAGS_CHANGED, Item
from userstore_svc.ingest import INVALID_TAGS, PlanOut, SnapshotIn

USER = hashlib.sha256(b"tag-rules-user").hexdigest()
RATIO_1 = {"type": "RATIO", "operator": "gte", "value": 1}


def rule(name: str, action: dict[str, Any], *conditions: dict[str, Any], **extra: Any) -> Any:
    return {
        "name": name,
        "trigger": {"type": "interval", "value": 0},
        "groups": [{"logicOperator": "and", "conditions": list(conditions)}],
        "action": action,
        **extra,
    }


async def ingest(
    store: Store, at: float, *torrents: TorrentSnapshot, run_rule_id: int | None = None
) -> PlanOut:
    return await store.ingestor.ingest(
        SnapshotIn(f"poll-{at}", USER, T0 + at, True, list(torrents), 60, run_rule_id)
    )


async def sql(store: Store, statement: str, *params: Any) -> list[Any]:
    async with store.pool.use(USER) as handle:
        if statement.lstrip().upper().startswith("SELECT"):
            return await handle.fetchall(statement, params)
        await handle.transaction([(statement, params)])
        return []


def drained(queue: asyncio.Queue[Item]) -> list[str]:
    types = []
    while not queue.empty():
        item = queue.get_nowait()
        types.append(getattr(item, "type", "changed"))
    return types


@pytest.fixture
async def user(store: Store) -> Store:
    await store.users.register(USER, b"cipher")
    for tag_id, name in ((3, "4K"), (5, "keep")):
        await sql(store, "INSERT INTO tags(id, name, created_at, updated_at) VALUES (?,?,?,?)",
                  tag_id, name, T0, T0)  # fmt: skip
    return store


TORRENTS = (
    snap("seeding", id=1, ratio=2.0),
    snap("seeding", id=2, ratio=0.5),
    snap("seeding", id=3, ratio=2.0),
)


async def test_add_tag_tags_matching_torrents_once_and_emits_tags_changed(user: Store) -> None:
    """Matching torrents get every target tag in the poll's own transaction, TorBox is not
    asked, protection does not hold it back, and tags_changed goes out only when tags changed."""
    await sql(user, "INSERT INTO download_tags VALUES (3, 3, ?), (3, 5, ?)", T0, T0)
    await sql(user, "INSERT INTO protected_downloads(torrent_id, protected_at) VALUES (1, ?)", T0)
    await user.rules.save_all(USER, [rule("tag", {"type": "add_tag", "tagIds": [3, 5]}, RATIO_1)])
    queue = user.hub.subscribe(USER)
    plan = await ingest(user, 0, *TORRENTS)
    assert plan.actions == []  # nothing for the scheduler to send
    mapped = await sql(user, "SELECT download_id, tag_id FROM download_tags ORDER BY 1, 2")
    assert mapped == [(1, 3), (1, 5), (3, 3), (3, 5)]
    assert TAGS_CHANGED in drained(queue)
    actions = await sql(user, "SELECT torrent_key, action, status, error_code FROM actions")
    assert actions == [(1, "add_tag", "succeeded", None)]
    logs = await sql(user, "SELECT items_processed, success, error_message FROM rule_logs "
                     "WHERE execution_type='scheduled'")  # fmt: skip
    assert logs == [(1, 1, "skipped: 1 already tagged")]

    await ingest(user, 60, *TORRENTS)
    assert TAGS_CHANGED not in drained(queue)  # everything already tagged: nothing changed


async def test_remove_tag_and_tags_condition_read_the_mappings(user: Store) -> None:
    """remove_tag unmaps only the tagged; a TAGS condition selects by the stored mappings."""
    await sql(user, "INSERT INTO download_tags VALUES (1, 5, ?), (2, 3, ?)", T0, T0)
    is_tagged_3 = {"type": "TAGS", "operator": "is_any_of", "value": ["3"]}
    await user.rules.save_all(
        USER,
        [
            rule("untag", {"type": "remove_tag", "tagIds": [5]}, RATIO_1),
            rule("stop tagged", {"type": "stop_seeding"}, is_tagged_3),
        ],
    )
    plan = await ingest(user, 0, *TORRENTS)
    assert [(a.torrent_id, a.action) for a in plan.actions] == [(2, "stop_seeding")]
    assert await sql(user, "SELECT download_id, tag_id FROM download_tags") == [(2, 3)]


async def test_a_missing_tag_fails_the_batch_and_changes_nothing(user: Store) -> None:
    """A tag deleted since the rule was saved: TBM's error in the rule log, nothing mapped."""
    await user.rules.save_all(USER, [rule("tag", {"type": "add_tag", "tagIds": [3, 9]}, RATIO_1)])
    queue = user.hub.subscribe(USER)
    await ingest(user, 0, *TORRENTS)
    assert await sql(user, "SELECT * FROM download_tags") == []
    assert TAGS_CHANGED not in drained(queue)
    logs = await sql(user, "SELECT success, error_message FROM rule_logs "
                     "WHERE execution_type='scheduled'")  # fmt: skip
    assert logs == [(0, INVALID_TAGS)]
    actions = await sql(user, "SELECT torrent_key, status, error_code, error_message FROM actions")
    assert actions == [
        (1, "failed", "INVALID_TAG_IDS", INVALID_TAGS),
        (3, "failed", "INVALID_TAG_IDS", INVALID_TAGS),
    ]


async def test_manual_run_and_dry_run(user: Store) -> None:
    """A manual run of a disabled tag rule acts; a dry run records and changes nothing."""
    saved = await user.rules.save_all(
        USER,
        [
            rule("manual", {"type": "add_tag", "tagIds": [5]}, RATIO_1, enabled=False),
            rule("dry", {"type": "add_tag", "tagIds": [3]}, RATIO_1, dry_run=True),
        ],
    )
    queue = user.hub.subscribe(USER)
    await ingest(user, 0, *TORRENTS)
    assert await sql(user, "SELECT * FROM download_tags") == []
    assert TAGS_CHANGED not in drained(queue)
    dry = await sql(user, "SELECT DISTINCT status FROM actions WHERE action='add_tag'")
    assert dry == [("dry_run",)]

    plan = await ingest(user, 60, *TORRENTS, run_rule_id=saved[0]["id"])
    assert plan.run_summary is not None
    assert plan.run_summary.processed == 2
    assert await sql(user, "SELECT download_id, tag_id FROM download_tags ORDER BY 1") == [
        (1, 5),
        (3, 5),
    ]
    assert TAGS_CHANGED in drained(queue)


async def test_a_rule_over_torrents_and_usenet_acts_on_listed_torrents(user: Store) -> None:
    """A rule over torrents and usenet saves as written and acts on the torrents listed (no
    usenet list in these snapshots: nothing of usenet is touched)."""
    saved = await user.rules.save_all(
        USER,
        [
            rule(
                "both",
                {"type": "add_tag", "tagIds": [3]},
                {"type": "TAGS", "operator": "is_not_set", "value": []},
                assetTypes=["usenet", "torrent"],
            )
        ],
    )
    assert saved[0]["assetTypes"] == ["torrent", "usenet"]
    assert "unsupported_asset_types" not in saved[0]
    await ingest(user, 0, *TORRENTS)
    assert len(await sql(user, "SELECT * FROM download_tags")) == 3
