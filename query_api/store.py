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

from common.cube import DAY_MS


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


@dataclass
class AggregateStore:
    session: Session
    bucket_slice: PreparedStatement

    @classmethod
    def prepare(cls, session: Session) -> "AggregateStore":
        stmt = session.prepare(
            "SELECT bucket_ms, count, sum_price FROM aggregates "
            "WHERE action = ? AND dims = ? AND origin = ? AND brand_id = ? AND category_id = ? AND day = ? "
            "AND bucket_ms >= ? AND bucket_ms < ?"
        )
        return cls(session, stmt)

    async def buckets(
        self, action: str, dims: int, origin: str, brand_id: str, category_id: str, start_ms: int, end_ms: int
    ) -> dict[int, tuple[int, int]]:
        """{bucket_ms: (count, sum_price)} of the stored buckets in [start, end): one slice per event day."""
        first_day, last_day = start_ms // DAY_MS, (end_ms - 1) // DAY_MS
        futures = [
            _await(self.session.execute_async(
                self.bucket_slice, (action, dims, origin, brand_id, category_id, day, start_ms, end_ms)
            ))
            for day in range(first_day, last_day + 1)
        ]
        found: dict[int, tuple[int, int]] = {}
        for rows in await asyncio.gather(*futures):
            for bucket_ms, count, sum_price in rows:
                found[bucket_ms] = (count or 0, sum_price or 0)
        return found
