"""Where data is read: the prepared statements of the query side, hedged
reads, and an asyncio bridge for the driver's futures. Read-only by
construction: this is the only module that talks to Cassandra for requests,
and it holds no write statement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from cassandra import OperationTimedOut, ReadFailure, ReadTimeout, Unavailable
from cassandra.cluster import NoHostAvailable, ResponseFuture, Session
from cassandra.pool import Host
from cassandra.query import PreparedStatement

from common.cube import BUCKET_MS, DIMENSIONS, SLICES, CellRead, bucket_of

log = logging.getLogger(__name__)

# A read Cassandra could not serve in time (overload, a node down, restarting
# or paused): worth another try, and otherwise a 503 with Retry-After.
CASSANDRA_UNAVAILABLE = (OperationTimedOut, ReadTimeout, ReadFailure, Unavailable, NoHostAvailable)


def _await(future: ResponseFuture) -> asyncio.Future[list[Any]]:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[list[Any]] = loop.create_future()
    began = time.monotonic()
    pages: list[Any] = []

    def ok(rows: list[Any]) -> None:
        # Every page: a range's cells with many late corrections exceed the
        # driver's page (5,000 rows), and the first page alone is a wrong sum.
        pages.extend(rows)
        if future.has_more_pages:
            future.start_fetching_next_page()  # calls `ok` again with the next page
        else:
            loop.call_soon_threadsafe(_resolve, result, pages, None)

    def failed(exc: BaseException) -> None:
        log.warning("cassandra read failed after %.0f ms, hosts tried %s: %r", (time.monotonic() - began) * 1000,
                    [str(host.endpoint) for host in future.attempted_hosts], exc)
        loop.call_soon_threadsafe(_resolve, result, None, exc)

    future.add_callbacks(ok, failed)
    return result


def _resolve(result: asyncio.Future[list[Any]], rows: list[Any] | None, exc: BaseException | None) -> None:
    if result.done():
        return
    if exc is not None:
        result.set_exception(exc)
    else:
        result.set_result(rows or [])


def _forget(attempt: asyncio.Future[list[Any]]) -> None:
    """A hedged attempt that lost the race: its outcome is not needed (an error was logged by `_await`)."""
    if not attempt.cancelled():
        attempt.exception()


@dataclass(frozen=True)
class Hedging:
    """A read whose coordinator has not answered after `delay_s` is sent again,
    to a live host not asked yet, up to `extra` times; the first answer wins,
    and a failed attempt is replaced at once. The statements here are reads, so
    asking twice is harmless. A node that is paused (GC, stalled disk) or busy
    restarting then costs a read `delay_s`, not the request timeout.

    Explicit rather than the driver's speculative executions: in the replicated
    test cluster those re-sent a few reads in a thousand to the same paused
    coordinator (docs/RELIABILITY.md)."""

    delay_s: float = 0.0
    extra: int = 0

    async def read(self, session: Session, statement: PreparedStatement, values: tuple[Any, ...]) -> list[Any]:
        first = session.execute_async(statement, values)
        if self.delay_s <= 0 or self.extra <= 0:
            return await _await(first)
        asked: list[Host] = list(first.attempted_hosts)
        pending = {_await(first)}
        error: BaseException | None = None
        hedges = 0
        while True:
            more = hedges < self.extra
            if pending:
                done, pending = await asyncio.wait(pending, timeout=self.delay_s if more else None,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for attempt in done:
                    if attempt.exception() is None:
                        for other in pending:
                            other.add_done_callback(_forget)
                        return attempt.result()
                    error = error or attempt.exception()
            if not more:
                if not pending:
                    assert error is not None  # every attempt ended, none with rows
                    raise error
                continue
            # Too slow, or failed: ask a live host not asked yet.
            host = next((h for h in session.cluster.metadata.all_hosts() if h.is_up and h not in asked), None)
            if host is None:
                hedges = self.extra  # every live host asked: wait for what is in flight
                continue
            hedges += 1
            asked.append(host)
            pending.add(_await(session.execute_async(statement, values, host=host)))


@dataclass
class ProfileStore:
    session: Session
    newest_in_range: PreparedStatement
    hedging: Hedging = Hedging()

    @classmethod
    def prepare(cls, session: Session, hedging: Hedging = Hedging()) -> ProfileStore:
        stmt = session.prepare(
            "SELECT tag FROM user_profiles WHERE cookie = ? AND action = ? "
            "AND time_ms >= ? AND time_ms < ? LIMIT ?"
        )
        stmt.is_idempotent = True  # a read: hedges and retries may repeat it
        return cls(session, stmt, hedging)

    async def tags(self, cookie: str, action: str, start_ms: int, end_ms: int, limit: int) -> list[str]:
        """JSON texts of the cookie's tags of `action` in [start, end), newest first."""
        if limit == 0:
            return []
        rows = await self.hedging.read(self.session, self.newest_in_range, (cookie, action, start_ms, end_ms, limit))
        return [row[0] for row in rows]


# Buckets per `IN` (a 24 h range is 1,440 partitions: several statements in
# parallel rather than one coordinator doing them all).
IN_BUCKETS = 120
# Pause before asking a failed statement again: doubles from the first, up to the last.
RETRY_PAUSE_S = (0.1, 1.0)


@dataclass
class AggregateStore:
    """Range reads of the cube. The SPEC gives an aggregate answer 60 s, and a
    24 h range at QUORUM is 1,440 partition reads: a statement that fails while
    a node is down, restarting or overloaded is asked again until
    `retry_deadline_s` after the request began, not turned into a 503 at once."""

    session: Session
    bucket_rows: dict[tuple[bool, ...], PreparedStatement]
    hedging: Hedging = Hedging()
    retry_deadline_s: float = 0.0

    @classmethod
    def prepare(cls, session: Session, hedging: Hedging = Hedging(), retry_deadline_s: float = 0.0) -> AggregateStore:
        statements: dict[tuple[bool, ...], PreparedStatement] = {}
        # One statement per set of matched clustering columns that `read_of` gives.
        for matched in SLICES:
            where = " AND ".join(f"{name} = ?" for (name, _), on in zip(DIMENSIONS, matched, strict=True) if on)
            # A matched column after an unmatched one is filtered within the
            # slice the columns before it select (one origin), not a scan.
            skips = any(on and not before for before, on in zip(matched, matched[1:], strict=False))
            filtering = " ALLOW FILTERING" if skips else ""
            stmt = session.prepare(
                "SELECT bucket_ms, count, sum_price FROM aggregate_cells "
                f"WHERE action = ? AND dims = ? AND bucket_ms IN ? AND {where}{filtering}"
            )
            stmt.is_idempotent = True
            statements[matched] = stmt
        return cls(session, statements, hedging, retry_deadline_s)

    async def buckets(self, action: str, cells: CellRead, start_ms: int, end_ms: int) -> dict[int, tuple[int, int]]:
        """{bucket_ms: (count, sum_price)} of the stored buckets in [start, end): per bucket's partition,
        the cells' window rows plus their late corrections (cql/020_aggregates.cql), summed."""
        buckets = list(range(start_ms - start_ms % BUCKET_MS, end_ms, BUCKET_MS))
        values = (cells.origin, cells.brand_id, cells.category_id)
        statement = self.bucket_rows[tuple(value is not None for value in values)]
        matched = tuple(value for value in values if value is not None)
        deadline = time.monotonic() + self.retry_deadline_s
        reads = [
            self._rows(statement, (action, cells.dims, buckets[i:i + IN_BUCKETS], *matched), deadline)
            for i in range(0, len(buckets), IN_BUCKETS)
        ]
        found: dict[int, tuple[int, int]] = {}
        for rows in await asyncio.gather(*reads):
            for bucket_ms, count, sum_price in rows:
                c, p = found.get(bucket_ms, (0, 0))
                found[bucket_ms] = (c + (count or 0), p + (sum_price or 0))
        return found

    async def _rows(self, statement: PreparedStatement, values: tuple[Any, ...], deadline: float) -> list[Any]:
        pause, attempt = RETRY_PAUSE_S[0], 1
        while True:
            try:
                return await self.hedging.read(self.session, statement, values)
            except CASSANDRA_UNAVAILABLE as exc:
                if time.monotonic() + pause >= deadline:
                    raise
                action, dims, buckets, *_ = values
                log.warning("aggregate read failed, retrying in %.1f s: action=%s dims=%d buckets_from_ms=%d "
                            "attempt=%d: %r", pause, action, dims, buckets[0], attempt, exc)
            await asyncio.sleep(pause)
            pause, attempt = min(pause * 2, RETRY_PAUSE_S[1]), attempt + 1


# The newest bucket is probed among the buckets this far back from a hint
# (the wall clock, or the newest found before) in one `IN` read.
PROBE_BUCKETS = 120
# A scan of the cube's partition keys finds a newest bucket no hint is near
# (a replayed stream dated 2022): when the reads near the hints find nothing,
# and otherwise once per this many seconds (a stream that jumped in time).
SCAN_INTERVAL_S = 60.0
# Values seen per dimension in a /dimensions answer: the most counted first.
TOP_VALUES = 50


@dataclass
class CubeCatalog:
    """What the cube holds: its newest bucket per action, and the filter values
    seen in a range. For the dashboard; the answers of /aggregates do not depend
    on it."""

    session: Session
    probe: PreparedStatement
    scan: PreparedStatement
    values: PreparedStatement
    hedging: Hedging = Hedging()
    _hints: dict[str, int] = field(default_factory=dict)
    _scanned: dict[str, int] = field(default_factory=dict)
    _scanned_at: float = -SCAN_INTERVAL_S
    _scan_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def prepare(cls, session: Session, hedging: Hedging = Hedging()) -> CubeCatalog:
        # dims 0 has a cell in every bucket that holds a tag of the action.
        probe = session.prepare(
            "SELECT bucket_ms FROM aggregate_cells WHERE action = ? AND dims = 0 AND bucket_ms IN ? "
            "PER PARTITION LIMIT 1"
        )
        scan = session.prepare("SELECT DISTINCT action, dims, bucket_ms FROM aggregate_cells")
        values = session.prepare(
            "SELECT origin, brand_id, category_id, count FROM aggregate_cells "
            "WHERE action = ? AND dims = ? AND bucket_ms IN ?"
        )
        for stmt in (probe, scan, values):
            stmt.is_idempotent = True
        return cls(session, probe, scan, values, hedging)

    async def newest_bucket(self, action: str, now_ms: int) -> int | None:
        """Start (epoch ms) of the newest bucket of `action` in the cube, or None when it has none."""
        hints = {bucket_of(now_ms)}
        if action in self._hints:
            hints.add(self._hints[action] + (PROBE_BUCKETS - 1) * BUCKET_MS)
        began = time.monotonic()
        found = [await self._probe(action, hint) for hint in sorted(hints)]
        if all(bucket is None for bucket in found) or began - self._scanned_at >= SCAN_INTERVAL_S:
            async with self._scan_lock:
                if self._scanned_at < began:  # else a scan began since, and has just ended: use it
                    await self._scan_all()
        candidates = [b for b in (*found, self._scanned.get(action)) if b is not None]
        newest = max(candidates, default=None)
        if newest is not None:
            self._hints[action] = newest
        return newest

    async def _probe(self, action: str, last_ms: int) -> int | None:
        buckets = [last_ms - i * BUCKET_MS for i in range(PROBE_BUCKETS)]
        rows = await self.hedging.read(self.session, self.probe, (action, buckets))
        return max((row[0] for row in rows), default=None)

    async def _scan_all(self) -> None:
        """Every partition key of the cube (bounded by the retention: 16 per retained minute), paged."""
        self._scanned_at = time.monotonic()

        def scan() -> dict[str, int]:
            newest: dict[str, int] = {}
            for action, _dims, bucket_ms in self.session.execute(self.scan):
                if bucket_ms > newest.get(action, bucket_ms - 1):
                    newest[action] = bucket_ms
            return newest

        self._scanned = await asyncio.to_thread(scan)

    async def values_seen(self, action: str, start_ms: int, end_ms: int) -> dict[str, list[tuple[str, int]]]:
        """Per dimension, the values tags of `action` carried in [start, end) with their
        counts, the most counted first (at most TOP_VALUES)."""
        buckets = list(range(bucket_of(start_ms), end_ms, BUCKET_MS))
        answer: dict[str, list[tuple[str, int]]] = {}
        reads = [self.hedging.read(self.session, self.values, (action, mask, buckets)) for _, mask in DIMENSIONS]
        # Rows are (origin, brand_id, category_id, count): a dimension's column is its place in DIMENSIONS.
        for column, ((name, _mask), rows) in enumerate(zip(DIMENSIONS, await asyncio.gather(*reads), strict=True)):
            counts: dict[str, int] = {}
            for row in rows:
                counts[row[column]] = counts.get(row[column], 0) + (row[3] or 0)
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            answer[name] = ranked[:TOP_VALUES]
        return answer
