"""Turns for a heavy poll's thread: it stops every short slice until the event loop caught up.

A heavy poll (rules x items over ``ingest.OFFLOAD_WORK``) is evaluated on its own thread, but a
Python thread shares the interpreter: left alone, it takes about half of it from the event loop
that serves every other user of the shard for as long as it runs. Instead, every
``SLICE_SECONDS`` of its work it hands the loop a callback and waits for the loop to run it:
whatever the loop had ready runs first, so the heavy poll gets at most about one slice per turn
of the loop. An idle loop runs the callback at once, so on an idle shard the heavy poll pays only
a wake-up per slice; on a busy one it waits its turn, which is the point.
"""

from __future__ import annotations

import asyncio
import threading
import time

# A hand-over (waking the loop and being woken back) costs about 0.1 ms here: measured on a heavy
# poll over an idle loop, 0.5 ms slices made it 27 % slower, 1 ms 14 %, 2 ms 13 %; a busy loop
# waits at most about a slice for the interpreter (the same as the 1 ms switch interval).
SLICE_SECONDS = 0.001
# A loop that has not run the callback within this is not serving anyone (it is stopped, or
# blocked waiting for this very thread at shutdown): the poll stops taking turns and finishes.
# A busy loop turns far sooner (its longest steps, a 1,000-torrent user's apply, take tens of ms).
LOOP_WAIT_SECONDS = 0.5


class LoopTurns:
    """A checkpoint for one heavy poll's thread: call it often; it pauses when a slice is up."""

    __slots__ = ("_loop", "_since", "_slice", "_turn", "gave_up", "turns")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, slice_seconds: float = SLICE_SECONDS
    ) -> None:
        self._loop = loop
        self._slice = slice_seconds
        self._since = time.perf_counter()
        self._turn = threading.Event()
        # How many times the thread gave the loop its turn (for tests and statistics).
        self.turns = 0
        # Set when the loop did not take a turn: the rest of the poll runs without turns.
        self.gave_up = False

    def __call__(self) -> None:
        """Give the event loop its turn when this thread has worked a slice since the last one."""
        if self.gave_up or time.perf_counter() - self._since < self._slice:
            return
        turn = self._turn
        turn.clear()
        try:
            self._loop.call_soon_threadsafe(turn.set)
        except RuntimeError:  # the loop is closed: nobody left to wait for
            self.gave_up = True
        else:
            # Otherwise a poll of thousands of slices would wait this long for each of them.
            self.gave_up = not turn.wait(LOOP_WAIT_SECONDS)
        self.turns += 1
        self._since = time.perf_counter()
