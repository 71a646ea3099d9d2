"""The cost per poll of a user with torrents, usenet and web downloads, against torrents alone.

Two figures per user and poll: the TorBox calls the scheduler makes (each type is a mylist read
and a queue read while it fits in one page of 1,000; a user whose rules name torrents only
makes 2, one with rules for all three types 6), and the userstore's pure work (``run_poll`` and
``plan``) for the same torrents, with and without the other types beside them. The usenet and
web downloads are built from a second workload account: TorBox's fields for those types only
(no seeds, ratio or byte counters), one rule per type as in the end-to-end test, all dry run.

Run: ``python -m bench.kinds [users] [items] [polls]``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.workload import POLL_INTERVAL, Account, rule_docs
from userstore_svc.core.models import PipelineConfig, TorrentSnapshot, TorrentState
from userstore_svc.core.pipeline import PollInput, run_poll
from userstore_svc.core.rules.evaluate import CompiledRule, compile_rule
from userstore_svc.core.rules.plan import PlanInput, RuleEntry, SafetyConfig, plan
from userstore_svc.core.rules.schema import parse_rule

ALL = frozenset({"torrent", "usenet", "webdl"})
# TorBox calls per poll below 1,000 items of a type: mylist + getqueued per type listed.
CALLS = {"torrent": 2, "all": 6}
# TorBox sends these for torrents only.
_TORRENT_ONLY: dict[str, Any] = {
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


def _rule(name: str, kind: str, action: dict[str, Any], *conds: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "assetTypes": [kind],
        "trigger": {"type": "interval", "value": 0},
        "groups": [{"logicOperator": "and", "conditions": list(conds)}],
        "action": action,
        "dry_run": True,
    }


def other_rules() -> list[dict[str, Any]]:
    """One rule per other type, as in tests/e2e/test_usenet_webdl.py."""
    return [
        _rule(
            "Old failed usenet",
            "usenet",
            {"type": "delete"},
            {"type": "STATUS", "operator": "is_any_of", "value": ["failed"]},
            {"type": "AGE", "operator": "gt", "value": 48},
        ),
        _rule(
            "Start queued web",
            "webdl",
            {"type": "force_start"},
            {"type": "STATUS", "operator": "is_any_of", "value": ["queued"]},
        ),
        _rule(
            "Tag stalled usenet",
            "usenet",
            {"type": "add_tag", "tagIds": [1]},
            {"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 60},
        ),
    ]


def _as(kind: str, snap: TorrentSnapshot) -> TorrentSnapshot:
    return snap._replace(kind=kind, **_TORRENT_ONLY)


def _items(torrents: Account, others: Account, kinds: frozenset[str]) -> list[TorrentSnapshot]:
    items = list(torrents.snapshots)
    if kinds == ALL:
        half = len(others.snapshots) // 2
        items += [_as("usenet", s) for s in others.snapshots[:half]]
        items += [_as("webdl", s) for s in others.snapshots[half:]]
    return items


def _one(
    rules: list[CompiledRule], items: int, polls: int, seed: int, kinds: frozenset[str]
) -> float:
    """Seconds of pure work per poll for one user of `items` torrents (and as many others)."""
    torrents, others = Account(seed, items), Account(seed + 1, items, first_id=10**6)
    entries = [RuleEntry(c, i, None) for i, c in enumerate(rules, 1)]
    states: dict[int, TorrentState] = {}
    pending: dict[int, tuple[int, bool]] = {}
    cfg, safety, spent, previous = PipelineConfig(), SafetyConfig(), 0.0, None
    for step in range(polls + 1):
        snaps = _items(torrents, others, kinds)
        started = time.perf_counter()
        result = run_poll(
            states,
            PollInput(
                observed_at=torrents.now,
                complete=True,
                torrents=snaps,
                max_gap=2.0 * POLL_INTERVAL,
                baseline=previous is None,
                pending_missing=pending,
                previous_at=previous,
                listed_kinds=kinds,
            ),
            cfg,
        )
        plan(
            PlanInput(
                now=torrents.now,
                states=result.states,
                events=result.events,
                rules=entries,
                holds={},
                protected=frozenset(),
                limits={},
                last_actions={},
                pending=frozenset(),
                safety=safety,
                hold_reason=result.hold_reason,
                held_kinds=result.held_kinds,
                listed_kinds=kinds,
                tags={},
            )
        )
        if step:  # the first poll is the untimed baseline
            spent += time.perf_counter() - started
        states, pending, previous = result.states, result.pending_missing, torrents.now
        torrents.advance()
        others.advance()
    return spent / polls


def run(users: int = 20, items: int = 100, polls: int = 5) -> dict[str, Any]:
    """Milliseconds of pure work per poll, torrents only and with all three types."""
    torrent_rules = [compile_rule(parse_rule(d)) for d in rule_docs()]
    every_rule = torrent_rules + [compile_rule(parse_rule(d)) for d in other_rules()]
    alone = mixed = 0.0
    for seed in range(users):  # alternated, so load on a shared machine hits both alike
        alone += _one(torrent_rules, items, polls, seed, frozenset({"torrent"}))
        mixed += _one(every_rule, items, polls, seed, ALL)
    return {
        "users": users,
        "torrents_per_user": items,
        "usenet_and_webdl_per_user": items,
        "torbox_calls_per_poll": CALLS,
        "ms_per_poll_torrents_only": alone / users * 1e3,
        "ms_per_poll_all_three_types": mixed / users * 1e3,
        "extra_us_per_other_item": (mixed - alone) / users / items * 1e6,
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    print(json.dumps(run(*args), indent=2))
