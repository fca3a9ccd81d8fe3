"""Cube coordinates shared by the stream job and the query API."""

import itertools
import random
from collections import Counter

import pytest

from common.cube import ALL_MASKS, SLICES, STORED_MASKS, CellRead, bucket_of, cell_key, mask_of, read_of


@pytest.mark.parametrize(
    "time_ms, bucket",
    [(0, 0), (59_999, 0), (60_000, 60_000), (1647951359999, 1647951300000), (-1, -60_000), (-60_000, -60_000)],
)
def test_bucket_is_the_floor_minute(time_ms, bucket):
    assert bucket_of(time_ms) == bucket


def test_masks_cover_every_filter_combination_once():
    seen = {
        mask_of(o, b, c)
        for o in (None, "o")
        for b in (None, "b")
        for c in (None, "c")
    }
    assert seen == set(ALL_MASKS)


def test_unfiltered_dimensions_are_stored_empty():
    assert cell_key(0, "o", "b", "c") == ("", "", "")
    assert cell_key(mask_of("o", None, "c"), "o", "b", "c") == ("o", "", "c")
    assert cell_key(7, "o", "b", "c") == ("o", "b", "c")


def test_every_filter_combination_sums_the_stored_cells_exactly():
    rng = random.Random(7)
    tags = [(rng.choice("xy"), rng.choice("abc"), rng.choice("pq")) for _ in range(300)]
    stored: Counter[tuple[int, str, str, str]] = Counter()
    for tag in tags:
        for mask in STORED_MASKS:
            stored[(mask, *cell_key(mask, *tag))] += 1
    slices = set()
    for filters in itertools.product((None, "x", "y"), (None, "a", "b", "c"), (None, "p", "q")):
        read = read_of(*filters)
        wanted = (read.origin, read.brand_id, read.category_id)
        assert read.dims in STORED_MASKS
        slices.add(tuple(value is not None for value in wanted))
        summed = sum(n for (mask, *cell), n in stored.items()
                     if mask == read.dims and all(w is None or w == v for w, v in zip(wanted, cell, strict=True)))
        expected = sum(1 for tag in tags if all(f is None or f == v for f, v in zip(filters, tag, strict=True)))
        assert summed == expected, filters
    assert slices == set(SLICES)  # the query API prepares a statement for each


def test_origin_with_brand_or_category_is_read_from_the_finest_cells():
    assert 3 not in STORED_MASKS and 5 not in STORED_MASKS
    assert read_of("o", "b", None) == CellRead(7, "o", "b", None)
    assert read_of("o", None, "c") == CellRead(7, "o", None, "c")
    assert read_of(None, "b", None) == CellRead(2, "", "b", "")
