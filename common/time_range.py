"""`<from>_<to>` time ranges of the query API (SPEC "Time ranges").

Both ends are UTC without a suffix, at millisecond (`2022-03-22T12:15:00.000`)
or second (`2022-03-22T12:15:00`) precision; the start is inclusive and the
end exclusive; an end not after the start is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone

# ASCII digits only (`\d` would match fullwidth and other Unicode digits).
_END = r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{3}))?"
_RANGE = re.compile(_END + "_" + _END)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class TimeRangeError(ValueError):
    """The time_range parameter is malformed or empty."""


@dataclass(frozen=True)
class TimeRange:
    start_ms: int  # inclusive
    end_ms: int  # exclusive

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def _to_ms(groups: tuple[str | None, ...]) -> int:
    year, month, day, hour, minute, second = (int(g) for g in groups[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise TimeRangeError(f"not a valid date and time: {exc}") from None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + int(groups[6] or 0)


def parse_time_range(text: str) -> TimeRange:
    m = _RANGE.fullmatch(text)
    if m is None:
        raise TimeRangeError(
            "expected <from>_<to> in UTC without suffix, e.g. "
            "2022-03-22T12:15:00.000_2022-03-22T12:30:00.000 or 2022-03-22T12:25:00_2022-03-22T12:28:00"
        )
    groups = m.groups()
    start, end = _to_ms(groups[:7]), _to_ms(groups[7:])
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
