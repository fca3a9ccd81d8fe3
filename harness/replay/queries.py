"""The reference query mix: profile and aggregate queries about what may be
asked (harness/replay/ledger.py), each with the oracle's expected answer.

Profiles: a tag is picked among the old-enough ones (80% among the newest
100,000, 20% among all) and its cookie asked about, with a range that ends
before the profile frontier; lengths, precisions and limits vary (docs/REPLAY.md,
"The query mix and the oracle"). Aggregates: 1 to 1,440 buckets ending at
one of the 5 newest final buckets, a random filter subset with values taken
from a tag of the range, a random action and list of aggregates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import orjson

from common.cube import BUCKET_MS
from common.limits import PROFILE_CAP
from common.timestamps import format_second
from harness.replay.ledger import Ledger
from harness.replay.oracle import Oracle
from harness.replay.phase import Phase
from harness.replay.workload import TagSource

# Profile time-range lengths the mix draws from (ms); None = a random length up to 2 h.
PROFILE_RANGES_MS = (1_000, 10_000, 60_000, 300_000, 600_000, 3_600_000, 6 * 3_600_000, 86_400_000, None)
AGGREGATE_LISTS = (["COUNT"], ["SUM_PRICE"], ["COUNT", "SUM_PRICE"], ["SUM_PRICE", "COUNT"])


def range_text(start_ms: int, end_ms: int, millis: bool) -> str:
    """A `time_range` parameter, to the second or to the millisecond."""
    def one(ms: int) -> str:
        text = format_second(ms // 1000)
        return f"{text}.{ms % 1000:03d}" if millis else text
    return f"{one(start_ms)}_{one(end_ms)}"


@dataclass
class ProfileAsked:
    """What a profile query's expected answer was computed from (to re-check it later)."""

    cookie: str
    refs: tuple[list[int], list[int]]
    start: int
    limit: int


@dataclass
class Query:
    endpoint: str
    url: str
    expected: bytes
    phase: Phase
    profile: ProfileAsked | None = None


class QueryMix:
    def __init__(self, source: TagSource, oracle: Oracle, ledger: Ledger, rng: random.Random):
        self.source = source
        self.oracle = oracle
        self.ledger = ledger
        self.rng = rng

    def _pick_safe_index(self, n: int) -> int:
        lo = 0 if self.rng.random() < 0.2 else max(0, n - 100_000)
        return self.rng.randrange(lo, n)

    def profile(self, now: float, phase: Phase, frontier: int | None = None) -> Query | None:
        """A profile query about an old-enough tag (with `frontier`: about any sent tag, times before it)."""
        rng = self.rng
        ledger = self.ledger
        if frontier is None:
            frontier, pool = ledger.profile_frontier(now), ledger.safe_n
        else:
            pool = ledger.next_index
        if pool == 0:
            phase.skipped["user_profiles"] += 1
            return None
        for _ in range(4):
            record = self.source.record(self._pick_safe_index(pool))
            t, cookie = record[0], record[1]
            if cookie in ledger.tainted_cookies:
                continue
            length = rng.choice(PROFILE_RANGES_MS) or rng.randint(1, 7_200_000)
            end = min(t + 1 + rng.randrange(length), frontier)
            start = end - length
            millis = True
            if rng.random() < 0.3:  # second precision, if it still covers only old-enough tags
                s2, e2 = start - start % 1000, end - end % 1000
                if e2 > s2:
                    start, end, millis = s2, e2, False
            r = rng.random()
            limit = None if r < 0.35 else 200 if r < 0.55 else rng.choice((0, 1)) if r < 0.62 else rng.randint(2, 199)
            effective = PROFILE_CAP if limit is None else limit
            refs = self.oracle.profile_refs(cookie, start, end, effective, ledger.inflight.get(cookie, 0))
            if refs is None:
                phase.undetermined += 1
                continue
            params: dict[str, str | int] = {"time_range": range_text(start, end, millis)}
            if limit is not None:
                params["limit"] = limit
            url = f"/user_profiles/{quote(cookie, safe='')}?{urlencode(params)}"
            return Query("user_profiles", url, self.oracle.profile_bytes(cookie, refs), phase,
                         ProfileAsked(cookie, refs, start, effective))
        phase.skipped["user_profiles"] += 1
        return None

    def aggregate(self, now: float, phase: Phase, frontier: int | None = None) -> Query | None:
        """An aggregate query about final, old-enough buckets (with `frontier`: about buckets before it)."""
        rng = self.rng
        frontier = self.ledger.aggregate_frontier(now) if frontier is None else frontier
        first = self.ledger.first_time
        if frontier is None or first is None or frontier <= first - first % BUCKET_MS:
            phase.skipped["aggregates"] += 1
            return None
        first_bucket = first - first % BUCKET_MS
        tainted = self.ledger.tainted_buckets
        for _ in range(4):
            r = rng.random()
            buckets = rng.randint(1, 10) if r < 0.9 else rng.randint(11, 120) if r < 0.97 else rng.randint(121, 1440)
            span = (frontier - first_bucket) // BUCKET_MS
            end = frontier - BUCKET_MS * rng.randrange(min(span, 5))
            start = end - buckets * BUCKET_MS
            if tainted and any(b in tainted for b in range(start, end, BUCKET_MS)):
                continue
            query = self.aggregate_query(start, end, phase, millis=rng.random() < 0.5)
            if query is not None:
                return query
        phase.skipped["aggregates"] += 1
        return None

    def aggregate_query(self, start: int, end: int, phase: Phase, *, millis: bool = False,
                        mask: int | None = None, action: str | None = None,
                        aggregates: list[str] | None = None) -> Query | None:
        """An aggregate query over [start, end); unless given, a random filter subset (bit mask of
        origin, brand_id, category_id), action and aggregates."""
        rng = self.rng
        mask = rng.randrange(8) if mask is None else mask
        values: dict[str, str] = {}
        if mask:
            spans = [self.ledger.bucket_spans[b] for b in range(max(start, end - 120 * BUCKET_MS), end, BUCKET_MS)
                     if b in self.ledger.bucket_spans]
            if spans:
                lo, hi = rng.choice(spans)
                record = self.source.record(rng.randint(lo, hi))
            elif self.ledger.next_index:
                record = self.source.record(rng.randrange(self.ledger.next_index))
            else:
                return None
            for bit, name, value in ((1, "origin", record[5]), (2, "brand_id", record[7]),
                                     (4, "category_id", record[8])):
                if mask & bit:
                    values[name] = value
        action = action or rng.choice(("VIEW", "BUY"))
        aggregates = aggregates or rng.choice(AGGREGATE_LISTS)
        expected = self.oracle.aggregates(start, end, action, aggregates, values.get("origin"),
                                          values.get("brand_id"), values.get("category_id"))
        params = [("time_range", range_text(start, end, millis)), ("action", action),
                  *(("aggregates", a) for a in aggregates), *values.items()]
        return Query("aggregates", "/aggregates?" + urlencode(params), orjson.dumps(expected), phase)
