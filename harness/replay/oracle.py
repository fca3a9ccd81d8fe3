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

Memory: about 40 bytes per tag and 150 per distinct cookie.

Aggregates: harness/replay/aggregate_index.py.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Sequence

import orjson

from common.limits import PROFILE_CAP
from common.tag import parse_tag_time_ms
from harness.replay.aggregate_index import AggregateIndex

_SHIFT = 32
_REF_MASK = (1 << _SHIFT) - 1
_NEG_INF = -(1 << 62)


class Oracle:
    def __init__(self, tag_of: Callable[[int], dict] | None = None, tag_bytes_of: Callable[[int], bytes] | None = None,
                 keep: int = PROFILE_CAP):
        """`tag_of(ref)` rebuilds the tag a reference stands for. Without it the
        oracle keeps the tags given to `add` itself (fine for tests)."""
        own: list[dict] = []
        self._own: list[dict] | None = None if tag_of else own
        self._tag_of = tag_of or own.__getitem__
        self._tag_bytes_of = tag_bytes_of or (lambda ref: orjson.dumps(self._tag_of(ref)))
        self.keep = keep
        self._profiles: tuple[dict, dict] = ({}, {})  # per action: cookie -> key | sorted list of keys
        self._evicted: dict[tuple[str, int], list[int]] = {}  # (cookie, action) -> [oldest, newest] evicted time
        self._aggregates = AggregateIndex()
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
        self._aggregates.add(a, time_ms, origin, brand, category, price)

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

    # --- aggregates (harness/replay/aggregate_index.py) -----------------------------------
    def bucket_figures(self, bucket_ms: int, action: str, origin: str | None = None, brand_id: str | None = None,
                       category_id: str | None = None) -> tuple[int, int]:
        """(count, sum of price) of one bucket under the given filters."""
        return self._aggregates.bucket_figures(bucket_ms, action, origin, brand_id, category_id)

    def aggregates(self, start_ms: int, end_ms: int, action: str, aggregates: list[str], origin: str | None = None,
                   brand_id: str | None = None, category_id: str | None = None) -> dict:
        """The expected answer of an aggregate query (columns and rows, as the platform writes it)."""
        return self._aggregates.aggregates(start_ms, end_ms, action, aggregates, origin, brand_id, category_id)
