"""The built-in example rules from the product brief; disabled until a user enables them."""

from __future__ import annotations

from typing import Any

PRESETS: tuple[dict[str, Any], ...] = (
    {
        "name": "Stop seeding at ratio 1",
        "enabled": False,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 5},
        "logicOperator": "and",
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "RATIO", "operator": "gte", "value": 1}],
            }
        ],
        "action": {"type": "stop_seeding"},
        "metadata": {"preset": "stop-seeding-ratio-1"},
    },
    {
        "name": "Archive downloads stalled for more than 6 hours",
        "enabled": False,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 5},
        "logicOperator": "and",
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "DOWNLOAD_STALLED_TIME", "operator": "gt", "value": 360}],
            }
        ],
        "action": {"type": "archive"},
        "metadata": {"preset": "archive-stalled-6h"},
    },
    {
        "name": "Stop seeding after 24 hours of seeding",
        "enabled": False,
        "assetTypes": ["torrent"],
        "trigger": {"type": "interval", "value": 5},
        "logicOperator": "and",
        "groups": [
            {
                "logicOperator": "and",
                "conditions": [{"type": "SEEDING_TIME", "operator": "gte", "value": 24}],
            }
        ],
        "action": {"type": "stop_seeding"},
        "metadata": {"preset": "stop-seeding-after-24h"},
    },
)
