"""Cube coordinates shared by the stream job and the query API."""

import pytest

from common.cube import ALL_MASKS, BUCKET_MS, bucket_of, cell_key, day_of, mask_of


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


def test_a_24h_range_spans_at_most_two_days():
    for start in range(0, 2 * 86_400_000, 7 * BUCKET_MS):
        assert day_of(start + 86_400_000 - 1) - day_of(start) <= 1
