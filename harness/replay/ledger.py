"""The stream so far as the sender saw it, and from it what may be asked.

Tags are sent in index order, which is time order (sources are
time-ordered). The ledger keeps which tags were sent, which got a 204 and
when, which did not; per 1-minute bucket of event time whether every tag of
it has its answer; and the cookies and buckets of tags without a 204 (they
may or may not be in the log, so they are never asked about).

The frontiers: a profile query only asks about times before the first tag
not acknowledged at least `profile_age_s` ago (dropped tags aside), an
aggregate query only about buckets whose every tag was acknowledged at least
`aggregate_age_s` ago.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from common.cube import BUCKET_MS
from harness.replay.phase import Phase
from harness.replay.workload import TagSource

INF = float("inf")
FAR = 1 << 60  # "no tag will ever be sent at or after this time"


class SentBucket:
    """Send-side bookkeeping of one 1-minute bucket of event time."""

    __slots__ = ("start", "pending", "last_ack", "closed", "tainted", "done", "phase")

    def __init__(self, start: int, phase: Phase):
        self.start = start
        self.pending = 0  # tags sent, not answered
        self.last_ack = -INF  # loop time of the last 204
        self.closed = False  # no more tags will fall in it
        self.tainted = False  # a tag of it got no 204
        self.done = False  # closed, and every tag answered
        self.phase = phase


class Ledger:
    def __init__(self, source: TagSource, *, profile_age_s: float, aggregate_age_s: float,
                 on_bucket_done: Callable[[SentBucket], None]):
        self.source = source
        self.profile_age_s = profile_age_s
        self.aggregate_age_s = aggregate_age_s
        self.on_bucket_done = on_bucket_done
        self.next_index = 0  # the next tag to send
        self.stream_closed = False
        # [time_ms, ack] per tag not yet old enough, in send order; ack None (no answer yet), -1 (dropped)
        # or the loop time of its 204.
        self.pending: deque[list] = deque()
        self.safe_n = 0  # tags 0..safe_n-1 were acknowledged >= profile_age_s ago (or dropped)
        self.inflight: dict[str, int] = {}  # cookie -> tags sent, not answered
        self.tainted_cookies: set[str] = set()
        self.tainted_buckets: set[int] = set()
        self.buckets: deque[SentBucket] = deque()  # not yet old enough for aggregate queries
        self.current_bucket: SentBucket | None = None
        self.bucket_spans: dict[int, list[int]] = {}  # bucket -> [first index, last index]
        self.agg_frontier: int | None = None  # every bucket before it is final and old enough
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.last_ack = -INF  # loop time of the last 204

    # --- sending and answers ---------------------------------------------------------------
    def sent(self, i: int, record: tuple, phase: Phase) -> tuple[list, SentBucket]:
        """Tag `i` goes out now: its pending entry and its bucket (both for `answered`)."""
        time_ms, cookie = record[0], record[1]
        if self.first_time is None:
            self.first_time = time_ms
        self.last_time = time_ms
        entry = [time_ms, None]
        self.pending.append(entry)
        bucket_start = time_ms - time_ms % BUCKET_MS
        bucket = self.current_bucket
        if bucket is None or bucket.start != bucket_start:
            if bucket is not None:
                self.close_bucket(bucket)
            bucket = self.current_bucket = SentBucket(bucket_start, phase)
            self.buckets.append(bucket)
            self.bucket_spans[bucket_start] = [i, i]
        else:
            self.bucket_spans[bucket_start][1] = i
        bucket.pending += 1
        self.inflight[cookie] = self.inflight.get(cookie, 0) + 1
        self.next_index = i + 1
        return entry, bucket

    def answered(self, cookie: str, entry: list, bucket: SentBucket, acked: float | None) -> None:
        """A tag's answer came: a 204 at loop time `acked`, or (None) anything else."""
        left = self.inflight[cookie] - 1
        if left:
            self.inflight[cookie] = left
        else:
            del self.inflight[cookie]
        bucket.pending -= 1
        if acked is not None:
            entry[1] = acked
            if acked > bucket.last_ack:
                bucket.last_ack = acked
            if acked > self.last_ack:
                self.last_ack = acked
        else:
            entry[1] = -1.0
            self.tainted_cookies.add(cookie)
            bucket.tainted = True
            self.tainted_buckets.add(bucket.start)
        if bucket.closed and bucket.pending == 0:
            self._bucket_done(bucket)

    def close_bucket(self, bucket: SentBucket) -> None:
        bucket.closed = True
        if bucket.pending == 0:
            self._bucket_done(bucket)

    def close_passed_bucket(self) -> None:
        """Close the current bucket if the next tag (if any) falls in a later one."""
        bucket = self.current_bucket
        if bucket is not None and self.next_unsent_time() >= bucket.start + BUCKET_MS:
            self.close_bucket(bucket)

    def close_stream(self) -> None:
        """No more tags will be sent: the last bucket is closed."""
        self.stream_closed = True
        if self.current_bucket is not None:
            self.close_bucket(self.current_bucket)

    def _bucket_done(self, bucket: SentBucket) -> None:
        if bucket.done:
            return
        bucket.done = True
        self.on_bucket_done(bucket)

    # --- what may be asked ------------------------------------------------------------------
    def next_unsent_time(self) -> int:
        total = self.source.total
        if self.stream_closed or (total is not None and self.next_index >= total):
            return FAR
        return self.source.time_ms(self.next_index)

    def profile_frontier(self, now: float) -> int:
        """Every tag with time before the result was acknowledged >= profile_age_s ago (or dropped)."""
        age = self.profile_age_s
        pending = self.pending
        while pending:
            ack = pending[0][1]
            if ack is None or (ack >= 0 and now - ack < age):
                return pending[0][0]
            pending.popleft()
            self.safe_n += 1
        return self.next_unsent_time()

    def aggregate_frontier(self, now: float) -> int | None:
        """Every bucket before the result is final and its last 204 >= aggregate_age_s old."""
        age = self.aggregate_age_s
        buckets = self.buckets
        while buckets and buckets[0].done and now - buckets[0].last_ack >= age:
            done = buckets.popleft()
            self.agg_frontier = done.start + BUCKET_MS
        # Buckets between the last final one and the oldest open one hold no tag and never will.
        return buckets[0].start if buckets else self.agg_frontier

    def untainted_ranges(self, start: int, end: int, most: int = 1440) -> list[tuple[int, int]]:
        """[start, end) cut into ranges of at most `most` buckets that hold no bucket with a dropped tag."""
        ranges: list[tuple[int, int]] = []
        run = None
        for bucket in range(start, end + BUCKET_MS, BUCKET_MS):
            usable = bucket < end and bucket not in self.tainted_buckets
            if usable and run is None:
                run = bucket
            if run is not None and (not usable or bucket - run == most * BUCKET_MS):
                ranges.append((run, bucket))
                run = bucket if usable else None
        return ranges
