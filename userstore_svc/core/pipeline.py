"""One poll of one user through the pure pipeline: diff, derive, aggregate, events, removals.

Removals are the dangerous part: an outage or a TorBox glitch can make a whole list look empty.
A snapshot that is incomplete, empty, or far shorter than what we knew is *suspicious*: torrents
missing from it are only flagged, and they are recorded as removed only if the next snapshot still
lacks them. While anything is unconfirmed, destructive actions are held (see :attr:`hold_reason`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from userstore_svc.core import telemetry
from userstore_svc.core.models import Event, PipelineConfig, TorrentSnapshot, TorrentState


@dataclass(frozen=True, slots=True)
class PollInput:
    """Everything the pipeline needs about one poll besides the remembered states."""

    observed_at: float
    complete: bool
    torrents: Sequence[TorrentSnapshot]
    # Gaps between sightings longer than this are outages (twice the poll interval).
    max_gap: float
    # The user's first poll: nothing before it is known, so it emits no events.
    baseline: bool
    # Keys missing from the previous (suspicious) snapshot, awaiting confirmation.
    pending_missing: frozenset[int]


@dataclass(frozen=True, slots=True)
class PollResult:
    """The outcome of one poll: every current state, what changed, and what happened."""

    states: dict[int, TorrentState]
    changed: list[TorrentState]
    events: list[Event]
    removed: list[int]
    pending_missing: frozenset[int]
    suspicious: bool
    # Why destructive actions must not be sent after this poll; None when they may be.
    hold_reason: str | None


def run_poll(known: Mapping[int, TorrentState], poll: PollInput, cfg: PipelineConfig) -> PollResult:
    """Advance every remembered torrent by one snapshot. Pure: same inputs, same result."""
    now = poll.observed_at
    states: dict[int, TorrentState] = dict(known)
    changed: list[TorrentState] = []
    events: list[Event] = []
    seen: set[int] = set()

    for snap in poll.torrents:
        key = snap.key
        if key in seen:
            continue  # TorBox listed it twice (page boundaries shift): the first copy wins.
        seen.add(key)
        prev = known.get(key)
        if prev is None or not prev.present:
            state, new_events = telemetry.first_sight(
                snap, now, baseline=poll.baseline, returning=prev
            )
            moved = True
        else:
            state, new_events, moved = telemetry.advance(
                prev, snap, now, max_gap=poll.max_gap, cfg=cfg
            )
        states[key] = state
        if moved:
            changed.append(state)
        events.extend(new_events)

    present_before = [key for key, state in known.items() if state.present]
    missing = frozenset(key for key in present_before if key not in seen)
    suspicious = _is_suspicious(poll, len(present_before), len(seen), cfg)

    removed: list[int] = []
    pending: frozenset[int] = frozenset()
    hold_reason: str | None = None
    if not poll.complete:
        hold_reason = "incomplete snapshot (a page failed); waiting for a complete one"
        confirmed: frozenset[int] = frozenset()
        unconfirmed = missing
        pending = poll.pending_missing
    elif suspicious:
        confirmed = missing & poll.pending_missing
        unconfirmed = missing - confirmed
        pending = missing
        if unconfirmed:
            hold_reason = (
                f"snapshot listed {len(seen)} torrents where {len(present_before)} were known; "
                f"{len(unconfirmed)} missing ones wait for the next poll to confirm"
            )
    else:
        confirmed, unconfirmed = missing, frozenset()

    for key in sorted(unconfirmed):
        state = telemetry.mark_missing(known[key], now)
        if state is not known[key]:
            states[key] = state
            changed.append(state)
    for key in sorted(confirmed):
        state, event = telemetry.mark_removed(known[key], now)
        states[key] = state
        changed.append(state)
        events.append(event)
        removed.append(key)

    return PollResult(
        states=states,
        changed=changed,
        events=events,
        removed=removed,
        pending_missing=pending,
        suspicious=suspicious or not poll.complete,
        hold_reason=hold_reason,
    )


def _is_suspicious(poll: PollInput, known: int, listed: int, cfg: PipelineConfig) -> bool:
    """Empty where torrents were known, or collapsed far below what we knew."""
    if known == 0:
        return False
    if listed == 0:
        return True
    return known >= cfg.suspicious_min_known and listed < known * cfg.suspicious_drop_fraction
