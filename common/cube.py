"""The aggregate cube's coordinates, shared by the stream job (writer) and the
query API (reader).

A filter combination is a subset of the dimensions (origin, brand_id,
category_id); `dims` is the subset as a bit mask, and a dimension outside the
mask is stored as the empty string. Rows are partitioned by (action, dims,
bucket) and clustered by (origin, brand_id, category_id):
cql/020_aggregates.cql.

Every tag contributes to one cell per stored mask and 1-minute bucket
(STORED_MASKS). The other masks are read from the finest cells (`read_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKET_MS = 60_000

ORIGIN, BRAND, CATEGORY = 1, 2, 4
DIMENSIONS = (("origin", ORIGIN), ("brand_id", BRAND), ("category_id", CATEGORY))
ALL_MASKS = tuple(range(8))
# Masks with cells of their own. origin+brand_id (3) and origin+category_id (5)
# are read from the finest cells (7) instead, within the slice of one origin:
# they held about half of the cube's cells at the reference workload, and a
# query reads a few rows more per bucket (docs/BENCHMARKS.md, issue 15). The
# coarse masks stay: /dimensions lists a dimension's values from its own mask.
STORED_MASKS = (0, ORIGIN, BRAND, CATEGORY, BRAND | CATEGORY, ORIGIN | BRAND | CATEGORY)


def bucket_of(time_ms: int) -> int:
    """Start (epoch ms) of the 1-minute bucket holding `time_ms` (floor, also before 1970)."""
    return time_ms - time_ms % BUCKET_MS


def mask_of(origin: str | None, brand_id: str | None, category_id: str | None) -> int:
    """The cube mask answering a query with these filters (None = not filtered)."""
    return (
        (ORIGIN if origin is not None else 0)
        | (BRAND if brand_id is not None else 0)
        | (CATEGORY if category_id is not None else 0)
    )


def cell_key(mask: int, origin: str, brand_id: str, category_id: str) -> tuple[str, str, str]:
    """The (origin, brand_id, category_id) stored for a tag's cell of `mask`."""
    return (
        origin if mask & ORIGIN else "",
        brand_id if mask & BRAND else "",
        category_id if mask & CATEGORY else "",
    )


@dataclass(frozen=True)
class CellRead:
    """Where the cells answering a filter combination are: the stored mask
    `dims`, and the clustering values to match (None: any value). With every
    value given, one cell per bucket; otherwise the finer cells of the slice."""

    dims: int
    origin: str | None
    brand_id: str | None
    category_id: str | None


# The clustering columns (origin, brand_id, category_id) a read of `read_of` matches.
SLICES = ((True, True, True), (True, True, False), (True, False, True))


def read_of(origin: str | None, brand_id: str | None, category_id: str | None) -> CellRead:
    """The cells to sum for a query with these filters (None = not filtered)."""
    mask = mask_of(origin, brand_id, category_id)
    if mask in STORED_MASKS:
        stored = cell_key(mask, origin or "", brand_id or "", category_id or "")
        return CellRead(mask, *stored)
    return CellRead(ORIGIN | BRAND | CATEGORY, origin, brand_id, category_id)
