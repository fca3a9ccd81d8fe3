"""Where data is read: the prepared statements of the query side, hedged
reads, and an asyncio bridge for the driver's futures. Read-only by
construction: this is the only module that talks to Cassandra for requests,
and it holds no write statement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from cassandra import OperationTimedOut, ReadFailure, ReadTimeout, Unavailable
from cassandra.cluster import NoHostAvailable, ResponseFuture, Session
from cassandra.pool import Host
from cassandra.query import PreparedStatement

from common.cube import BUCKET_MS

log = logging.getLogger(__name__)

# A read Cassandra could not serve in time (overload, a node down, restarting
# or paused): worth another try, and otherwise a 503 with Retry-After.
CASSANDRA_UNAVAILABLE = (OperationTimedOut, ReadTimeout, ReadFailure, Unavailable, NoHostAvailable)


def _await(future: ResponseFuture) -> asyncio.Future[list[Any]]:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[list[Any]] = loop.create_future()
    began = time.monotonic()

    def ok(rows: list[Any]) -> None:
        loop.call_soon_threadsafe(_resolve, result, rows, None)

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
    bucket_rows: PreparedStatement
    hedging: Hedging = Hedging()
    retry_deadline_s: float = 0.0

    @classmethod
    def prepare(cls, session: Session, hedging: Hedging = Hedging(), retry_deadline_s: float = 0.0) -> AggregateStore:
        stmt = session.prepare(
            "SELECT bucket_ms, count, sum_price FROM aggregate_cells "
            "WHERE action = ? AND dims = ? AND bucket_ms IN ? AND origin = ? AND brand_id = ? AND category_id = ?"
        )
        stmt.is_idempotent = True
        return cls(session, stmt, hedging, retry_deadline_s)

    async def buckets(
        self, action: str, dims: int, origin: str, brand_id: str, category_id: str, start_ms: int, end_ms: int
    ) -> dict[int, tuple[int, int]]:
        """{bucket_ms: (count, sum_price)} of the stored buckets in [start, end): per bucket's partition,
        the cell's window row plus its late corrections (cql/020_aggregates.cql), summed."""
        buckets = list(range(start_ms - start_ms % BUCKET_MS, end_ms, BUCKET_MS))
        deadline = time.monotonic() + self.retry_deadline_s
        reads = [
            self._rows((action, dims, buckets[i:i + IN_BUCKETS], origin, brand_id, category_id), deadline)
            for i in range(0, len(buckets), IN_BUCKETS)
        ]
        found: dict[int, tuple[int, int]] = {}
        for rows in await asyncio.gather(*reads):
            for bucket_ms, count, sum_price in rows:
                c, p = found.get(bucket_ms, (0, 0))
                found[bucket_ms] = (c + (count or 0), p + (sum_price or 0))
        return found

    async def _rows(self, values: tuple[Any, ...], deadline: float) -> list[Any]:
        pause, attempt = RETRY_PAUSE_S[0], 1
        while True:
            try:
                return await self.hedging.read(self.session, self.bucket_rows, values)
            except CASSANDRA_UNAVAILABLE as exc:
                if time.monotonic() + pause >= deadline:
                    raise
                action, dims, buckets, *_ = values
                log.warning("aggregate read failed, retrying in %.1f s: action=%s dims=%d buckets_from_ms=%d "
                            "attempt=%d: %r", pause, action, dims, buckets[0], attempt, exc)
            await asyncio.sleep(pause)
            pause, attempt = min(pause * 2, RETRY_PAUSE_S[1]), attempt + 1
