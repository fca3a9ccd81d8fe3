"""The expected answers: SPEC sections 2 and 3 computed in memory from the
tags that got a 204, in the order they were acknowledged.

Used by the end-to-end tests and by the replay tool's debug-mode queries.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

from common.cube import BUCKET_MS, bucket_of
from common.tag import parse_tag_time_ms
from common.time_range import format_bucket

PROFILE_CAP = 200


@dataclass
class Oracle:
    # cookie -> action -> sorted list of (time_ms, seq, tag)
    _profiles: dict = field(default_factory=lambda: defaultdict(lambda: {"VIEW": [], "BUY": []}))
    # (bucket, action, origin, brand, category) -> [count, sum]
    _cells: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    _seq: int = 0

    def add(self, tag: dict) -> None:
        """Record an acknowledged tag (as sent, known fields only)."""
        time_ms = parse_tag_time_ms(tag["time"])
        self._seq += 1
        bisect.insort(self._profiles[tag["cookie"]][tag["action"]], (time_ms, self._seq, tag), key=lambda e: e[:2])
        p = tag["product_info"]
        cell = self._cells[(bucket_of(time_ms), tag["action"], tag["origin"], p["brand_id"], p["category_id"])]
        cell[0] += 1
        cell[1] += p["price"]

    def profile(self, cookie: str, start_ms: int, end_ms: int, limit: int = PROFILE_CAP,
                *, kept_only: bool = False) -> dict:
        lists = self._profiles.get(cookie, {"VIEW": [], "BUY": []})

        def newest(entries):
            if kept_only:
                entries = entries[-PROFILE_CAP:]
            chosen = [tag for t, _, tag in reversed(entries) if start_ms <= t < end_ms]
            return chosen[:limit]

        return {"cookie": cookie, "views": newest(lists["VIEW"]), "buys": newest(lists["BUY"])}

    def is_profile_deterministic(self, cookie: str, start_ms: int, end_ms: int, limit: int = PROFILE_CAP) -> bool:
        """True when the answer does not depend on whether tags older than
        each action's newest 200 were dropped (SPEC section 2 allows it)."""
        return self.profile(cookie, start_ms, end_ms, limit) == self.profile(
            cookie, start_ms, end_ms, limit, kept_only=True)

    def aggregates(
        self,
        start_ms: int,
        end_ms: int,
        action: str,
        aggregates: list[str],
        origin: str | None = None,
        brand_id: str | None = None,
        category_id: str | None = None,
    ) -> dict:
        totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for (bucket, act, o, b, c), (count, total) in self._cells.items():
            if act != action or not (start_ms <= bucket < end_ms):
                continue
            if (origin is not None and o != origin) or (brand_id is not None and b != brand_id) or (
                category_id is not None and c != category_id
            ):
                continue
            totals[bucket][0] += count
            totals[bucket][1] += total
        filters = [(n, v) for n, v in (("origin", origin), ("brand_id", brand_id), ("category_id", category_id)) if v is not None]
        columns = ["1m_bucket", "action", *(n for n, _ in filters), *(a.lower() for a in aggregates)]
        rows = []
        for bucket in range(start_ms, end_ms, BUCKET_MS):
            count, total = totals.get(bucket, (0, 0))
            rows.append([format_bucket(bucket), action, *(v for _, v in filters),
                         *(str(count if a == "COUNT" else total) for a in aggregates)])
        return {"columns": columns, "rows": rows}
