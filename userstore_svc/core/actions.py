"""Reconciling intents whose outcome never arrived (a crash between plan and outcome)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from userstore_svc.core.models import TorrentState
from userstore_svc.core.status import SEEDING

# An intent TorBox never carried out, as the next snapshot shows.
NOT_EXECUTED = "not_executed"


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What the next snapshot says about an orphaned intent."""

    action_id: int
    # "succeeded" when its effect is visible; "not_executed" when the snapshot positively shows
    # it absent (TorBox never ran it: it may be sent again, its cooldown does not apply);
    # "unknown" when the snapshot cannot tell (its cooldown applies: nothing is retried blind).
    status: str
    error_code: str


def effect_visible(action: str, state: TorrentState | None) -> bool | None:
    """Whether the snapshot shows the action took effect; None when it cannot tell."""
    gone = state is None or not state.present
    if action in ("delete", "archive", "force_start"):
        return gone
    if gone or state is None:
        return None
    if action == "stop_seeding":
        return state.status not in SEEDING
    if action == "pause":
        return state.status == "paused"
    if action == "resume":
        return state.status != "paused"
    if action in ("add_airlock", "remove_airlock") and state.snap.airlocked is not None:
        return state.snap.airlocked == (action == "add_airlock")
    return None


def reconcile(
    pending: Sequence[tuple[int, int, str]], states: Mapping[int, TorrentState]
) -> list[Reconciled]:
    """Settle each (action id, torrent key, action) left pending by the snapshot just applied."""
    settled = []
    for action_id, key, action in pending:
        state = states.get(key)
        visible = effect_visible(action, state)
        # Absent only counts when this snapshot listed the torrent (not flagged missing): a
        # torrent it did not list says nothing about what TorBox did.
        listed = state is not None and state.present and state.missing_since is None
        if visible:
            settled.append(Reconciled(action_id, "succeeded", "RECONCILED"))
        elif visible is False and listed:
            settled.append(Reconciled(action_id, NOT_EXECUTED, "NOT_EXECUTED"))
        else:
            settled.append(Reconciled(action_id, "unknown", "OUTCOME_LOST"))
    return settled
