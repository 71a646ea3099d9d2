"""A heavy poll's thread gives the event loop its turns, and the checkpoints change no result."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

from tests.userstore.factory import CFG, T0, Feed, snap
from tests.userstore.test_rule_plan import ALWAYS, entry, run
from userstore_svc.core.models import TorrentSnapshot
from userstore_svc.core.pipeline import PollInput, run_poll
from userstore_svc.turns import SLICE_SECONDS, LoopTurns

FOR_TEN_MINUTES = {"type": "SEEDS", "operator": "gte", "value": 0, "for_minutes": 10}


def _torrents() -> list[TorrentSnapshot]:
    return [
        snap(profile, id=i, name=f"t{i}")
        for i, profile in enumerate(["seeding", "downloading", "stalled", "completed"] * 5, 1)
    ]


def test_a_checkpoint_changes_neither_the_poll_nor_the_plan() -> None:
    feed = Feed()
    torrents = _torrents()
    feed.poll(0, *torrents)
    calls = [0]

    def checkpoint() -> None:
        calls[0] += 1

    poll = PollInput(
        observed_at=T0 + 60,
        complete=True,
        torrents=[t._replace(seeds=(t.seeds or 0) + 1) for t in torrents],
        max_gap=120.0,
        baseline=False,
        previous_at=T0,
    )
    plain = run_poll(feed.states, poll, CFG)
    checked = run_poll(feed.states, replace(poll, checkpoint=checkpoint), CFG)
    assert checked == plain
    assert calls[0] == len(torrents)

    rules = [entry(1, "delete", ALWAYS, dry_run=True), entry(2, "stop_seeding", FOR_TEN_MINUTES)]
    calls[0] = 0
    without = run(rules, plain.states)
    with_checkpoint = run(rules, plain.states, checkpoint=checkpoint)
    assert with_checkpoint == without
    # A plan that acts and holds, not an empty one.
    assert without.intents
    assert without.holds
    # Each rule tests every listed item once.
    assert calls[0] == len(rules) * len(torrents)


async def test_the_heavy_thread_waits_for_what_the_loop_had_ready() -> None:
    """Its slice used up, the thread resumes only after the loop ran the work queued before."""
    loop = asyncio.get_running_loop()
    turns = LoopTurns(loop)
    order: list[str] = []

    def loop_work() -> None:
        # Another user's work on the loop, under way when the thread's slice ends.
        time.sleep(0.05)
        order.append("loop work")

    def heavy() -> None:
        deadline = time.perf_counter() + 2 * SLICE_SECONDS
        while time.perf_counter() < deadline:
            pass  # a slice of work
        turns()
        order.append("heavy resumed")

    loop.call_soon(loop_work)
    await asyncio.to_thread(heavy)
    assert order == ["loop work", "heavy resumed"]
    assert turns.turns == 1


async def test_within_a_slice_the_thread_does_not_stop() -> None:
    turns = LoopTurns(asyncio.get_running_loop(), slice_seconds=3600.0)

    def heavy() -> int:
        for _ in range(1000):
            turns()
        return turns.turns

    assert await asyncio.to_thread(heavy) == 0


def test_a_closed_loop_never_blocks_the_thread() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    turns = LoopTurns(loop, slice_seconds=0.0)
    worker = threading.Thread(target=turns)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    assert turns.turns == 1
    assert turns.gave_up


def test_a_loop_that_does_not_take_its_turn_is_not_waited_for_again() -> None:
    """A loop blocked at shutdown (waiting for this thread) must not slow the poll to a crawl."""
    loop = asyncio.new_event_loop()  # never run: like a loop blocked in a synchronous close
    try:
        turns = LoopTurns(loop, slice_seconds=0.0)
        turns()
        assert turns.gave_up
        turns()  # returns without asking the loop again
        assert turns.turns == 1
    finally:
        loop.close()
