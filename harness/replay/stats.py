"""Small, cheap measurement helpers of the replay tool: latency samples and percentiles."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence

from harness.replay.report import Percentiles


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of an already sorted sequence."""
    return _nearest_rank(ordered, q) if ordered else None


def summary(values: Iterable[float], digits: int = 2) -> Percentiles:
    """count, p50, p95, p99 and max of some samples (None when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return Percentiles()
    return Percentiles(
        count=len(ordered),
        p50=round(_nearest_rank(ordered, 0.50), digits),
        p95=round(_nearest_rank(ordered, 0.95), digits),
        p99=round(_nearest_rank(ordered, 0.99), digits),
        max=round(ordered[-1], digits),
    )


class Samples:
    """Float samples in a compact array (4 bytes each)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = array("f")

    def add(self, value: float) -> None:
        self.values.append(value)

    def extend(self, other: Samples) -> None:
        self.values.extend(other.values)

    def __len__(self) -> int:
        return len(self.values)

    def summary(self, digits: int = 2) -> Percentiles:
        return summary(self.values, digits)

    def tail_p(self, start: int, q: float) -> float | None:
        """Percentile of the samples added since index `start` (for the progress line)."""
        return percentile(sorted(self.values[start:]), q)
