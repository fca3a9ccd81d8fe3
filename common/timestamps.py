"""The platform's time grammar, the one home of both forms (docs/API.md, "Times"):

- a tag's `time`: RFC 3339 in UTC or with a numeric offset, 0 to 9 fraction
  digits (`2022-03-22T12:15:00.000Z`), kept to the millisecond;
- a query's `time_range`: `<from>_<to>`, each end UTC without a suffix at
  second or millisecond precision (`2022-03-22T12:15:00_2022-03-22T12:30:00.000`);
  the start is inclusive, the end exclusive and after the start;
- a bucket's label: its start at second precision without a suffix.

ASCII digits only: `\\d` would also match fullwidth or Arabic-Indic digits,
which int() accepts, so such a time would be accepted and echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_DATE_TIME = r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
# Seven groups: date and time, then the fraction; the tag's form adds the zone.
TAG_TIME_PATTERN = _DATE_TIME + r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
_RANGE_END = _DATE_TIME + r"(?:\.([0-9]{3}))?"

_TAG_TIME = re.compile(TAG_TIME_PATTERN)
_RANGE = re.compile(_RANGE_END + "_" + _RANGE_END)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TAG_TIME_EXAMPLE = "2022-03-22T12:15:00.000Z"


class TagTimeError(ValueError):
    """The `time` field is not an RFC 3339 timestamp."""


class TimeRangeError(ValueError):
    """The time_range parameter is malformed or empty."""


def _moment(groups: tuple[str | None, ...], error: type[ValueError]) -> datetime:
    year, month, day, hour, minute, second = (int(g or 0) for g in groups[:6])
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise error(f"not a valid date and time: {exc}") from None


def _epoch_ms(moment: datetime, millis: int) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1) * 1000 + millis


def parse_tag_time_ms(text: str) -> int:
    """Epoch milliseconds of a tag time; sub-millisecond digits are truncated."""
    m = _TAG_TIME.fullmatch(text)
    if m is None:
        raise TagTimeError(f"expected an RFC 3339 UTC time like {TAG_TIME_EXAMPLE}")
    moment = _moment(m.groups(), TagTimeError)
    zone = m.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise TagTimeError("invalid UTC offset")
        try:
            moment -= sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in year 10000
            raise TagTimeError("the time in UTC is outside years 1 to 9999") from None
    return _epoch_ms(moment, int(((m.group(7) or "") + "000")[:3]))


@dataclass(frozen=True)
class TimeRange:
    start_ms: int  # inclusive
    end_ms: int  # exclusive

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def parse_time_range(text: str) -> TimeRange:
    m = _RANGE.fullmatch(text)
    if m is None:
        raise TimeRangeError(
            "expected <from>_<to> in UTC without suffix, e.g. "
            "2022-03-22T12:15:00.000_2022-03-22T12:30:00.000 or 2022-03-22T12:25:00_2022-03-22T12:28:00"
        )
    groups = m.groups()
    start = _epoch_ms(_moment(groups[:7], TimeRangeError), int(groups[6] or 0))
    end = _epoch_ms(_moment(groups[7:], TimeRangeError), int(groups[13] or 0))
    if end <= start:
        raise TimeRangeError("the end of the range must be after its start")
    return TimeRange(start, end)


@lru_cache(maxsize=8192)
def format_second(second: int) -> str:
    """Epoch second -> `2022-03-01T00:05:00` (UTC, second precision, no suffix).

    Cached: answers and generated tags format the same recent seconds over and over.
    """
    t = _EPOCH + timedelta(seconds=second)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def format_bucket(bucket_ms: int) -> str:
    """Bucket label: its start at second precision, no suffix (2022-03-01T00:05:00)."""
    return format_second(bucket_ms // 1000)
