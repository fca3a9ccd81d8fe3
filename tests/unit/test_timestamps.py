"""`<from>_<to>` parsing (SPEC "Time ranges") and bucket labels."""

import pytest

from common.timestamps import TimeRangeError, format_bucket, parse_time_range

T0 = 1647951300000  # 2022-03-22T12:15:00Z


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("2022-03-22T12:15:00.000_2022-03-22T12:30:00.000", T0, T0 + 15 * 60_000),
        ("2022-03-22T12:15:00_2022-03-22T12:30:00", T0, T0 + 15 * 60_000),
        ("2022-03-22T12:15:00.001_2022-03-22T12:15:00.002", T0 + 1, T0 + 2),
        ("2022-03-22T12:15:00_2022-03-22T12:15:00.001", T0, T0 + 1),  # precisions may mix
        ("2022-03-22T00:00:00_2022-03-23T00:00:00", T0 - 44_100_000, T0 - 44_100_000 + 86_400_000),
    ],
)
def test_both_precisions_parse(text, start, end):
    tr = parse_time_range(text)
    assert (tr.start_ms, tr.end_ms) == (start, end)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2022-03-22T12:15:00",
        "2022-03-22T12:15:00_",
        "2022-03-22T12:15:00Z_2022-03-22T12:30:00Z",
        "2022-03-22T12:15:00.0_2022-03-22T12:30:00.0",
        "2022-03-22 12:15:00_2022-03-22 12:30:00",
        "2022-03-22T12:30:00_2022-03-22T12:15:00",  # reversed
        "2022-03-22T12:15:00_2022-03-22T12:15:00",  # empty
        "2022-02-30T00:00:00_2022-03-01T00:00:00",  # impossible date
        "2022-03-22T12:15:00_2022-03-22T12:30:00_2022-03-22T12:45:00",
    ],
)
def test_bad_ranges_are_rejected(text):
    with pytest.raises(TimeRangeError):
        parse_time_range(text)


@pytest.mark.parametrize(
    "bucket_ms, label",
    [(T0, "2022-03-22T12:15:00"), (0, "1970-01-01T00:00:00"), (-60_000, "1969-12-31T23:59:00")],
)
def test_bucket_label_is_second_precision_without_suffix(bucket_ms, label):
    assert format_bucket(bucket_ms) == label
