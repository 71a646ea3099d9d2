"""No wrong destructive action: one test per hazard the review found, in the pure core.

Each test names the review's item (issue 14). They run the real pipeline (diff, telemetry), the
real rule compiler and the real planner on values built the way TorBox sends them; where the
scheduler's parser is involved, TorBox's JSON goes through it and the protobuf conversion too.
"""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_svc.torbox import parse
from tests.userstore.factory import T0, Feed, snap
from userstore_svc.convert import torrent_snapshot
from userstore_svc.core import telemetry
from userstore_svc.core.models import PipelineConfig, TorrentSnapshot, TorrentState
from userstore_svc.core.rules.evaluate import compile_rule
from userstore_svc.core.rules.fields import FIELDS, AtLeast
from userstore_svc.core.rules.plan import (
    PlanInput,
    PlanOutput,
    RuleEntry,
    SafetyConfig,
    plan,
)
from userstore_svc.core.rules.schema import parse_rule
from userstore_svc.core.status import STATE_TABLE, derive_status

MINUTE = 60.0
HOUR = 3600.0


def rule(*conditions: dict[str, Any], action: str = "delete", **options: Any) -> RuleEntry:
    """An enabled interval rule with one AND group (rule id 1 unless `rule_id` is given)."""
    rule_id = options.pop("rule_id", 1)
    groups = options.pop("groups", None) or [
        {"logicOperator": "and", "conditions": list(conditions)}
    ]
    doc = {
        "name": f"rule {rule_id}",
        "trigger": options.pop("trigger", {"type": "interval", "value": 0}),
        "groups": groups,
        "action": {"type": action},
        **options,
    }
    return RuleEntry(compile_rule(parse_rule(doc)), rule_id, None)


def planned(
    entries: list[RuleEntry],
    states: dict[int, TorrentState],
    now: float,
    **kwargs: Any,
) -> PlanOutput:
    """The planner's output for one poll."""
    return plan(
        PlanInput(
            now=now,
            states=states,
            events=kwargs.pop("events", []),
            rules=entries,
            holds=kwargs.pop("holds", {}),
            protected=kwargs.pop("protected", frozenset()),
            limits={},
            last_actions=kwargs.pop("last_actions", {}),
            pending=frozenset(),
            safety=kwargs.pop("safety", SafetyConfig()),
            **kwargs,
        )
    )


class Account:
    """A user's polls through the pipeline and the planner, holds and cooldowns carried over."""

    def __init__(self, *entries: RuleEntry, interval: float = 60.0, **cfg: Any) -> None:
        self.feed = Feed(PipelineConfig(stall_after_seconds=600.0, **cfg), interval=interval)
        self.entries = list(entries)
        self.holds: dict[int, dict[int, dict[str, float]]] = {}
        self.last_actions: dict[tuple[int, int], float] = {}
        self.protected: frozenset[int] = frozenset()
        self.sent: list[tuple[float, int, str]] = []
        self.held: list[tuple[float, int, str]] = []
        self.deferred: dict[int, dict[int, float]] = {}

    def poll(self, at: float, *torrents: TorrentSnapshot, complete: bool = True) -> PlanOutput:
        """One poll at `at` seconds after T0; pending actions are taken as sent and succeeded."""
        result = self.feed.poll(at, *torrents, complete=complete)
        out = planned(
            self.entries,
            result.states,
            T0 + at,
            events=result.events,
            holds=self.holds,
            protected=self.protected,
            last_actions=self.last_actions,
            hold_reason=result.hold_reason,
            deferred=self.deferred,
        )
        self.holds = out.holds
        self.deferred = out.deferred
        for intent in out.intents:
            if intent.status == "held":
                # A held intent is not recorded (ingest.py): it starts no cooldown.
                self.held.append((at, intent.key, intent.action))
                continue
            self.last_actions[(intent.rule_id, intent.key)] = T0 + at
            self.sent.append((at, intent.key, intent.action))
        return out

    def sent_to(self, key: int) -> list[tuple[float, int, str]]:
        """The actions sent to one torrent."""
        return [s for s in self.sent if s[1] == key]


# 1. A negated condition held for a while means "not X, for that long".


def test_negated_held_condition_waits_for_the_negated_test_to_hold() -> None:
    """{SEEDS gt 0, negate, for 60 min}: never on a torrent with seeds; after an hour without."""
    no_seeds_for_an_hour = {
        "type": "SEEDS",
        "operator": "gt",
        "value": 0,
        "negate": True,
        "for_minutes": 60,
    }
    account = Account(rule(no_seeds_for_an_hour))
    for minute in range(0, 121, 5):
        account.poll(
            minute * MINUTE, snap("seeding", id=1, seeds=4), snap("seeding", id=2, seeds=0)
        )
    assert account.sent_to(1) == []
    assert account.sent_to(2)[0] == (60 * MINUTE, 2, "delete")


def test_a_negated_group_holds_its_conditions_as_negated() -> None:
    """NOT (SEEDS gt 0 for 60 min) is "no seeds for 60 min", pushed down to the condition."""
    groups = [
        {
            "logicOperator": "and",
            "negate": True,
            "conditions": [{"type": "SEEDS", "operator": "gt", "value": 0, "for_minutes": 60}],
        }
    ]
    account = Account(rule(groups=groups))
    for minute in range(0, 61, 5):
        account.poll(
            minute * MINUTE, snap("seeding", id=1, seeds=4), snap("seeding", id=2, seeds=0)
        )
    assert account.sent_to(1) == []
    assert [s[0] for s in account.sent_to(2)] == [60 * MINUTE]


def test_an_unknown_value_ends_a_negated_hold() -> None:
    """A poll where TorBox sent no seed count breaks "no seeds for an hour": it starts again."""
    account = Account(
        rule({"type": "SEEDS", "operator": "gt", "value": 0, "negate": True, "for_minutes": 60})
    )
    for minute in range(0, 111, 5):
        seeds = None if minute == 40 else 0
        account.poll(minute * MINUTE, snap("seeding", id=1, seeds=seeds), snap(id=2))
    assert [s[0] for s in account.sent_to(1)] == [(45 + 60) * MINUTE]


# 3 and 11. What TorBox did not say is unknown, from its JSON to the condition.


def _parsed(item: dict[str, Any], queued: bool = False) -> TorrentSnapshot:
    """TorBox JSON through the scheduler's parser and the protobuf conversion."""
    message = parse.queued(item) if queued else parse.torrent(item)
    assert message is not None
    return torrent_snapshot(message)


MYLIST_ITEM: dict[str, Any] = {
    "id": 5,
    "hash": "c" * 40,
    "name": "Fresh.Magnet",
    "magnet": "magnet:?xt=urn:btih:" + "c" * 40,
    "size": 2_000_000_000,
    "active": True,
    "created_at": "2027-01-15T10:00:00Z",
    "updated_at": "2027-01-15T10:00:00Z",
    "download_state": "downloading",
    "seeds": 3,
    "peers": 2,
    "ratio": 0.0,
    "progress": 0.2,
    "download_speed": 100,
    "upload_speed": 0,
    "eta": 600,
    "download_present": False,
    "download_finished": False,
    "files": [{"id": 0, "name": "a.mkv", "size": 2_000_000_000}],
    "availability": 1.0,
    "total_uploaded": 0,
    "total_downloaded": 400_000_000,
    "cached": False,
    "seed_torrent": True,
    "long_term_seeding": False,
    "private": False,
}
META_DL = {**MYLIST_ITEM, "size": 0, "files": [], "download_state": "metaDL", "progress": 0}
QUEUED_ITEM = {
    "id": 77,
    "auth_id": "u",
    "created_at": "2027-01-15T10:00:00Z",
    "magnet": "magnet:?xt=urn:btih:" + "d" * 40,
    "torrent_file": None,
    "hash": "d" * 40,
    "name": "Queued.Item",
    "type": "torrent",
}


def _watched(*torrents: TorrentSnapshot, minutes: int = 5) -> tuple[dict[int, TorrentState], float]:
    feed = Feed()
    for minute in range(minutes + 1):
        feed.poll(minute * MINUTE, *torrents)
    return feed.states, T0 + minutes * MINUTE


def test_a_magnet_fetching_metadata_and_a_queued_item_have_no_size_and_are_not_deleted() -> None:
    """FILE_SIZE lt 0.05 -> delete: the metaDL magnet and the queued item are unknown, not 0."""
    meta, queued = _parsed(META_DL), _parsed(QUEUED_ITEM, queued=True)
    assert (meta.size, meta.file_count) == (None, None)
    assert (queued.size, queued.seeds, queued.eta, queued.cached, queued.active) == (None,) * 5
    small = snap(id=9, size=10_000_000)
    states, now = _watched(meta, queued, small)
    out = planned([rule({"type": "FILE_SIZE", "operator": "lt", "value": 0.05})], states, now)
    assert [(i.key, i.action) for i in out.intents] == [(9, "delete")]


@pytest.mark.parametrize(
    "field", ["seeds", "peers", "progress", "ratio", "eta", "availability", "total_downloaded"]
)
def test_a_null_number_stays_unknown(field: str) -> None:
    """Any number TorBox sends as null is unset after parsing, not 0."""
    parsed = _parsed({**MYLIST_ITEM, field: None})
    assert getattr(parsed, field) is None


def test_null_seeds_and_progress_delete_nothing() -> None:
    """ "SEEDS < 1 and PROGRESS < 100 -> delete" with 2 of 12 items null: only the real match."""
    items = [{**MYLIST_ITEM, "id": i, "hash": f"{i:040x}"} for i in range(1, 13)]
    items[0] = {**items[0], "seeds": None, "progress": None}
    items[1] = {**items[1], "seeds": None, "progress": None}
    items[2] = {**items[2], "seeds": 0, "progress": 0.3}
    states, now = _watched(*(_parsed(i) for i in items))
    out = planned(
        [
            rule(
                {"type": "SEEDS", "operator": "lt", "value": 1},
                {"type": "PROGRESS", "operator": "lt", "value": 100},
            )
        ],
        states,
        now,
    )
    assert [i.key for i in out.intents] == [3]


def test_null_flags_match_neither_true_nor_false() -> None:
    """A flag TorBox sent as null matches neither is_true nor is_false, nor their negations."""
    parsed = _parsed({**MYLIST_ITEM, "cached": None, "private": None})
    states, now = _watched(parsed)
    for operator in ("is_true", "is_false"):
        for negate in (False, True):
            condition = {"type": "CACHED", "operator": operator, "negate": negate}
            assert planned([rule(condition)], states, now).intents == []


# 4. Every download_state in one table.

EXPECTED_STATUS = {
    # text: (status with active, finished False, present False; with active, finished, present)
    "downloading": ("downloading", "seeding"),
    "forcedDL": ("downloading", "seeding"),
    "stalled (no seeds)": ("stalled", "seeding"),
    "stalledDL": ("stalled", "seeding"),
    "metaDL": ("metadl", "metadl"),
    "queuedDL": ("queued", "queued"),
    "queuedUP": ("queued", "queued"),
    "checkingDL": ("checking", "checking"),
    "checkingUP": ("checking", "checking"),
    "checkingResumeData": ("checking", "checking"),
    "allocating": ("checking", "checking"),
    "moving": ("checking", "checking"),
    "pausedDL": ("paused", "paused"),
    "pausedUP": ("paused", "paused"),
    "stoppedDL": ("paused", "paused"),
    "stoppedUP": ("paused", "paused"),
    "error": ("failed", "failed"),
    "missingFiles": ("failed", "failed"),
    "failed (tracker error)": ("failed", "failed"),
    "uploading": ("downloading", "seeding"),
    "uploading (no peers)": ("downloading", "seeding"),
    "stalledUP": ("downloading", "seeding"),
    "forcedUP": ("downloading", "seeding"),
    "completed": ("inactive", "completed"),
    "cached": ("inactive", "completed"),
    "something new": ("unknown", "unknown"),
}


@pytest.mark.parametrize(("text", "expected"), sorted(EXPECTED_STATUS.items()))
def test_every_download_state_has_one_status(text: str, expected: tuple[str, str]) -> None:
    """The table, with TorBox's flags: downloading-side and finished-side."""
    fresh = derive_status(
        queued=False, active=True, download_state=text, finished=False, present=False
    )
    done = derive_status(
        queued=False, active=True, download_state=text, finished=True, present=True
    )
    assert (fresh, done) == expected


def test_the_table_covers_every_state_the_research_lists() -> None:
    """No state TorBox is known to send falls through to "unknown"."""
    for text in EXPECTED_STATUS:
        if text != "something new":
            assert (
                derive_status(
                    queued=False, active=True, download_state=text, finished=False, present=False
                )
                != "unknown"
            ), text
    assert "queueddl" in STATE_TABLE


@pytest.mark.parametrize("text", ["queuedDL", "checkingDL", "allocating", "moving", "metaDL"])
def test_waiting_items_never_stall_or_get_archived(text: str) -> None:
    """Queued, checking, allocating, moving and metaDL items with active=true never stall."""
    account = Account(
        rule({"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 30}, action="archive"),
        interval=600,
    )
    waiting = snap(id=1, download_state=text, active=True)
    for minute in range(0, 8 * 60, 10):
        account.poll(minute * MINUTE, waiting, snap(id=2, total_downloaded=minute * 1000))
    assert account.sent == []
    assert account.feed.state(1).stall_count == 0


def test_completed_and_cached_items_flagged_active_are_not_seeding() -> None:
    """No stop_seeding for a `completed`/`cached` item TorBox flags active, poll after poll."""
    account = Account(
        rule({"type": "RATIO", "operator": "gte", "value": 0}, action="stop_seeding"), interval=600
    )
    done: dict[str, Any] = {
        "download_finished": True,
        "download_present": True,
        "active": True,
        "ratio": 2.0,
    }
    for minute in range(0, 180, 10):
        account.poll(
            minute * MINUTE,
            snap(id=1, download_state="completed", **done),
            snap(id=2, download_state="cached", **done),
            snap("seeding", id=3, ratio=2.0),
        )
    assert [s[1] for s in account.sent] == [3, 3, 3, 3, 3, 3]  # only the real seed, per cooldown
    assert account.feed.state(1).seeding_seconds == 0.0


# 5. Protection covers the id TBM shows.


def test_protecting_a_queued_item_protects_it() -> None:
    """TBM protects queued item 77 by its queued id: it is never deleted; torrent 78 is."""
    account = Account(rule({"type": "NAME", "operator": "contains", "value": "e"}))
    account.protected = frozenset({77})
    queued = snap("queued", id=77, name="Queued.Item")
    other = snap("queued", id=78, name="Other.Item")
    for minute in range(3):
        account.poll(minute * MINUTE, queued, other, snap(id=1, name="Torrent"))
    assert {s[1] for s in account.sent} == {-78, 1}


def test_protection_follows_the_hash_from_queue_to_torrent() -> None:
    """A protected queued item that TorBox starts (new torrent id, same hash) stays protected."""
    account = Account(rule({"type": "NAME", "operator": "contains", "value": "Item"}))
    account.protected = frozenset({77})
    account.poll(0, snap("queued", id=77, name="Item", hash="e" * 40), snap(id=1))
    started = snap(id=501, name="Item", hash="e" * 40)
    for minute in range(1, 5):
        account.poll(minute * MINUTE, started, snap(id=1))
    assert account.sent == []


# 6. No activity while watched is known to be "at least that long".


def test_last_activity_of_a_torrent_that_never_moved_is_a_lower_bound() -> None:
    """A torrent watched 31 minutes without moving a byte: "gt 30" is true, "lt 60" unknown."""
    account = Account(
        rule({"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "gt", "value": 30}),
    )
    for minute in range(32):
        account.poll(minute * MINUTE, snap("stalled", id=1), snap(id=2, total_downloaded=minute))
    assert [s[0] for s in account.sent] == [31 * MINUTE]
    lt = planned(
        [rule({"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "lt", "value": 60})],
        account.feed.states,
        T0 + 31 * MINUTE,
    )
    assert [i.key for i in lt.intents] == [2]


def test_last_activity_is_unknown_while_torbox_sends_no_counter() -> None:
    """With total_downloaded null now, bytes may be moving: no "idle for N minutes" match."""
    account = Account(rule({"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "gt", "value": 5}))
    account.poll(0, snap(id=1, total_downloaded=10), snap(id=2))
    for minute in range(1, 20):
        account.poll(minute * MINUTE, snap(id=1, total_downloaded=None), snap(id=2))
    assert account.sent_to(1) == []


# 7. Outages are excluded from a stall once, not twice.


def test_stall_after_an_outage_is_neither_late_nor_short() -> None:
    """Idle 5 min, a 30-min outage, then idle again: stalled after 10 observed minutes."""
    feed = Feed(interval=60)
    feed.poll(-60)
    stuck = snap(id=1, total_downloaded=100, created_at=T0)
    for minute in range(6):
        feed.poll(minute * MINUTE, stuck)
    feed.poll(35 * MINUTE, stuck)  # the outage: no poll between minute 5 and minute 35
    for minute in range(36, 41):
        feed.poll(minute * MINUTE, stuck)
        if feed.state(1).stalled_since is not None:
            break
    # 5 observed idle minutes before the outage and 5 after: stalled at minute 40, not 70.
    assert minute == 40
    for minute in range(41, 46):
        feed.poll(minute * MINUTE, stuck)
    assert telemetry.stalled_time(feed.state(1), T0 + 45 * MINUTE) == pytest.approx(15 * MINUTE)


# 8 and 10. A torrent seen before is never "added" again; glitches confirm nothing.

ADDED_SAMPLE = rule(
    {"type": "NAME", "operator": "matches", "value": "^sample"},
    trigger={"type": "event", "events": ["TORRENT_ADDED"]},
)


@pytest.mark.parametrize(
    "glitch",
    [
        [[]],  # one empty list
        [[], []],  # two in a row
        [["keep"]],  # a partial list on a small account
        [["keep"], ["keep"]],
        [["keep", "sample-1"]],  # one torrent missing for one poll
    ],
)
def test_a_list_glitch_never_makes_healthy_torrents_new(glitch: list[list[str]]) -> None:
    """ "On TORRENT_ADDED delete ^sample": the returning samples are not added; a new one is."""
    torrents = {
        "keep": snap(id=1, name="keep"),
        "sample-1": snap(id=2, name="sample-1"),
        "sample-2": snap(id=3, name="sample-2"),
    }
    account = Account(ADDED_SAMPLE)
    at = 0.0
    account.poll(at, *torrents.values())
    for listed in glitch:
        at += MINUTE
        account.poll(at, *(torrents[name] for name in listed))
    for _ in range(15):
        at += MINUTE
        account.poll(at, *torrents.values())
    assert account.sent == []
    at += MINUTE
    account.poll(at, *torrents.values(), snap(id=4, name="sample-new"))
    assert account.sent == [(at, 4, "delete")]


# 9. The blast-radius cap sees what the rules matched.


def test_a_runaway_rule_with_a_per_run_limit_is_held_not_drip_fed() -> None:
    """A delete rule matching all 20 torrents, max 2 per run: nothing deleted, poll after poll."""
    account = Account(
        rule({"type": "SEEDS", "operator": "gte", "value": 0}, max_actions_per_run=2),
    )
    torrents = [snap(id=i) for i in range(1, 21)]
    for minute in range(12):
        out = account.poll(minute * MINUTE, *torrents)
    assert account.sent == []
    assert len(account.held) == 2 * 12
    assert out.events[0].type == "AUTOMATION_HELD"


# 12. A young account's history is not "long enough".


def test_a_six_hour_stall_rule_saved_on_a_new_account_does_not_act() -> None:
    """Stalled torrents at the first poll: a 6-hour stall rule a minute later matches nothing."""
    account = Account(
        rule({"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 360}, action="archive"),
        rule(
            {"type": "UPLOAD_STALLED_TIME", "operator": "gt", "value": 360},
            action="archive",
            rule_id=2,
        ),
        rule(
            {"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "gt", "value": 360},
            action="archive",
            rule_id=3,
        ),
        # "No download speed for 6 hours", as TBM's editor writes it.
        rule(
            {
                "type": "DOWNLOAD_SPEED",
                "operator": "gt",
                "value": 0,
                "negate": True,
                "for_minutes": 360,
            },
            action="archive",
            rule_id=4,
        ),
        rule(
            {"type": "STATUS", "operator": "is_any_of", "value": ["stalled"], "for_minutes": 360},
            action="archive",
            rule_id=5,
        ),
    )
    # One stalled torrent among healthy ones: no blast-radius cap can hide a wrong action.
    stalled = [snap("stalled", id=1, download_speed=0)]
    seeding = [snap("seeding", id=i) for i in range(2, 10)]
    for minute in range(30):
        account.poll(minute * MINUTE, *stalled, *seeding)
    assert account.sent == []
    assert account.held == []


# Suspected: lower bounds, held events, interval switches.


def test_a_lower_bound_decides_gt_but_not_lt() -> None:
    """Seeding since before our first poll: SEEDING_TIME is "at least"; lt is unknown."""
    states, now = _watched(snap("seeding", id=1), minutes=90)
    value = FIELDS["SEEDING_TIME"].get(states[1], now, None)
    assert isinstance(value, AtLeast)
    assert value == pytest.approx(1.5)
    gt = planned([rule({"type": "SEEDING_TIME", "operator": "gt", "value": 1})], states, now)
    assert [i.key for i in gt.intents] == [1]
    for operator in ("lt", "lte", "eq"):
        condition = {"type": "SEEDING_TIME", "operator": operator, "value": 2}
        assert planned([rule(condition)], states, now).intents == []
    # Past the bound, lt is known false: its negation is known true.
    negated = {"type": "SEEDING_TIME", "operator": "lt", "value": 1, "negate": True}
    assert [i.key for i in planned([rule(negated)], states, now).intents] == [1]


def test_exact_times_for_a_torrent_watched_from_its_arrival() -> None:
    """Added after the account's first poll: its seeding time is exact, and lt decides."""
    feed = Feed()
    feed.poll(-60)
    for minute in range(31):
        feed.poll(minute * MINUTE, snap("seeding", id=1, created_at=T0))
    out = planned(
        [rule({"type": "SEEDING_TIME", "operator": "lt", "value": 1})],
        feed.states,
        T0 + 30 * MINUTE,
    )
    assert [i.key for i in out.intents] == [1]


def test_a_held_event_waits_for_a_poll_that_may_act_then_acts_once() -> None:
    """TORRENT_ADDED during a glitch: held while unconfirmed, kept, acted on once after."""
    account = Account(ADDED_SAMPLE)
    torrents = [snap(id=i, name=f"t{i}") for i in range(1, 7)]
    account.poll(0, *torrents)
    out = account.poll(MINUTE, torrents[0], snap(id=10, name="sample-x"))
    assert out.intents[0].status == "held"
    assert account.sent == []
    assert account.deferred == {1: {10: T0 + MINUTE}}
    for minute in range(2, 6):
        account.poll(minute * MINUTE, *torrents, snap(id=10, name="sample-x"))
    assert account.sent == [(2 * MINUTE, 10, "delete")]
    assert account.deferred == {}


def test_an_event_in_cooldown_is_kept_until_the_cooldown_passes() -> None:
    """A stall while the rule's cooldown runs is acted on when it ends, not lost."""
    stalled_rule = rule(
        {"type": "SEEDS", "operator": "gte", "value": 0},
        action="reannounce",
        trigger={"type": "event", "events": ["TORRENT_STALLED"]},
        cooldown_minutes=10,
    )
    account = Account(stalled_rule)
    account.last_actions[(1, 1)] = T0  # acted on torrent 1 at T0: cooled down at 10 minutes
    moving = snap("seeding", id=2)
    account.poll(0, snap(id=1, total_downloaded=5), moving)
    account.poll(MINUTE, snap("stalled", id=1, total_downloaded=5), moving)
    assert account.sent == []
    assert account.deferred == {1: {1: T0 + MINUTE}}
    for minute in range(2, 13):
        account.poll(minute * MINUTE, snap("stalled", id=1, total_downloaded=5), moving)
    assert account.sent == [(10 * MINUTE, 1, "reannounce")]


def test_a_deferred_event_expires_and_a_torrent_no_longer_matching_consumes_it() -> None:
    """Kept events end after a day, or at the first evaluation that does not match."""
    entry = ADDED_SAMPLE
    states, now = _watched(snap(id=3, name="other"), snap(id=4, name="sample"))
    out = planned([entry], states, now, deferred={1: {3: now - 60, 4: now - 2 * 86400}})
    assert out.intents == []
    assert out.deferred == {}


def test_event_types_are_only_emitted_for_known_changes() -> None:
    """A null ratio or finished flag in one poll replays neither RATIO_REACHED nor COMPLETED."""
    feed = Feed()
    feed.poll(0, snap(id=2))
    feed.poll(60, snap("seeding", id=1, ratio=1.5), snap(id=2))
    feed.poll(120, snap("seeding", id=1, ratio=None, download_finished=None), snap(id=2))
    feed.poll(180, snap("seeding", id=1, ratio=1.6), snap(id=2))
    assert feed.last is not None
    assert [e.type for e in feed.last.events] == []


def test_events_fire_once_for_a_real_change() -> None:
    """Control: a download that really finishes emits COMPLETED once."""
    feed = Feed()
    feed.poll(0, snap(id=2))
    feed.poll(60, snap(id=1), snap(id=2))
    feed.poll(120, snap("seeding", id=1), snap(id=2))
    assert feed.last is not None
    types = [e.type for e in feed.last.events]
    assert types.count("TORRENT_COMPLETED") == 1


# Found by the review of this change; each reproduced a wrong delete before its fix.


def test_a_hold_does_not_run_while_its_torrent_is_missing() -> None:
    """Seen at 0 and at 60 min only (missing between): "SEEDS eq 0 for 60 min" has not held."""
    account = Account(rule({"type": "SEEDS", "operator": "eq", "value": 0, "for_minutes": 60}))
    others = [snap("seeding", id=i, seeds=5) for i in range(2, 6)]
    account.poll(0, snap("seeding", id=1, seeds=0), *others)
    for minute in range(5, 60, 5):
        account.poll(minute * MINUTE, *others, complete=False)
    account.poll(60 * MINUTE, snap("seeding", id=1, seeds=0), *others)
    assert account.sent == []
    assert account.holds[1][1] == {"groups[0].conditions[0]": T0 + 60 * MINUTE}


def test_a_returning_torrent_whose_bytes_moved_is_not_idle() -> None:
    """Gone 75 minutes (removed), back with 500 MB more: its last activity is now, not before."""
    account = Account(
        rule({"type": "LAST_DOWNLOAD_ACTIVITY_AT", "operator": "gt", "value": 60}), interval=300
    )

    def others(minute: int) -> list[TorrentSnapshot]:
        return [snap(id=i, total_downloaded=minute * 1_000_000 + 1) for i in range(2, 6)]

    downloaded = 0
    for minute in range(0, 30, 5):
        downloaded += 10_000_000
        account.poll(minute * MINUTE, snap(id=1, total_downloaded=downloaded), *others(minute))
    for minute in range(30, 105, 5):
        account.poll(minute * MINUTE, *others(minute))
    assert not account.feed.state(1).present
    downloaded += 500_000_000
    for minute in range(105, 140, 5):
        account.poll(minute * MINUTE, snap(id=1, total_downloaded=downloaded), *others(minute))
    assert account.sent_to(1) == []
    assert account.feed.state(1).last_download_activity_at == T0 + 105 * MINUTE


def test_averages_do_not_reach_back_across_unknown_counters() -> None:
    """Counters null for 10 hours then 2 GB higher: the 1-hour average waits for an hour."""
    account = Account(
        rule({"type": "AVG_UPLOAD_SPEED", "operator": "lt", "value": 0.1, "hours": 1}),
        interval=300,
    )
    start = 10_000_000_000

    def others(t: int) -> list[TorrentSnapshot]:
        return [snap("seeding", id=i, total_uploaded=t * 2_000_000) for i in range(2, 12)]

    account.poll(0, snap("seeding", id=1, total_uploaded=start), *others(0))
    for t in range(300, 36001, 300):
        unknown = snap("seeding", id=1, total_uploaded=None, total_downloaded=None)
        account.poll(t, unknown, *others(t))
    for t in range(36300, 39601, 300):
        account.poll(t, snap("seeding", id=1, total_uploaded=start + 2_000_000_000), *others(t))
    assert account.sent_to(1) == []


def test_a_restart_of_the_counters_ends_a_stall() -> None:
    """Stalled for 50 minutes, then the counter restarts lower: the stall ends, nothing fires."""
    account = Account(
        rule({"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 60}), interval=300
    )
    others = [snap("seeding", id=i) for i in range(2, 8)]
    account.poll(0, snap(id=1, total_downloaded=500_000_000), *others)
    for minute in range(5, 55, 5):
        account.poll(minute * MINUTE, snap(id=1, total_downloaded=500_000_001), *others)
    for minute in range(55, 95, 5):
        account.poll(minute * MINUTE, snap(id=1, total_downloaded=100_000_000), *others)
    assert account.sent == []


def test_nothing_is_exact_about_a_torrent_we_did_not_see_in_full() -> None:
    """A null speed, status or counter in any poll makes times and max speed lower bounds."""
    feed = Feed(interval=300)
    feed.poll(0)
    downloaded = 0
    for minute in range(5, 65, 5):
        downloaded += 500_000_000
        fast = snap(id=1, created_at=T0, download_speed=None, total_downloaded=downloaded)
        feed.poll(minute * MINUTE, fast)
    feed.poll(65 * MINUTE, snap(id=1, created_at=T0, download_speed=0, total_downloaded=downloaded))
    state = feed.state(1)
    assert not state.whole_life
    value = FIELDS["MAX_DOWNLOAD_SPEED"].get(state, T0 + 65 * MINUTE, None)
    assert isinstance(value, AtLeast)
    out = planned(
        [rule({"type": "MAX_DOWNLOAD_SPEED", "operator": "lt", "value": 0.5})],
        feed.states,
        T0 + 65 * MINUTE,
    )
    assert out.intents == []
    # Nor is a torrent without a creation date known to be new.
    fresh = Feed()
    fresh.poll(0)
    fresh.poll(60, snap(id=1, created_at=None))
    assert not fresh.state(1).whole_life


@pytest.mark.parametrize("text", ["", "uploading", "downloading", "stalled", "completed"])
def test_an_unknown_presence_flag_leaves_the_status_unknown(text: str) -> None:
    """With download_present null, "files gone" (inactive, uploading) is not known."""
    for active, finished in ((False, True), (True, True), (False, False)):
        status = derive_status(
            queued=False, active=active, download_state=text, finished=finished, present=None
        )
        assert status not in ("inactive", "uploading", "completed"), (text, active, finished)


def test_a_glitch_that_hides_half_the_list_is_a_mass_disappearance() -> None:
    """Exactly half missing holds and waits like a collapse (three of ten each poll, growing)."""
    feed = Feed(interval=300)
    everything = [snap("seeding", id=i) for i in range(1, 11)]
    feed.poll(0, *everything)
    feed.poll(300, *everything[:7])
    result = feed.poll(600, *everything[:5])
    assert result.removed == []
    assert result.hold_reason is not None
