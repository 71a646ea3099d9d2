"""One poll of one user through the pure pipeline: diff, derive, aggregate, events, removals.

Removals are the dangerous part: an outage or a TorBox glitch can make torrents look gone. No
torrent is removed on one poll's word:
- a torrent missing from a complete poll is only flagged; it is removed when the next complete
  poll still lacks it;
- when many vanish at once (the list is empty, or half of it or more is missing) it is a
  *mass disappearance*: removal waits for several polls spanning several minutes, and until then
  destructive actions are held (see :attr:`PollResult.hold_reason`);
- an incomplete poll confirms nothing and holds destructive actions.
A torrent that comes back (by id, or under a new id with a hash we know) keeps its history and
emits no first-time events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from userstore_svc.core import telemetry
from userstore_svc.core.models import (
    TORRENT,
    Event,
    PipelineConfig,
    TorrentSnapshot,
    TorrentState,
    split_key,
)

_TORRENTS_ONLY = frozenset({TORRENT})
# How hold reasons name each type's items.
_NOUNS = {TORRENT: "torrents", "usenet": "usenet downloads", "webdl": "web downloads"}

# Torrents missing from recent polls: key -> (complete polls it was missing from, mass episode).
Missing = Mapping[int, tuple[int, bool]]


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
    # Torrents missing from earlier polls, awaiting confirmation.
    pending_missing: Missing = field(default_factory=dict)
    # When the previous poll applied was observed: a poll not newer than it is a replay.
    previous_at: float | None = None
    # The types whose lists this poll fetched whole; items of other types are neither seen nor
    # missing (their states stand as they were).
    listed_kinds: frozenset[str] = _TORRENTS_ONLY
    # Called between items (a heavy poll's thread gives the event loop its turn); no effect on
    # the result.
    checkpoint: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """The outcome of one poll: every current state, what changed, and what happened."""

    states: dict[int, TorrentState]
    changed: list[TorrentState]
    events: list[Event]
    removed: list[int]
    pending_missing: dict[int, tuple[int, bool]]
    suspicious: bool
    # Why destructive actions must not be sent after this poll; None when they may be.
    hold_reason: str | None
    # The types the hold is for; None is every type (an incomplete poll).
    held_kinds: frozenset[str] | None = None
    # Present torrents whose sighting differed from the last only in TorBox's dates
    # (telemetry.only_dates_moved): not in `changed`, their rows need not be rewritten.
    dated: list[TorrentState] = field(default_factory=list)


def run_poll(known: Mapping[int, TorrentState], poll: PollInput, cfg: PipelineConfig) -> PollResult:
    """Advance every remembered torrent by one snapshot. Pure: same inputs, same result."""
    now = poll.observed_at
    if poll.previous_at is not None and now <= poll.previous_at:
        # A replay: no time passed, nothing can have appeared, moved or gone.
        return PollResult(dict(known), [], [], [], dict(poll.pending_missing), False, None, None)
    states: dict[int, TorrentState] = dict(known)
    changed: list[TorrentState] = []
    dated: list[TorrentState] = []
    events: list[Event] = []
    seen: set[int] = set()
    hashes: dict[str, int] | None = None

    listed = poll.listed_kinds
    checkpoint = poll.checkpoint
    for snap in poll.torrents:
        if checkpoint is not None:
            checkpoint()
        if snap.kind != TORRENT:
            if snap.kind not in listed:
                continue  # not fetched whole this poll: it says nothing
            snap = telemetry.with_counters(snap)
        key = snap.key
        if key in seen:
            continue  # TorBox listed it twice (page boundaries shift): the first copy wins.
        seen.add(key)
        prev = known.get(key)
        if prev is not None and prev.present:
            state, new_events, moved = telemetry.advance(
                prev, snap, now, max_gap=poll.max_gap, cfg=cfg
            )
        else:
            if prev is None and snap.hash:
                if hashes is None:
                    hashes = {s.snap.hash: k for k, s in known.items() if s.snap.hash}
                seen_before = snap.hash in hashes
            else:
                seen_before = False
            state, new_events = telemetry.first_sight(
                snap, now, baseline=poll.baseline, returning=prev, seen_before=seen_before
            )
            moved = True
        states[key] = state
        if moved:
            changed.append(state)
        elif prev is not None and state.snap is not prev.snap:
            # Only TorBox's dates moved: kept beside the row, not by rewriting it.
            dated.append(state)
        events.extend(new_events)

    if listed == _TORRENTS_ONLY:
        present_before = [
            key for key, state in known.items() if state.present and state.snap.kind == TORRENT
        ]
    else:
        present_before = [
            key for key, state in known.items() if state.present and state.snap.kind in listed
        ]
    missing = [key for key in present_before if key not in seen]
    suspicious_kinds = _suspicious_kinds(known, present_before, missing, seen, cfg)
    suspicious = bool(suspicious_kinds)
    pending: dict[int, tuple[int, bool]] = {}
    removed: list[int] = []
    to_flag: list[int] = []
    to_remove: list[int] = []
    if not poll.complete:
        # Nothing is confirmed by an incomplete poll; what was pending stays pending.
        pending = {k: v for k, v in poll.pending_missing.items() if k not in seen}
        to_flag = missing
    else:
        wait = max(cfg.mass_confirm_seconds, 1.5 * poll.max_gap)
        for key in missing:
            count, mass = poll.pending_missing.get(key, (0, False))
            count, mass = count + 1, mass or known[key].snap.kind in suspicious_kinds
            since = known[key].missing_since or now
            if mass:
                confirmed = count >= cfg.mass_confirm_polls and now - since >= wait - 1e-6
            else:
                confirmed = count >= 2
            if confirmed:
                to_remove.append(key)
            else:
                to_flag.append(key)
                pending[key] = (count, mass)

    if listed != _TORRENTS_ONLY or poll.pending_missing:
        # Items of a type not listed now keep waiting for their confirmation.
        pending.update(
            (k, v)
            for k, v in poll.pending_missing.items()
            if k not in pending and k not in seen and split_key(k)[0] not in listed
        )
    for key in sorted(to_flag):
        state = telemetry.mark_missing(known[key], now)
        if state is not known[key]:
            states[key] = state
            changed.append(state)
    for key in sorted(to_remove):
        state, event = telemetry.mark_removed(known[key], now)
        states[key] = state
        changed.append(state)
        events.append(event)
        removed.append(key)

    reason, held = _hold_reason(poll, pending, known, present_before, seen)
    return PollResult(
        states=states,
        changed=changed,
        events=events,
        removed=removed,
        pending_missing=pending,
        suspicious=suspicious or not poll.complete,
        hold_reason=reason,
        held_kinds=held,
        dated=dated,
    )


def _suspicious_kinds(
    known: Mapping[int, TorrentState],
    present_before: Sequence[int],
    missing: Sequence[int],
    seen: set[int],
    cfg: PipelineConfig,
) -> frozenset[str]:
    """The types whose list collapsed (each type's list is judged on its own)."""
    if not missing:
        return frozenset()
    known_by = Counter(known[k].snap.kind for k in present_before)
    missing_by = Counter(known[k].snap.kind for k in missing)
    listed_by = Counter(split_key(k)[0] for k in seen)
    return frozenset(
        kind
        for kind, count in missing_by.items()
        if _is_suspicious(known_by[kind], count, listed_by[kind], cfg)
    )


def _is_suspicious(known: int, missing: int, listed: int, cfg: PipelineConfig) -> bool:
    """Empty where torrents were known, or half or more of what we knew gone at once."""
    if known == 0 or missing == 0:
        return False
    if listed == 0:
        return True
    return missing >= cfg.suspicious_min_missing and missing >= known * cfg.suspicious_drop_fraction


def _hold_reason(
    poll: PollInput,
    pending: Mapping[int, tuple[int, bool]],
    known: Mapping[int, TorrentState],
    present_before: Sequence[int],
    seen: set[int],
) -> tuple[str | None, frozenset[str] | None]:
    """Why destructive actions must wait after this poll, and for which types (None: all)."""
    if not poll.complete:
        return "incomplete snapshot (a page failed); waiting for a complete one", None
    unconfirmed = Counter(known[key].snap.kind for key, (_c, mass) in pending.items() if mass)
    if not unconfirmed:
        return None, None
    known_by = Counter(known[k].snap.kind for k in present_before)
    listed_by = Counter(split_key(k)[0] for k in seen)
    reasons = [
        f"snapshot listed {listed_by[kind]} {_NOUNS.get(kind, kind)} where {known_by[kind]} "
        f"were known; {unconfirmed[kind]} that vanished at once wait for several polls over "
        "several minutes to confirm it"
        for kind in sorted(unconfirmed)
    ]
    return "; ".join(reasons), frozenset(unconfirmed)
