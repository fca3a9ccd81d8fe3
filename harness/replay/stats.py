"""Small, cheap measurement helpers of the replay tool: latency samples and percentiles."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable


def percentile(ordered: list[float] | array, q: float) -> float | None:
    """The q-quantile (nearest rank) of an already sorted sequence."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summary(values: Iterable[float], digits: int = 2) -> dict:
    """count, p50, p95, p99 and max of some samples (None when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50), digits),
        "p95": round(percentile(ordered, 0.95), digits),
        "p99": round(percentile(ordered, 0.99), digits),
        "max": round(ordered[-1], digits),
    }


class Samples:
    """Float samples in a compact array (4 bytes each)."""

    __slots__ = ("values",)

    def __init__(self):
        self.values = array("f")

    def add(self, value: float) -> None:
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)

    def summary(self, digits: int = 2) -> dict:
        return summary(self.values, digits)

    def tail_p(self, start: int, q: float) -> float | None:
        """Percentile of the samples added since index `start` (for the progress line)."""
        return percentile(sorted(self.values[start:]), q)
