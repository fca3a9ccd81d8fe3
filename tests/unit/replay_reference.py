"""A brute-force reference for the replay oracle: every tag in a list, every
answer by a full scan. Slow on purpose; only for small seeded streams."""

from __future__ import annotations

from common.cube import BUCKET_MS
from common.limits import PROFILE_CAP
from common.tag import parse_tag_time_ms
from common.timestamps import format_bucket


class BruteForce:
    def __init__(self, keep: int = PROFILE_CAP):
        self.tags: list[tuple[int, int, dict]] = []  # (time_ms, acknowledgement order, tag)
        self.keep = keep

    def add(self, tag: dict) -> None:
        self.tags.append((parse_tag_time_ms(tag["time"]), len(self.tags), tag))

    def _of(self, cookie: str, action: str) -> list[tuple[int, int, dict]]:
        """Newest first: by time, then later acknowledged first."""
        return sorted((e for e in self.tags if e[2]["cookie"] == cookie and e[2]["action"] == action),
                      key=lambda e: (e[0], e[1]), reverse=True)

    def profile(self, cookie: str, start_ms: int, end_ms: int, limit: int = PROFILE_CAP) -> tuple[dict, bool]:
        """(the answer, whether the SPEC makes it the only right one)."""
        answer, deterministic = {"cookie": cookie}, True
        for action, name in (("VIEW", "views"), ("BUY", "buys")):
            newest_first = self._of(cookie, action)
            chosen = [(rank, e) for rank, e in enumerate(newest_first) if start_ms <= e[0] < end_ms][:limit]
            # The platform must keep the `keep` newest; an older tag in the answer may be gone.
            if chosen and chosen[-1][0] >= self.keep:
                deterministic = False
            answer[name] = [e[2] for _, e in chosen]
        return answer, deterministic

    def aggregates(self, start_ms, end_ms, action, aggregates, origin=None, brand_id=None, category_id=None) -> dict:
        filters = [(n, v) for n, v in (("origin", origin), ("brand_id", brand_id), ("category_id", category_id))
                   if v is not None]
        rows = []
        for bucket in range(start_ms, end_ms, BUCKET_MS):
            count = total = 0
            for t, _, tag in self.tags:
                p = tag["product_info"]
                values = {"origin": tag["origin"], "brand_id": p["brand_id"], "category_id": p["category_id"]}
                if bucket <= t < bucket + BUCKET_MS and tag["action"] == action and all(
                        values[n] == v for n, v in filters):
                    count += 1
                    total += p["price"]
            rows.append([format_bucket(bucket), action, *(v for _, v in filters),
                         *(str(count if a == "COUNT" else total) for a in aggregates)])
        return {"columns": ["1m_bucket", "action", *(n for n, _ in filters), *(a.lower() for a in aggregates)],
                "rows": rows}
