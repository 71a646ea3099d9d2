"""Request counters for the admin API: totals per endpoint, per key and per status."""

from __future__ import annotations

from collections import Counter


class Stats:
    """Counts every TorBox API request the simulator answers."""

    def __init__(self) -> None:
        self.total = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_key: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    def count(self, endpoint: str, api_key: str | None, status: int) -> None:
        """Record one answered request; requests without a key are counted under no key."""
        self.total += 1
        self.by_endpoint[endpoint] += 1
        if api_key:
            self.by_key[api_key] += 1
        self.by_status[status] += 1

    def report(self) -> dict[str, object]:
        """The JSON shape GET /_sim/stats returns."""
        return {
            "requests": self.total,
            "by_endpoint": dict(self.by_endpoint),
            "by_key": dict(self.by_key),
            "by_status": {str(code): n for code, n in sorted(self.by_status.items())},
        }
