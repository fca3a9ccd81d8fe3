"""The aggregate cube's coordinates, shared by the stream job (writer) and the
query API (reader).

Every tag contributes to 8 cells per 1-minute bucket: one per subset of the
filter dimensions (origin, brand_id, category_id). `dims` is the subset as a
bit mask; a dimension outside the mask is stored as the empty string.
Rows are partitioned by (action, dims, bucket): cql/020_aggregates.cql.
"""

from __future__ import annotations

BUCKET_MS = 60_000

ORIGIN, BRAND, CATEGORY = 1, 2, 4
DIMENSIONS = (("origin", ORIGIN), ("brand_id", BRAND), ("category_id", CATEGORY))
ALL_MASKS = tuple(range(8))


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
