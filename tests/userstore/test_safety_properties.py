"""Property: no destructive action is ever planned from a condition whose value is unknown.

Random accounts go through the real pipeline and planner: snapshots with random nulls, every
download_state TorBox sends (and some it might), queued items, torrents that vanish and return,
outages, incomplete polls; rules of random conditions (negated, held or not) that delete. Every
delete the planner chooses (sent, held or dry run) must come from conditions that each matched on
a known value: its audit trace says "match" for every condition of its AND group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.userstore.factory import T0, Feed, snap
from userstore_svc.core.models import PipelineConfig, TorrentSnapshot
from userstore_svc.core.rules.evaluate import compile_rule
from userstore_svc.core.rules.plan import PlanInput, RuleEntry, SafetyConfig, plan
from userstore_svc.core.rules.schema import parse_rule
from userstore_svc.core.status import STATE_TABLE

NULLABLE = (
    "size",
    "active",
    "seeds",
    "peers",
    "ratio",
    "progress",
    "download_speed",
    "upload_speed",
    "eta",
    "download_present",
    "download_finished",
    "file_count",
    "availability",
    "total_uploaded",
    "total_downloaded",
    "cached",
    "seed_torrent",
    "private",
)
STATES = (*sorted(STATE_TABLE), "", "Stalled (No Seeds)", "weird new state", "failed: tracker")
# Conditions a destructive rule might use, with thresholds around their interesting values.
CONDITIONS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("SEEDS", (0, 1, 5)),
    ("PEERS", (0, 2)),
    ("RATIO", (0.5, 1, 2)),
    ("PROGRESS", (10, 50, 100)),
    ("FILE_SIZE", (0.001, 0.05, 1)),
    ("FILE_COUNT", (1, 2)),
    ("ETA", (10, 600)),
    ("AVAILABILITY", (0.5, 1)),
    ("DOWNLOAD_SPEED", (0, 0.1)),
    ("UPLOAD_SPEED", (0, 0.1)),
    ("SEEDING_TIME", (0.01, 0.5, 2)),
    ("DOWNLOADING_TIME", (0.01, 0.5)),
    ("ACTIVE_TIME", (0.01, 1)),
    ("DOWNLOAD_STALLED_TIME", (0, 5, 30)),
    ("UPLOAD_STALLED_TIME", (0, 5, 30)),
    ("LAST_DOWNLOAD_ACTIVITY_AT", (1, 10, 60)),
    ("LAST_UPLOAD_ACTIVITY_AT", (1, 10, 60)),
    ("STALL_COUNT", (0, 1)),
    ("MAX_DOWNLOAD_SPEED", (0, 1)),
    ("TOTAL_UPLOADED", (0, 1)),
    ("TOTAL_DOWNLOADED", (0, 10)),
    ("AVG_DOWNLOAD_SPEED", (0.001, 1)),
    ("AVG_UPLOAD_SPEED", (0.001, 1)),
    ("PROGRESS_CHANGE", (1, 10)),
)


# The snapshot fields each condition reads: when TorBox sent any of them as null now, no
# condition of that type may be the reason for a delete.
READS: dict[str, tuple[str, ...]] = {
    "SEEDS": ("seeds",),
    "PEERS": ("peers",),
    "RATIO": ("ratio",),
    "PROGRESS": ("progress",),
    "FILE_SIZE": ("size",),
    "FILE_COUNT": ("file_count",),
    "ETA": ("eta",),
    "AVAILABILITY": ("availability",),
    "DOWNLOAD_SPEED": ("download_speed",),
    "UPLOAD_SPEED": ("upload_speed",),
    "TOTAL_UPLOADED": ("total_uploaded",),
    "TOTAL_DOWNLOADED": ("total_downloaded",),
    "AVG_DOWNLOAD_SPEED": ("total_downloaded",),
    "AVG_UPLOAD_SPEED": ("total_uploaded",),
    "PROGRESS_CHANGE": ("size", "total_downloaded"),
    "LAST_DOWNLOAD_ACTIVITY_AT": ("total_downloaded",),
    "LAST_UPLOAD_ACTIVITY_AT": ("total_uploaded",),
    "DOWNLOAD_STALLED_TIME": ("total_downloaded",),
    "UPLOAD_STALLED_TIME": ("total_uploaded",),
}


@dataclass(frozen=True)
class Item:
    """One torrent in one poll."""

    id: int
    queued: bool
    state: str
    active: bool
    finished: bool
    downloaded: int
    uploaded: int
    nulls: frozenset[str]


@dataclass(frozen=True)
class Poll:
    """One poll: how long after the previous one, what it listed, whether it was complete."""

    gap: float
    items: tuple[Item, ...]
    complete: bool


items = st.builds(
    Item,
    id=st.integers(1, 5),
    queued=st.booleans(),
    state=st.sampled_from(STATES),
    active=st.booleans(),
    finished=st.booleans(),
    downloaded=st.integers(0, 50_000_000),
    uploaded=st.integers(0, 50_000_000),
    nulls=st.frozensets(st.sampled_from(NULLABLE), max_size=5),
)
polls = st.lists(
    st.builds(
        Poll,
        gap=st.sampled_from((30.0, 60.0, 60.0, 60.0, 120.0, 900.0, 4000.0)),
        items=st.lists(items, max_size=5).map(tuple),
        complete=st.booleans() | st.just(True),
    ),
    min_size=2,
    max_size=25,
)
conditions = st.builds(
    lambda pick, operator, negate, hold, index: {
        "type": CONDITIONS[pick][0],
        "operator": operator,
        "value": CONDITIONS[pick][1][index % len(CONDITIONS[pick][1])],
        **({"negate": True} if negate else {}),
        **({"for_minutes": hold} if hold else {}),
        **({"hours": 1} if CONDITIONS[pick][0].startswith(("AVG", "PROGRESS_C")) else {}),
    },
    pick=st.integers(0, len(CONDITIONS) - 1),
    operator=st.sampled_from(("gt", "gte", "lt", "lte", "eq")),
    negate=st.booleans(),
    hold=st.sampled_from((0, 0, 1, 5)),
    index=st.integers(0, 2),
)
rules = st.lists(st.lists(conditions, min_size=1, max_size=3), min_size=1, max_size=3)


def _snapshot(item: Item) -> TorrentSnapshot:
    values: dict[str, Any] = {
        "id": item.id,
        "queued": item.queued,
        "download_state": "queued" if item.queued else item.state,
        "active": item.active,
        "download_finished": item.finished,
        "download_present": item.finished,
        "total_downloaded": item.downloaded,
        "total_uploaded": item.uploaded,
        "progress": 1.0 if item.finished else 0.5,
        "size": 100_000_000,
    }
    for name in item.nulls:
        values[name] = None
    return snap("downloading", **values)


def _entries(groups: list[list[dict[str, Any]]]) -> list[RuleEntry]:
    entries = []
    for index, group in enumerate(groups, start=1):
        doc = {
            "name": f"r{index}",
            "trigger": {"type": "interval", "value": 0},
            "groups": [{"logicOperator": "and", "conditions": group}],
            "action": {"type": "delete"},
            "cooldown_minutes": 0,
        }
        entries.append(RuleEntry(compile_rule(parse_rule(doc)), index, None))
    return entries


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(polls, rules)
def test_no_destructive_intent_rests_on_an_unknown_value(
    sequence: list[Poll], groups: list[list[dict[str, Any]]]
) -> None:
    """Every planned delete's conditions all matched on known values, whatever TorBox sent."""
    feed = Feed(PipelineConfig(stall_after_seconds=120.0), interval=60.0)
    entries = _entries(groups)
    holds: dict[int, dict[int, dict[str, float]]] = {}
    at = 0.0
    for poll in sequence:
        at += poll.gap
        listed = {(i.id, i.queued): _snapshot(i) for i in poll.items}
        result = feed.poll(at, *listed.values(), complete=poll.complete)
        out = plan(
            PlanInput(
                now=T0 + at,
                states=result.states,
                events=result.events,
                rules=entries,
                holds=holds,
                protected=frozenset(),
                limits={},
                last_actions={},
                pending=frozenset(),
                safety=SafetyConfig(max_destructive_per_poll=100, max_destructive_share=1.0),
                hold_reason=result.hold_reason,
            )
        )
        holds = out.holds
        for intent in out.intents:
            assert intent.action == "delete"
            traces = json.loads(intent.reason_json)
            assert traces, intent
            assert all(t["result"] == "match" for t in traces), traces
            state = result.states[intent.key]
            assert state.present
            assert state.missing_since is None
            for trace in traces:
                unknown = [
                    f for f in READS.get(trace["type"], ()) if getattr(state.snap, f) is None
                ]
                assert not unknown, (trace, unknown)
                if isinstance(trace["value"], dict):
                    # A lower bound can only prove "more than" (or, negated, "not less than").
                    index = int(trace["path"].rsplit("[", 1)[1].rstrip("]"))
                    negated = groups[intent.rule_id - 1][index].get("negate", False)
                    assert (trace["operator"] in ("gt", "gte")) != negated, trace
