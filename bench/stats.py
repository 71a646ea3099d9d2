"""Summaries of repeated measurements: median with min and max, and latency percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Summary:
    """One figure measured several times: the median is the figure, min and max its spread."""

    median: float
    low: float
    high: float
    runs: int

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON object."""
        return {"median": self.median, "min": self.low, "max": self.high, "runs": self.runs}


def summarize(values: Sequence[float]) -> Summary:
    """Median, min and max of the runs (at least one)."""
    if not values:
        raise ValueError("nothing to summarise")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)
