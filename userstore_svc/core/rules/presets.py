"""The built-in example rules from the product brief; disabled until a user enables them."""

from __future__ import annotations

from typing import Any


def _one_condition(
    name: str, condition: dict[str, Any], action: str, preset: str
) -> dict[str, Any]:
    """A disabled rule, checked every 5 minutes, with one condition, in TBM's rule format."""
    return {
        "name": name,
        "enabled": False,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 5},
        "logicOperator": "and",
        "groups": [{"logicOperator": "and", "conditions": [condition]}],
        "action": {"type": action},
        "metadata": {"preset": preset},
    }


PRESETS: tuple[dict[str, Any], ...] = (
    _one_condition(
        "Stop seeding at ratio 1",
        {"type": "RATIO", "operator": "gte", "value": 1},
        "stop_seeding",
        "stop-seeding-ratio-1",
    ),
    _one_condition(
        "Archive downloads stalled for more than 6 hours",
        {"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 360},
        "archive",
        "archive-stalled-6h",
    ),
    _one_condition(
        "Stop seeding after 24 hours of seeding",
        {"type": "SEEDING_TIME", "operator": "gte", "value": 24},
        "stop_seeding",
        "stop-seeding-after-24h",
    ),
)
