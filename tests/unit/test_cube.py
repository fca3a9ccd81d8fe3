"""Cube coordinates shared by the stream job and the query API."""

import pytest

from common.cube import ALL_MASKS, bucket_of, cell_key, mask_of


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
