"""The expected answers: SPEC sections 2 and 3 computed in memory from the
tags that got a 204, indexed so that an answer costs about its own size.

Used by the end-to-end tests (`add(tag)` with the tags of the log) and by the
replay tool, which adds tags by reference (`add_record(ref, record)`) and keeps
the tags themselves in its random-access source.

Profiles. Per (cookie, action) a sorted list of int keys
`time_ms * 2**32 + ref`: time order, ties broken by `ref`, which must grow in
acknowledgement order among tags of one cookie with the same millisecond (the
platform puts the later-acknowledged tag first). A cookie with a single tag
stores the bare int. Only the `keep` (200) newest entries are kept: the SPEC
lets the platform drop anything older, so an answer that would need an older
tag is not deterministic anyway, and `profile_refs` says so (None) instead of
answering. The oldest and newest evicted times are remembered per (cookie, action) so that
"nothing older in range" stays provable.

Aggregates. Per (action, bucket): the bucket's [count, sum] and per origin,
brand and category the same; per origin the (brand, category, price) of each
tag and per brand the (category, price) of each tag, in compact arrays. A query
with no filter or one filter reads one counter per bucket; a query with origin
and another filter scans that origin's tags of each bucket (about 1/1000 of the
bucket), brand+category scans that brand's (about 1/250). Nothing scans all
tags. Memory: about 30 bytes per tag for the aggregate side, plus about 40
bytes per tag and 150 per distinct cookie for profiles.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence

import orjson

from common.cube import BUCKET_MS
from common.tag import parse_tag_time_ms
from common.time_range import format_bucket

PROFILE_CAP = 200
_SHIFT = 32
_REF_MASK = (1 << _SHIFT) - 1
_ACTIONS = ("VIEW", "BUY")
_NEG_INF = -(1 << 62)


class _Posting:
    """Counters of one (bucket, action, value) plus, optionally, its tags' other dimensions."""

    __slots__ = ("count", "total", "codes", "prices")

    def __init__(self, with_tags: bool):
        self.count = 0
        self.total = 0
        self.codes = array("q") if with_tags else None
        self.prices = array("q") if with_tags else None


class _Bucket:
    __slots__ = ("count", "total", "origins", "brands", "categories")

    def __init__(self):
        self.count = 0
        self.total = 0
        self.origins: dict[int, _Posting] = {}
        self.brands: dict[int, _Posting] = {}
        self.categories: dict[int, _Posting] = {}


class _Interner:
    """String <-> small int, so the arrays hold ints."""

    __slots__ = ("ids", "names")

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def id(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
        return i


class Oracle:
    def __init__(self, tag_of: Callable[[int], dict] | None = None, tag_bytes_of: Callable[[int], bytes] | None = None,
                 keep: int = PROFILE_CAP):
        """`tag_of(ref)` rebuilds the tag a reference stands for. Without it the
        oracle keeps the tags given to `add` itself (fine for tests)."""
        self._own: list[dict] | None = None if tag_of else []
        self._tag_of = tag_of or self._own.__getitem__
        self._tag_bytes_of = tag_bytes_of or (lambda ref: orjson.dumps(self._tag_of(ref)))
        self.keep = keep
        self._profiles: tuple[dict, dict] = ({}, {})  # per action: cookie -> key | sorted list of keys
        self._evicted: dict[tuple[str, int], list[int]] = {}  # (cookie, action) -> [oldest, newest] evicted time
        self._buckets: tuple[dict[int, _Bucket], dict[int, _Bucket]] = ({}, {})
        self._origin, self._brand, self._category = _Interner(), _Interner(), _Interner()
        self.tags_added = 0

    # --- adding ----------------------------------------------------------------
    def add(self, tag: dict) -> None:
        """Record an acknowledged tag (as sent, known fields only), in acknowledgement order."""
        assert self._own is not None, "this oracle adds by reference: use add_record"
        ref = len(self._own)
        self._own.append(tag)
        p = tag["product_info"]
        self.add_fields(ref, parse_tag_time_ms(tag["time"]), tag["cookie"], tag["action"], tag["origin"],
                        p["brand_id"], p["category_id"], p["price"])

    def add_record(self, ref: int, record: Sequence) -> None:
        """A record tuple of harness.replay.workload (time_ms, cookie, country, device, action, origin,
        product_id, brand_id, category_id, price) acknowledged under reference `ref`."""
        self.add_fields(ref, record[0], record[1], record[4], record[5], record[7], record[8], record[9])

    def add_fields(self, ref: int, time_ms: int, cookie: str, action: str, origin: str, brand: str, category: str,
                   price: int) -> None:
        a = 1 if action == "BUY" else 0
        self.tags_added += 1
        # Profiles.
        key = (time_ms << _SHIFT) + ref
        table = self._profiles[a]
        entries = table.get(cookie)
        if entries is None:
            table[cookie] = key
        elif type(entries) is int:
            table[cookie] = [entries, key] if entries <= key else [key, entries]
        else:
            if key >= entries[-1]:
                entries.append(key)
            else:
                insort(entries, key)
            if len(entries) > self.keep:
                gone = entries.pop(0) >> _SHIFT
                span = self._evicted.get((cookie, a))
                if span is None:
                    self._evicted[(cookie, a)] = [gone, gone]
                elif gone < span[0]:
                    span[0] = gone
                elif gone > span[1]:
                    span[1] = gone
        # Aggregates.
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
            post = b.origins[o_id] = _Posting(True)
        post.count += 1
        post.total += price
        post.codes.append((b_id << _SHIFT) + c_id)
        post.prices.append(price)
        post = b.brands.get(b_id)
        if post is None:
            post = b.brands[b_id] = _Posting(True)
        post.count += 1
        post.total += price
        post.codes.append(c_id)
        post.prices.append(price)
        post = b.categories.get(c_id)
        if post is None:
            post = b.categories[c_id] = _Posting(False)
        post.count += 1
        post.total += price

    # --- profiles ------------------------------------------------------------------
    def _entries(self, cookie: str, a: int) -> list[int]:
        entries = self._profiles[a].get(cookie)
        if entries is None:
            return []
        return [entries] if type(entries) is int else entries

    def tag_count(self, cookie: str, action: str) -> int:
        """Kept entries (at most `keep`) of one cookie and action."""
        return len(self._entries(cookie, 1 if action == "BUY" else 0))

    def profile_refs(self, cookie: str, start_ms: int, end_ms: int, limit: int = PROFILE_CAP,
                     newer_unknown: int = 0) -> tuple[list[int], list[int]] | None:
        """References of the expected views and buys (newest first), or None
        when the answer depends on what the platform may have dropped.

        `newer_unknown`: tags of this cookie that may reach the platform
        without being in the oracle yet (sent, not yet acknowledged); they
        count against the 200 newest the platform must keep.
        """
        answer = []
        for a in (0, 1):
            entries = self._entries(cookie, a)
            lo = bisect_left(entries, start_ms << _SHIFT)
            hi = bisect_left(entries, end_ms << _SHIFT)
            first = max(lo, hi - limit) if limit > 0 else hi
            if first < hi and len(entries) - first - 1 + newer_unknown >= self.keep:
                return None  # the oldest tag of the answer need not be kept any more
            if hi - first < limit and self._maybe_evicted(cookie, a, start_ms, end_ms):
                return None  # an evicted (older) tag may belong to the answer
            answer.append([entries[j] & _REF_MASK for j in range(hi - 1, first - 1, -1)])
        return answer[0], answer[1]

    def profile_still_exact(self, cookie: str, refs: tuple[list[int], list[int]], start_ms: int, limit: int,
                            newer_unknown: int = 0) -> bool:
        """Re-check, later, that an answer computed by profile_refs is still
        one the platform must give (nothing in it may have been dropped since)."""
        for a, chosen in enumerate(refs):
            entries = self._entries(cookie, a)
            if chosen:
                oldest = chosen[-1]
                # Find the oldest chosen entry by its ref (keys sort by time first).
                pos = next((j for j in range(len(entries) - 1, -1, -1) if entries[j] & _REF_MASK == oldest), None)
                if pos is None or len(entries) - pos - 1 + newer_unknown >= self.keep:
                    return False
            if len(chosen) < limit and self._maybe_evicted(cookie, a, start_ms, _NEG_INF):
                return False
        return True

    def _maybe_evicted(self, cookie: str, a: int, start_ms: int, end_ms: int) -> bool:
        """Could an evicted tag have its time in [start_ms, end_ms)? (end <= start: no upper bound)"""
        span = self._evicted.get((cookie, a))
        if span is None or span[1] < start_ms:
            return False
        return end_ms <= start_ms or span[0] < end_ms

    def profile_bytes(self, cookie: str, refs: tuple[list[int], list[int]]) -> bytes:
        """The expected answer as the platform writes it (compact JSON, tags as stored)."""
        tb = self._tag_bytes_of
        return b"".join((b'{"cookie":', orjson.dumps(cookie), b',"views":[', b",".join(tb(r) for r in refs[0]),
                         b'],"buys":[', b",".join(tb(r) for r in refs[1]), b"]}"))

    def profile(self, cookie: str, start_ms: int, end_ms: int, limit: int = PROFILE_CAP) -> dict:
        """The expected profile (as a dict) from the kept tags; see is_profile_deterministic."""
        refs = self.profile_refs(cookie, start_ms, end_ms, limit)
        if refs is None:  # answer from what is kept anyway (the caller decides)
            refs = self._kept_refs(cookie, start_ms, end_ms, limit)
        return {"cookie": cookie, "views": [self._tag_of(r) for r in refs[0]],
                "buys": [self._tag_of(r) for r in refs[1]]}

    def _kept_refs(self, cookie, start_ms, end_ms, limit):
        out = []
        for a in (0, 1):
            entries = self._entries(cookie, a)
            lo, hi = bisect_left(entries, start_ms << _SHIFT), bisect_left(entries, end_ms << _SHIFT)
            first = max(lo, hi - limit) if limit > 0 else hi
            out.append([entries[j] & _REF_MASK for j in range(hi - 1, first - 1, -1)])
        return out

    def is_profile_deterministic(self, cookie: str, start_ms: int, end_ms: int, limit: int = PROFILE_CAP) -> bool:
        """True when the answer does not depend on whether tags older than
        each action's newest 200 were dropped (SPEC section 2 allows it)."""
        return self.profile_refs(cookie, start_ms, end_ms, limit) is not None

    # --- aggregates -------------------------------------------------------------------
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
        if origin is None and brand_id is None and category_id is None:
            return b.count, b.total
        if origin is not None:
            post = b.origins.get(o_id)
            if post is None:
                return 0, 0
            if brand_id is None and category_id is None:
                return post.count, post.total
            count = total = 0
            prices = post.prices
            if brand_id is not None and category_id is not None:
                want = (b_id << _SHIFT) + c_id
                for j, code in enumerate(post.codes):
                    if code == want:
                        count += 1
                        total += prices[j]
            elif brand_id is not None:
                for j, code in enumerate(post.codes):
                    if code >> _SHIFT == b_id:
                        count += 1
                        total += prices[j]
            else:
                for j, code in enumerate(post.codes):
                    if code & _REF_MASK == c_id:
                        count += 1
                        total += prices[j]
            return count, total
        if brand_id is not None:
            post = b.brands.get(b_id)
            if post is None:
                return 0, 0
            if category_id is None:
                return post.count, post.total
            count = total = 0
            prices = post.prices
            for j, code in enumerate(post.codes):
                if code == c_id:
                    count += 1
                    total += prices[j]
            return count, total
        post = b.categories.get(c_id)
        return (post.count, post.total) if post is not None else (0, 0)

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

    def buckets(self, action: str | None = None) -> list[int]:
        """Bucket starts that hold at least one tag (of `action`, or of either)."""
        actions = (0, 1) if action is None else (1 if action == "BUY" else 0,)
        return sorted({bucket for a in actions for bucket in self._buckets[a]})
