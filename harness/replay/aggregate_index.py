"""The oracle's aggregate side (harness/replay/oracle.py): SPEC section 3
computed in memory from the tags that got a 204.

Per (action, bucket): the bucket's [count, sum] and per origin, brand and
category the same; per origin the (brand, category, price) of each tag and per
brand the (category, price) of each tag, in compact arrays. A query with no
filter or one filter reads one counter per bucket; a query with origin and
another filter scans that origin's tags of each bucket (about 1/1000 of the
bucket), brand+category scans that brand's (about 1/250). Nothing scans all
tags. Memory: about 30 bytes per tag.
"""

from __future__ import annotations

from array import array

from common.cube import BUCKET_MS
from common.timestamps import format_bucket

_SHIFT = 32
_LOW_MASK = (1 << _SHIFT) - 1


class _Counter:
    """Count and sum of price of one (bucket, action, value)."""

    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0


class _Posting(_Counter):
    """A counter plus its tags' other dimensions (codes) and prices."""

    __slots__ = ("codes", "prices")

    def __init__(self) -> None:
        super().__init__()
        self.codes = array("q")
        self.prices = array("q")


class _Bucket:
    __slots__ = ("count", "total", "origins", "brands", "categories")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.origins: dict[int, _Posting] = {}
        self.brands: dict[int, _Posting] = {}
        self.categories: dict[int, _Counter] = {}


class _Interner:
    """String -> small int, so the arrays hold ints."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def id(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.ids)
        return i


class AggregateIndex:
    def __init__(self) -> None:
        self._buckets: tuple[dict[int, _Bucket], dict[int, _Bucket]] = ({}, {})  # per action (VIEW, BUY)
        self._origin, self._brand, self._category = _Interner(), _Interner(), _Interner()

    def add(self, a: int, time_ms: int, origin: str, brand: str, category: str, price: int) -> None:
        """One tag of action `a` (0 VIEW, 1 BUY)."""
        bucket_ms = time_ms - time_ms % BUCKET_MS
        buckets = self._buckets[a]
        b = buckets.get(bucket_ms)
        if b is None:
            b = buckets[bucket_ms] = _Bucket()
        b.count += 1
        b.total += price
        o_id, b_id, c_id = self._origin.id(origin), self._brand.id(brand), self._category.id(category)
        post = b.origins.get(o_id)
        if post is None:
            post = b.origins[o_id] = _Posting()
        post.count += 1
        post.total += price
        post.codes.append((b_id << _SHIFT) + c_id)
        post.prices.append(price)
        post = b.brands.get(b_id)
        if post is None:
            post = b.brands[b_id] = _Posting()
        post.count += 1
        post.total += price
        post.codes.append(c_id)
        post.prices.append(price)
        counter = b.categories.get(c_id)
        if counter is None:
            counter = b.categories[c_id] = _Counter()
        counter.count += 1
        counter.total += price

    def bucket_figures(self, bucket_ms: int, action: str, origin: str | None = None, brand_id: str | None = None,
                       category_id: str | None = None) -> tuple[int, int]:
        """(count, sum of price) of one bucket under the given filters."""
        b = self._buckets[1 if action == "BUY" else 0].get(bucket_ms)
        if b is None:
            return 0, 0
        o_id = self._origin.ids.get(origin) if origin is not None else None
        b_id = self._brand.ids.get(brand_id) if brand_id is not None else None
        c_id = self._category.ids.get(category_id) if category_id is not None else None
        if (origin is not None and o_id is None) or (brand_id is not None and b_id is None) or (
                category_id is not None and c_id is None):
            return 0, 0  # a value never seen
        # From here on an id is None exactly when its filter is.
        if o_id is None and b_id is None and c_id is None:
            return b.count, b.total
        if o_id is not None:
            post = b.origins.get(o_id)
            if post is None:
                return 0, 0
            if b_id is None and c_id is None:
                return post.count, post.total
            count = total = 0
            prices = post.prices
            if b_id is not None and c_id is not None:
                want = (b_id << _SHIFT) + c_id
                for j, code in enumerate(post.codes):
                    if code == want:
                        count += 1
                        total += prices[j]
            elif b_id is not None:
                for j, code in enumerate(post.codes):
                    if code >> _SHIFT == b_id:
                        count += 1
                        total += prices[j]
            else:
                for j, code in enumerate(post.codes):
                    if code & _LOW_MASK == c_id:
                        count += 1
                        total += prices[j]
            return count, total
        if b_id is not None:
            post = b.brands.get(b_id)
            if post is None:
                return 0, 0
            if c_id is None:
                return post.count, post.total
            count = total = 0
            prices = post.prices
            for j, code in enumerate(post.codes):
                if code == c_id:
                    count += 1
                    total += prices[j]
            return count, total
        counter = b.categories.get(c_id) if c_id is not None else None
        return (counter.count, counter.total) if counter is not None else (0, 0)

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
        filters = [(n, v) for n, v in (("origin", origin), ("brand_id", brand_id), ("category_id", category_id))
                   if v is not None]
        columns = ["1m_bucket", "action", *(n for n, _ in filters), *(a.lower() for a in aggregates)]
        fixed = [action, *(v for _, v in filters)]
        pick = [0 if a == "COUNT" else 1 for a in aggregates]
        rows = []
        for bucket in range(start_ms, end_ms, BUCKET_MS):
            figures = self.bucket_figures(bucket, action, origin, brand_id, category_id)
            rows.append([format_bucket(bucket), *fixed, *(str(figures[i]) for i in pick)])
        return {"columns": columns, "rows": rows}
