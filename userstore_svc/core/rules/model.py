"""The frozen shape of a rule after validation: conditions, groups, trigger, action and options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Actions whose effect cannot be undone on TorBox (the blast-radius cap and unconfirmed snapshots
# hold these); archive keeps the magnet so it can be restored.
DESTRUCTIVE_ACTIONS = frozenset({"delete", "archive"})
# Actions a protected torrent never receives.
PROTECTED_ACTIONS = frozenset({"stop_seeding", "pause", "delete", "archive"})
# Actions a per-torrent seeding limit overrides until the limit is reached.
SEED_ENDING_ACTIONS = frozenset({"stop_seeding", "delete", "archive"})
# Actions the userstore carries out itself, on the user's own data (TBM's local tags): TorBox is
# never called, nothing is destroyed, so protection, the caps and one-action-per-torrent do not
# apply to them.
TAG_ACTIONS = frozenset({"add_tag", "remove_tag"})
AIRLOCK_ACTIONS = frozenset({"add_airlock", "remove_airlock"})
ACTIONS = (
    "stop_seeding",
    "pause",
    "resume",
    "delete",
    "archive",
    "force_start",
    "reannounce",
    "add_tag",
    "remove_tag",
    "add_airlock",
    "remove_airlock",
)

EVENT_TYPES = (
    "TORRENT_ADDED",
    "TORRENT_DOWNLOADING_STARTED",
    "TORRENT_SEEDING_STARTED",
    "TORRENT_STALLED",
    "TORRENT_RESUMED",
    "TORRENT_COMPLETED",
    "TORRENT_FAILED",
    "TORRENT_RATIO_REACHED",
    "TORRENT_REMOVED",
)


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of one field: ``type operator value``, optionally held for a while, or negated."""

    path: str
    type: str
    operator: str
    value: Any
    hours: float | None = None
    for_minutes: float | None = None
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """Conditions and nested groups joined by AND or OR, optionally negated."""

    path: str
    logic: str
    conditions: tuple[Condition, ...]
    groups: tuple[Group, ...] = ()
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a rule is evaluated: every `interval_minutes`, or when one of `events` happens."""

    kind: str
    interval_minutes: float = 0.0
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule. `document` keeps the caller's extra fields (TBM's opaque metadata)."""

    id: int | None
    name: str
    enabled: bool
    trigger: Trigger
    root: Group
    action: str
    cooldown_minutes: float | None
    dry_run: bool
    max_actions_per_run: int | None
    asset_types: tuple[str, ...]
    metadata: Any = None
    # The TBM tag ids of an add_tag / remove_tag action (empty for every other action).
    tag_ids: tuple[int, ...] = ()

    @property
    def uses_tags(self) -> bool:
        """True when evaluating or acting needs the items' tags (a TAGS condition, a tag action)."""
        return self.action in TAG_ACTIONS or any(
            c.type == "TAGS" for c in iter_conditions(self.root)
        )

    @property
    def for_minutes_paths(self) -> tuple[str, ...]:
        """Paths of the conditions that must hold for a while (their holds are tracked per poll)."""
        return tuple(c.path for c in iter_conditions(self.root) if c.for_minutes)


def iter_conditions(group: Group) -> list[Condition]:
    """Every condition of a group and its nested groups, in document order."""
    found = list(group.conditions)
    for child in group.groups:
        found.extend(iter_conditions(child))
    return found
