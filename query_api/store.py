"""Where data is read: the prepared statements of the query side and an
asyncio bridge for the driver's futures. Read-only by construction: this is
the only module that talks to Cassandra for requests, and it holds no write
statement.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cassandra.cluster import ResponseFuture, Session
from cassandra.query import PreparedStatement

from common.cube import BUCKET_MS


def _await(future: ResponseFuture) -> asyncio.Future:
    loop = asyncio.get_running_loop()
    result: asyncio.Future = loop.create_future()

    def ok(rows):
        loop.call_soon_threadsafe(_resolve, result, rows, None)

    def failed(exc):
        loop.call_soon_threadsafe(_resolve, result, None, exc)

    future.add_callbacks(ok, failed)
    return result


def _resolve(result: asyncio.Future, rows, exc) -> None:
    if result.done():
        return
    if exc is not None:
        result.set_exception(exc)
    else:
        result.set_result(rows)


@dataclass
class ProfileStore:
    session: Session
    newest_in_range: PreparedStatement

    @classmethod
    def prepare(cls, session: Session) -> "ProfileStore":
        stmt = session.prepare(
            "SELECT tag FROM user_profiles WHERE cookie = ? AND action = ? "
            "AND time_ms >= ? AND time_ms < ? LIMIT ?"
        )
        return cls(session, stmt)

    async def tags(self, cookie: str, action: str, start_ms: int, end_ms: int, limit: int) -> list[str]:
        """JSON texts of the cookie's tags of `action` in [start, end), newest first."""
        if limit == 0:
            return []
        future = self.session.execute_async(self.newest_in_range, (cookie, action, start_ms, end_ms, limit))
        rows = await _await(future)
        return [row[0] for row in rows]


# Buckets per `IN` (a 24 h range is 1,440 partitions: several statements in
# parallel rather than one coordinator doing them all).
IN_BUCKETS = 120


@dataclass
class AggregateStore:
    session: Session
    bucket_rows: PreparedStatement

    @classmethod
    def prepare(cls, session: Session) -> "AggregateStore":
        stmt = session.prepare(
            "SELECT bucket_ms, count, sum_price FROM aggregates_by_minute "
            "WHERE action = ? AND dims = ? AND bucket_ms IN ? AND origin = ? AND brand_id = ? AND category_id = ?"
        )
        return cls(session, stmt)

    async def buckets(
        self, action: str, dims: int, origin: str, brand_id: str, category_id: str, start_ms: int, end_ms: int
    ) -> dict[int, tuple[int, int]]:
        """{bucket_ms: (count, sum_price)} of the stored buckets in [start, end): one row per bucket's partition."""
        buckets = list(range(start_ms - start_ms % BUCKET_MS, end_ms, BUCKET_MS))
        futures = [
            _await(self.session.execute_async(
                self.bucket_rows, (action, dims, buckets[i:i + IN_BUCKETS], origin, brand_id, category_id)
            ))
            for i in range(0, len(buckets), IN_BUCKETS)
        ]
        found: dict[int, tuple[int, int]] = {}
        for rows in await asyncio.gather(*futures):
            for bucket_ms, count, sum_price in rows:
                found[bucket_ms] = (count or 0, sum_price or 0)
        return found
