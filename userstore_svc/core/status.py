"""Normalises TorBox's free-text state and flags into one status word the rules can match."""

from __future__ import annotations

from functools import lru_cache

# Statuses in which a torrent is trying to download (stall detection applies).
DOWNLOADING = frozenset({"downloading", "stalled", "metadl"})
# Statuses in which a torrent is seeding.
SEEDING = frozenset({"seeding", "uploading"})
STATUSES = (
    "queued",
    "downloading",
    "stalled",
    "metadl",
    "checking",
    "seeding",
    "uploading",
    "paused",
    "completed",
    "inactive",
    "failed",
    "unknown",
)


@lru_cache(maxsize=4096)
def _state_word(download_state: str) -> str:
    """Classify the free-text state by prefix and substring, as robust TorBox clients do."""
    s = download_state.strip().lower()
    if not s:
        return ""
    if s.startswith(("fail", "missing")) or s == "error":
        return "failed"
    if s.startswith("paused"):
        return "paused"
    if s == "stalledup":
        return "seeding"
    if "stalled" in s:
        return "stalled"
    if s == "metadl":
        return "metadl"
    if s.startswith("checking") or s in ("allocating", "moving", "processing"):
        return "checking"
    if s.startswith("queued"):
        return "queued"
    return s


def derive_status(
    *, queued: bool, active: bool, download_state: str, finished: bool, present: bool
) -> str:
    """One status word from TorBox's flags; the flags win over the free text where they disagree."""
    if queued:
        return "queued"
    word = _state_word(download_state)
    if word == "failed":
        return "failed"
    if word == "paused":
        return "paused"
    if word in ("stalled", "metadl", "checking") and active and not finished:
        return word
    if not active:
        if finished and present:
            return "completed"
        if not present:
            return "inactive"
    if active and not finished:
        return "downloading"
    if active and finished:
        return "seeding" if present else "uploading"
    if word in ("completed", "cached"):
        return "completed"
    return "unknown"
