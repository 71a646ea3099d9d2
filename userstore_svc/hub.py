"""In-process fan-out of a user's live events to WatchEvents streams (the gateway's SSE)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from userstore_svc.core.models import Event

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
# The live-only events TBM's frontend reacts to (it refetches protection or download tags).
PROTECTION_CHANGED = "protection_changed"
TAGS_CHANGED = "tags_changed"


@dataclass(frozen=True, slots=True)
class Changed:
    """A poll changed something (TBM's frontend refetches on this)."""

    observed_at: float
    changed_torrents: int


Item = Event | Changed


class EventHub:
    """Subscribers per user; a slow subscriber loses items rather than slowing ingestion."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Item]]] = {}

    def subscribe(self, auth_id: str) -> asyncio.Queue[Item]:
        """A new queue that receives this user's items until unsubscribed."""
        queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.setdefault(auth_id, set()).add(queue)
        return queue

    def unsubscribe(self, auth_id: str, queue: asyncio.Queue[Item]) -> None:
        """Stop delivering to a queue (its stream ended)."""
        queues = self._subscribers.get(auth_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[auth_id]

    def total_subscribers(self) -> int:
        """How many live streams there are, all users together."""
        return sum(len(queues) for queues in self._subscribers.values())

    def subscriber_count(self, auth_id: str) -> int:
        """How many live streams watch this user."""
        return len(self._subscribers.get(auth_id, ()))

    def publish(self, auth_id: str, items: Sequence[Item]) -> None:
        """Deliver items to every subscriber of the user, dropping for full queues."""
        for queue in self._subscribers.get(auth_id, ()):
            for item in items:
                try:
                    queue.put_nowait(item)
                except asyncio.QueueFull:
                    log.warning("event subscriber is too slow; dropping events")
                    break
