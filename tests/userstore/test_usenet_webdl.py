"""Usenet and web downloads in the pure core: conditions, telemetry from progress, unknowns,
per-type id spaces, per-type listing and holds, and the validator's per-type answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidArgument
from tests.userstore.factory import CFG, T0, snap
from userstore_svc.core.models import (
    KIND_SPAN,
    TorrentSnapshot,
    TorrentState,
    item_key,
    split_key,
)
from userstore_svc.core.pipeline import PollInput, PollResult, run_poll
from userstore_svc.core.rules.evaluate import compile_rule
from userstore_svc.core.rules.plan import PlanInput, RuleEntry, SafetyConfig, plan
from userstore_svc.core.rules.schema import parse_rule

GiB = 1024**3
MiB = 1024**2
# What a usenet or web download has that a torrent also has; the rest TorBox does not send.
NOT_SENT = {
    "seeds": None,
    "peers": None,
    "ratio": None,
    "availability": None,
    "tracker": None,
    "total_uploaded": None,
    "total_downloaded": None,
    "seed_torrent": None,
    "long_term_seeding": None,
    "private": None,
    "magnet": None,
}


def download(kind: str = "usenet", **fields: Any) -> TorrentSnapshot:
    """A usenet (or web) download as the scheduler converts TorBox's item."""
    values: dict[str, Any] = {
        **NOT_SENT,
        "kind": kind,
        "size": GiB,
        "progress": 0.0,
        "airlocked": False,
        "allow_zipped": True,
        "original_url": "https://indexer.example/get/42.nzb",
        **fields,
    }
    return snap(**values)


class Polls:
    """Successive polls of one user listing the given types (torrents always)."""

    def __init__(self) -> None:
        self.states: dict[int, TorrentState] = {}
        self.pending: dict[int, tuple[int, bool]] = {}
        self.previous: float | None = None
        self.last: PollResult | None = None

    def poll(
        self, at: float, *items: TorrentSnapshot, kinds: tuple[str, ...] = ("usenet", "webdl")
    ) -> PollResult:
        result = run_poll(
            self.states,
            PollInput(
                observed_at=T0 + at,
                complete=True,
                torrents=items,
                max_gap=120.0,
                baseline=self.previous is None,
                pending_missing=self.pending,
                previous_at=self.previous,
                listed_kinds=frozenset({"torrent", *kinds}),
            ),
            CFG,
        )
        self.states, self.pending, self.previous, self.last = (
            result.states,
            result.pending_missing,
            T0 + at,
            result,
        )
        return result

    def types(self) -> list[str]:
        assert self.last is not None
        return [e.type for e in self.last.events]


def watched(*steps: TorrentSnapshot, every: float = 60.0) -> tuple[TorrentState, float]:
    """One download added after the first poll, then seen once per step."""
    polls = Polls()
    polls.poll(-every)
    for i, step in enumerate(steps):
        polls.poll(i * every, step)
    key = steps[-1].key
    return polls.states[key], T0 + (len(steps) - 1) * every


def check(
    condition: dict[str, Any],
    state: TorrentState,
    now: float,
    kind: str = "usenet",
    tags: frozenset[int] = frozenset(),
) -> bool | None:
    """One condition of a rule over `kind`, tested on a state (three-valued)."""
    doc = {
        "name": "r",
        "assetTypes": [kind],
        "groups": [{"logicOperator": "and", "conditions": [condition]}],
        "action": {"type": "delete"},
    }
    return compile_rule(parse_rule(doc)).test(state, now, {}, {}, tags)


# Added just before we first saw it: watched its whole life, so its times are exact.
BASE: dict[str, Any] = {"created_at": T0 - 60, "expires_at": T0 + 86_400, "file_count": 3}
MOVING = [download(progress=0.1 * i, download_speed=2 * MiB, eta=900, **BASE) for i in range(1, 4)]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # The 15 conditions TBM allows on usenet and web downloads.
        ({"type": "STATUS", "operator": "is_any_of", "value": ["downloading"]}, True),
        ({"type": "IS_ACTIVE", "operator": "is_true", "value": True}, True),
        ({"type": "IS_AIRLOCKED", "operator": "is_false", "value": True}, True),
        ({"type": "EXPIRES_AT", "operator": "lt", "value": 25}, True),
        ({"type": "ETA", "operator": "eq", "value": 15}, True),
        ({"type": "PROGRESS", "operator": "gte", "value": 30}, True),
        ({"type": "DOWNLOAD_SPEED", "operator": "eq", "value": 2}, True),
        ({"type": "AGE", "operator": "gt", "value": 0.04}, True),
        ({"type": "FILE_SIZE", "operator": "eq", "value": 1}, True),
        ({"type": "FILE_COUNT", "operator": "eq", "value": 3}, True),
        ({"type": "NAME", "operator": "contains", "value": "torrent"}, True),
        ({"type": "CACHED", "operator": "is_false", "value": True}, True),
        ({"type": "ALLOW_ZIP", "operator": "is_true", "value": True}, True),
        ({"type": "TAGS", "operator": "is_any_of", "value": [7]}, True),
        ({"type": "ORIGINAL_URL", "operator": "ends_with", "value": ".nzb"}, True),
        # Ours, from the progress history.
        ({"type": "DOWNLOADING_TIME", "operator": "gte", "value": 2 / 60}, True),
        ({"type": "ACTIVE_TIME", "operator": "gte", "value": 2 / 60}, True),
        ({"type": "DOWNLOAD_STALLED_TIME", "operator": "eq", "value": 0}, True),
        ({"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "lt", "value": 1}, True),
        ({"type": "STALL_COUNT", "operator": "eq", "value": 0}, True),
        ({"type": "PROGRESS_CHANGE", "operator": "gte", "value": 10, "hours": 0.03}, True),
        ({"type": "AVG_DOWNLOAD_SPEED", "operator": "gt", "value": 0.1, "hours": 0.03}, True),
        ({"type": "MAX_DOWNLOAD_SPEED", "operator": "eq", "value": 2}, True),
    ],
)
@pytest.mark.parametrize("kind", ["usenet", "webdl"])
def test_each_condition_on_a_download(condition: dict[str, Any], expected: bool, kind: str) -> None:
    """Every condition a usenet or web rule may use reads the download in TBM's unit."""
    steps = [s._replace(kind=kind) for s in MOVING]
    state, now = watched(*steps)
    assert check(condition, state, now, kind, frozenset({7})) is expected


def test_progress_is_the_activity_and_flat_progress_is_a_stall() -> None:
    """TorBox sends no byte counters for usenet: progress x size stands for them. A download
    whose progress stops stalls after the stall time (TORRENT_STALLED), and resumes when it
    moves again (TORRENT_RESUMED)."""
    polls = Polls()
    polls.poll(-60)
    polls.poll(0, download(progress=0.1, download_speed=MiB))
    key = download().key
    assert polls.states[key].snap.total_downloaded == round(0.1 * GiB)
    assert polls.states[key].snap.total_uploaded == 0
    for at in range(60, 660, 60):
        polls.poll(at, download(progress=0.2, download_speed=0))
    state = polls.states[key]
    assert polls.types() == []  # 600 s since the last movement: not yet
    polls.poll(660, download(progress=0.2, download_speed=0))
    assert polls.types() == ["TORRENT_STALLED"]
    stalled = polls.states[key]
    assert stalled.stalled_since == T0 + 60
    stalled_minutes = {"type": "DOWNLOAD_STALLED_TIME", "operator": "gte", "value": 10}
    assert check(stalled_minutes, stalled, T0 + 660) is True
    assert state.last_download_activity_at == T0 + 60
    polls.poll(720, download(progress=0.3, download_speed=MiB))
    assert polls.types() == ["TORRENT_RESUMED"]
    assert polls.states[key].stalled_since is None


def test_completed_and_failed_events() -> None:
    """A download that finishes emits TORRENT_COMPLETED; one that fails TORRENT_FAILED, once."""
    polls = Polls()
    polls.poll(-60)
    one, two = download(id=1, progress=0.5), download(id=2, progress=0.5)
    polls.poll(0, one, two)
    done = one._replace(
        progress=1.0, active=False, download_state="completed", download_finished=True
    )
    done = done._replace(download_present=True)
    failed = two._replace(active=False, download_state="failed")
    polls.poll(60, done, failed)
    assert sorted(polls.types()) == ["TORRENT_COMPLETED", "TORRENT_FAILED"]
    polls.poll(120, done, failed)
    assert polls.types() == []
    assert polls.states[failed.key].status == "failed"


def test_a_queued_usenet_item_is_unknown_not_zero() -> None:
    """A queued usenet item has no size and no progress: its counters, size, progress and stall
    time are unknown, and no condition over them matches, negated or not."""
    queued = download(queued=True, size=None, progress=None, active=None, download_state="queued")
    state, now = watched(queued, queued, queued)
    assert state.snap.total_downloaded is None
    assert state.status == "queued"
    for condition in (
        {"type": "FILE_SIZE", "operator": "lt", "value": 1},
        {"type": "PROGRESS", "operator": "lt", "value": 50},
        {"type": "DOWNLOAD_STALLED_TIME", "operator": "gte", "value": 0},
        {"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "gt", "value": 0},
        {"type": "PROGRESS_CHANGE", "operator": "lt", "value": 1, "hours": 1},
        {"type": "IS_ACTIVE", "operator": "is_false", "value": True},
    ):
        assert check(condition, state, now) is None
        assert check({**condition, "negate": True}, state, now) is None
    queued_status = {"type": "STATUS", "operator": "is_any_of", "value": ["queued"]}
    assert check(queued_status, state, now) is True


@given(
    kind=st.sampled_from(["torrent", "usenet", "webdl"]),
    item_id=st.integers(1, KIND_SPAN - 1),
    queued=st.booleans(),
)
def test_keys_round_trip_and_never_collide(kind: str, item_id: int, queued: bool) -> None:
    """Each (type, queued, id) has its own key; a torrent keeps its id as its key."""
    key = item_key(kind, item_id, queued)
    assert split_key(key) == (kind, item_id, queued)
    others = {
        item_key(k, item_id, q) for k in ("torrent", "usenet", "webdl") for q in (False, True)
    }
    assert len(others) == 6
    if kind == "torrent":
        assert key == (-item_id if queued else item_id)


def test_one_id_in_three_types_is_three_items() -> None:
    """Torrent 5, usenet 5 and web download 5 are three items with three histories."""
    polls = Polls()
    items = (snap(id=5), download(id=5), download("webdl", id=5))
    polls.poll(0, *items, kinds=("usenet", "webdl"))
    assert len(polls.states) == 3
    assert {split_key(k) for k in polls.states} == {
        ("torrent", 5, False),
        ("usenet", 5, False),
        ("webdl", 5, False),
    }


def test_a_type_not_listed_is_neither_seen_nor_missing() -> None:
    """A poll that did not fetch (or failed to fetch) the usenet list leaves usenet items as
    they were: not missing, not removed, and no hold."""
    polls = Polls()
    polls.poll(0, snap(id=1), download(id=2))
    usenet_key = download(id=2).key
    before = polls.states[usenet_key]
    for at in (60, 120, 180):
        result = polls.poll(at, snap(id=1), kinds=())
        assert result.removed == []
        assert result.hold_reason is None
    assert polls.states[usenet_key] == before


def test_a_collapsed_usenet_list_holds_usenet_deletes_only() -> None:
    """Usenet items vanishing at once make the usenet list suspicious: usenet deletes are held,
    a torrent delete in the same poll is sent."""
    polls = Polls()
    usenet = [download(id=i, download_state="failed", active=False) for i in range(2, 6)]
    polls.poll(0, snap(id=1), *usenet)
    polls.poll(60, snap(id=1), *usenet)
    result = polls.poll(120, snap(id=1), usenet[0])
    assert result.held_kinds == frozenset({"usenet"})
    assert result.hold_reason is not None
    assert "usenet downloads" in result.hold_reason
    doc = {
        "name": "delete",
        "assetTypes": ["torrent", "usenet"],
        "groups": [{"conditions": [{"type": "NAME", "operator": "contains", "value": "torrent"}]}],
        "action": {"type": "delete"},
    }
    out = plan(
        PlanInput(
            now=T0 + 120,
            states=result.states,
            events=[],
            rules=[RuleEntry(compile_rule(parse_rule(doc)), 1, None)],
            holds={},
            protected=frozenset(),
            limits={},
            last_actions={},
            pending=frozenset(),
            safety=SafetyConfig(max_destructive_per_poll=100, max_destructive_share=1.0),
            hold_reason=result.hold_reason,
            held_kinds=result.held_kinds,
            listed_kinds=frozenset({"torrent", "usenet"}),
        )
    )
    statuses = {split_key(i.key)[0]: i.status for i in out.intents}
    assert statuses == {"torrent": "pending", "usenet": "held"}


def test_rules_act_on_their_own_types_only() -> None:
    """A usenet rule never matches a torrent, nor a usenet item in a poll without its list."""
    polls = Polls()
    polls.poll(0, snap(id=1), download(id=1))
    polls.poll(60, snap(id=1), download(id=1))
    doc = {
        "name": "all",
        "assetTypes": ["usenet"],
        "groups": [{"conditions": [{"type": "NAME", "operator": "contains", "value": "torrent"}]}],
        "action": {"type": "add_tag", "tagIds": [1]},
    }
    entry = RuleEntry(compile_rule(parse_rule(doc)), 1, None)

    def keys(listed: frozenset[str]) -> list[int]:
        out = plan(
            PlanInput(
                now=T0 + 60,
                states=polls.states,
                events=[],
                rules=[entry],
                holds={},
                protected=frozenset(),
                limits={},
                last_actions={},
                pending=frozenset(),
                safety=SafetyConfig(),
                listed_kinds=listed,
                tags={},
            )
        )
        return [i.key for i in out.intents]

    assert keys(frozenset({"torrent", "usenet"})) == [download(id=1).key]
    assert keys(frozenset({"torrent"})) == []


@pytest.mark.parametrize(
    ("types", "condition", "message"),
    [
        (
            ["torrent", "usenet", "webdl"],
            "RATIO",
            "RATIO applies to torrents only; this rule's assetTypes include usenet, webdl",
        ),
        (
            ["webdl"],
            "SEEDS",
            "SEEDS applies to torrents only; this rule's assetTypes include webdl",
        ),
    ],
)
def test_the_validator_names_the_types_a_condition_does_not_fit(
    types: list[str], condition: str, message: str
) -> None:
    doc = {
        "name": "r",
        "assetTypes": types,
        "groups": [{"conditions": [{"type": condition, "operator": "gt", "value": 1}]}],
        "action": {"type": "delete"},
    }
    with pytest.raises(InvalidArgument, match=message):
        parse_rule(doc)


def test_our_derived_conditions_are_allowed_on_usenet_and_webdl() -> None:
    """DOWNLOAD_STALLED_TIME and PROGRESS_CHANGE (TBM: torrents only) save for usenet and webdl."""
    doc = {
        "name": "r",
        "assetTypes": ["usenet", "webdl"],
        "groups": [
            {
                "conditions": [
                    {"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 60},
                    {"type": "PROGRESS_CHANGE", "operator": "lt", "value": 1, "hours": 6},
                ]
            }
        ],
        "action": {"type": "add_tag", "tagIds": [1]},
    }
    assert parse_rule(doc).asset_types == ("usenet", "webdl")
