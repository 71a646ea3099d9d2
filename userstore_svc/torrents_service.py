"""Per-torrent automation status and event history (what TBM's tooltip never had)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidArgument, NotFound
from userstore_svc.core import speeds, telemetry
from userstore_svc.core.models import KIND_SPAN, TORRENT, TorrentState, item_key
from userstore_svc.core.rules.plan import protected_keys
from userstore_svc.rules_service import ACTION_COLUMNS, action_dict
from userstore_svc.store import user_db
from userstore_svc.store.pool import DatabasePool
from userstore_svc.store.registry import Registry

FIVE_MINUTES = 300.0
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class TorrentView:
    """A torrent's state with its derived values computed at the last observation."""

    state: TorrentState
    now: float
    last_action: dict[str, Any] | None
    protected: bool
    seed_ratio_limit: float | None
    seed_time_limit_hours: float | None

    def avg(self, window: float, column: int) -> float | None:
        """Average bytes/s over a window (None when not covered)."""
        s = self.state
        if not s.present:
            return None
        return speeds.average(
            s.samples, now=self.now, window=window, observed_since=s.observed_since, column=column
        )

    def derived(self) -> dict[str, Any]:
        """The derived telemetry under the product brief's names."""
        s, now = self.state, self.now if self.state.present else self.state.last_seen_at
        return {
            "seeding_time_seconds": telemetry.seeding_time(s, now),
            "downloading_time_seconds": telemetry.downloading_time(s, now),
            "total_active_time_seconds": telemetry.active_time(s, now),
            "download_stalled_seconds": telemetry.stalled_time(s, now),
            "avg_download_speed_5m": self.avg(FIVE_MINUTES, 1),
            "avg_download_speed_1h": self.avg(HOUR, 1),
            "avg_upload_speed_5m": self.avg(FIVE_MINUTES, 2),
            "avg_upload_speed_1h": self.avg(HOUR, 2),
        }


@dataclass(frozen=True, slots=True)
class EventRow:
    """A stored synthetic event."""

    id: int
    torrent_key: int
    type: str
    observed_at: float
    data_json: str


class TorrentService:
    """Reads of torrent state and history."""

    def __init__(self, pool: DatabasePool, registry: Registry) -> None:
        self.pool = pool
        self.registry = registry

    async def list_torrents(
        self, auth_id: str, include_removed: bool, kinds: frozenset[str] = frozenset({TORRENT})
    ) -> tuple[list[TorrentView], float | None]:
        """Every item of these types (present ones, and removed ones on request) with its status."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            data = await user_db.load(handle)
            last = {
                row[3]: action_dict(row)
                for row in await handle.fetchall(
                    f"SELECT {ACTION_COLUMNS} FROM actions WHERE id IN "
                    "(SELECT MAX(id) FROM actions GROUP BY torrent_key)"
                )
            }
            now = data.last_observed_at
            shielded = protected_keys(data.states, data.protected)
            views = []
            for key in sorted(data.states):
                state = data.states[key]
                if (not state.present and not include_removed) or state.snap.kind not in kinds:
                    continue
                torrent = state.snap.kind == TORRENT and not state.snap.queued
                limit = data.limits.get(state.snap.id) if torrent else None
                views.append(
                    TorrentView(
                        state=state,
                        now=now if now is not None else state.last_seen_at,
                        last_action=last.get(key),
                        protected=key in shielded,
                        seed_ratio_limit=limit.seed_ratio if limit else None,
                        seed_time_limit_hours=limit.seed_time_hours if limit else None,
                    )
                )
        return views, now

    async def events(
        self, auth_id: str, torrent_id: int, limit: int, queued: bool = False, kind: str = TORRENT
    ) -> list[EventRow]:
        """One item's synthetic events, newest first (a torrent unless `kind` says otherwise)."""
        self.registry.require(auth_id)
        if torrent_id <= 0 or torrent_id >= KIND_SPAN:
            raise InvalidArgument("torrent_id must be a positive integer", field="torrent_id")
        key = item_key(kind, torrent_id, queued)
        limit = max(1, min(limit or 100, 1000))
        async with self.pool.use(auth_id) as handle:
            rows = await handle.fetchall(
                "SELECT id, torrent_key, type, observed_at, data FROM events WHERE torrent_key=? "
                "ORDER BY id DESC LIMIT ?",
                (key, limit),
            )
        return [EventRow(*row) for row in rows]

    async def account_events(self, auth_id: str, limit: int) -> list[EventRow]:
        """The user's account-level events (stored under torrent key 0), newest first."""
        self.registry.require(auth_id)
        limit = max(1, min(limit or 100, 1000))
        async with self.pool.use(auth_id) as handle:
            rows = await handle.fetchall(
                "SELECT id, torrent_key, type, observed_at, data FROM events WHERE torrent_key=0 "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [EventRow(*row) for row in rows]

    async def history(
        self, auth_id: str, torrent_id: int
    ) -> tuple[list[speeds.Transfer], float | None]:
        """One torrent's kept byte counters (oldest first) and since when they are watched."""
        self.registry.require(auth_id)
        if torrent_id <= 0:
            raise InvalidArgument("torrent_id must be a positive integer", field="torrent_id")
        async with self.pool.use(auth_id) as handle:
            rows = await handle.fetchall(
                "SELECT samples, observed_since FROM torrents WHERE torrent_key=?", (torrent_id,)
            )
        if not rows:
            raise NotFound("Torrent not found", code="TORRENT_NOT_FOUND", field="torrent_id")
        blob, observed_since = rows[0]
        return speeds.transfers(bytes(blob)), observed_since


def reason_of(last_action: dict[str, Any] | None) -> list[Any]:
    """The decoded condition traces of an action record."""
    if not last_action or not last_action.get("reason_json"):
        return []
    decoded = json.loads(last_action["reason_json"])
    return decoded if isinstance(decoded, list) else []
