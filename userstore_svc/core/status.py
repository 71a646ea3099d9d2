"""Every `download_state` TorBox sends, in one table, and the status word the rules match.

TorBox's state is free text: its own words ("uploading", "stalled (no seeds)", "metaDL", ...) and
qBittorrent's raw states ("queuedDL", "stalledUP", "checkingResumeData", ...), some with a
parenthesised suffix, in any case. :data:`STATE_TABLE` maps each known text (lower case, suffix
stripped) to a *kind*; :func:`derive_status` combines the kind with TorBox's flags.

What each status means for the derived values (docs/safety.md has the user's version):
- ``downloading`` and ``stalled`` accrue downloading time and can stall (no bytes for a while).
- ``metadl`` (a magnet fetching its metadata) accrues downloading time but never stalls: no bytes
  are expected before the metadata arrives, and its size and file count are unknown until then. A
  dead magnet is found with ``STATUS is metadl`` and ``DOWNLOADING_TIME``.
- ``seeding`` and ``uploading`` accrue seeding time.
- ``queued``, ``checking`` (checking, allocating, moving, processing), ``paused``, ``completed``,
  ``inactive``, ``failed`` and ``unknown`` accrue neither and never stall. ``completed``/``cached``
  items are not seeding even when TorBox flags them active: stop seeding has nothing to stop.
- A text that is not in the table is ``unknown`` unless it is empty, when the flags alone decide
  (TorBox sends null for some items); unknown matches no time-based condition.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Statuses in which a torrent is moving bytes down (stall detection applies).
STALLABLE = frozenset({"downloading", "stalled"})
# Statuses in which a torrent is trying to download (downloading time accrues).
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

# Kinds of state text; each kind's meaning is in derive_status.
DOWNLOAD = "download"
STALL = "stall"
SEED = "seed"
META = "meta"
CHECK = "check"
QUEUE = "queue"
PAUSE = "pause"
DONE = "done"
FAIL = "fail"

STATE_TABLE: dict[str, str] = {
    # TorBox's own words.
    "downloading": DOWNLOAD,
    "uploading": SEED,
    "uploading (no peers)": SEED,
    "seeding": SEED,
    "stalled": STALL,
    "stalled (no seeds)": STALL,
    "paused": PAUSE,
    "completed": DONE,
    "cached": DONE,
    "metadl": META,
    "checking": CHECK,
    "checkingresumedata": CHECK,
    "processing": CHECK,
    "queued": QUEUE,
    "error": FAIL,
    "failed": FAIL,
    "missing": FAIL,
    # qBittorrent's raw states.
    "forceddl": DOWNLOAD,
    "forcedmetadl": META,
    "stalleddl": STALL,
    "forcedup": SEED,
    "stalledup": SEED,
    "queueddl": QUEUE,
    "queuedup": QUEUE,
    "checkingdl": CHECK,
    "checkingup": CHECK,
    "allocating": CHECK,
    "moving": CHECK,
    "pauseddl": PAUSE,
    "pausedup": PAUSE,
    "stoppeddl": PAUSE,
    "stoppedup": PAUSE,
    "missingfiles": FAIL,
    "unknown": "",
}

_SUFFIX = re.compile(r"\s*\(.*\)\s*$")


@lru_cache(maxsize=4096)
def state_kind(download_state: str) -> str | None:
    """The kind of a state text; None for an empty text, "" for a text not in the table.

    An exact entry wins ("uploading (no peers)"); otherwise the parenthesised suffix is dropped
    ("stalled (no seeds, 3 peers)" is a stall), and TorBox's prefixed failures ("failed: ...")
    are failures.
    """
    text = download_state.strip().lower()
    if not text:
        return None
    kind = STATE_TABLE.get(text)
    if kind is not None:
        return kind
    kind = STATE_TABLE.get(_SUFFIX.sub("", text))
    if kind is not None:
        return kind
    if text.startswith(("failed", "error")):
        return FAIL
    return ""


def _from_flags(*, active: bool | None, finished: bool | None, present: bool | None) -> str:
    """The status TorBox's flags alone imply (for empty or contradicted state texts).

    A flag TorBox did not send leaves the status unknown wherever it would decide it.
    """
    if active is None or finished is None:
        return "unknown"
    if active and not finished:
        return "downloading"
    if present is None:
        return "unknown"
    if active:
        return "seeding" if present else "uploading"
    if not present:
        return "inactive"
    return "completed" if finished else "unknown"


def derive_status(
    *,
    queued: bool,
    active: bool | None,
    download_state: str,
    finished: bool | None,
    present: bool | None,
) -> str:
    """One status word from the state text's kind and TorBox's flags (see the module docstring)."""
    if queued:
        return "queued"
    kind = state_kind(download_state)
    if kind is None:
        return _from_flags(active=active, finished=finished, present=present)
    if kind == "":
        return "unknown"
    if kind == FAIL:
        return "failed"
    if kind == PAUSE:
        return "paused"
    if kind == QUEUE:
        return "queued"
    if kind == CHECK:
        return "checking"
    if kind == META:
        return "metadl"
    if kind == DONE:
        if present is None:
            return "unknown"
        return "completed" if present else "inactive"
    flags = _from_flags(active=active, finished=finished, present=present)
    if kind == STALL:
        return "stalled" if flags == "downloading" else flags
    if kind == DOWNLOAD:
        return "downloading" if flags == "downloading" else flags
    # SEED: TorBox says seeding; the flags decide whether it still is (stopped: completed).
    return flags
