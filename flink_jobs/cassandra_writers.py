"""Where the job's results are stored: buffered, idempotent Cassandra writers.

Both writers are KeyedProcessFunctions keyed by a small shard number. Rows to
write are kept in keyed state (so they are part of every checkpoint) and are
flushed every WRITER_FLUSH_MS by a processing-time timer, in unlogged batches
sent concurrently; a flush returns only after Cassandra acknowledged every write and only then
clears the buffer. A crash before the flush replays the rows from the
checkpoint; every write is an upsert of an absolute value or of a row
identified by its Kafka (partition, offset), so writing twice changes nothing.
A failed write raises: Flink restarts the job from the last checkpoint.
"""

from __future__ import annotations

import logging
import time
import zlib

from pyflink.common import Row, Types
from pyflink.common.types import RowKind
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from common.cube import day_of
from flink_jobs.config import JobSettings

log = logging.getLogger(__name__)

# Tries of a write batch before the job fails over (write timeouts under load).
WRITE_ATTEMPTS = 5


def shard_of(text: str, shards: int) -> int:
    """Deterministic shard (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode()) % shards


def connect(settings: JobSettings):
    from common.cassandra import build_cluster

    cluster = build_cluster(settings, request_timeout_s=10)
    return cluster, cluster.connect(settings.cassandra_keyspace)


# Cassandra rejects batches over batch_size_fail_threshold (50 KiB by default).
BATCH_MAX_BYTES = 32 * 1024


def chunks(rows: list, max_rows: int, max_bytes: int = BATCH_MAX_BYTES) -> list[list]:
    """Consecutive groups of at most `max_rows` rows and about `max_bytes` of values."""
    out: list[list] = []
    current: list = []
    size = 0
    for row in rows:
        row_bytes = sum(len(v) if isinstance(v, str) else 8 for v in row)
        if current and (len(current) >= max_rows or size + row_bytes > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(row)
        size += row_bytes
    if current:
        out.append(current)
    return out


class _BufferedWriter(KeyedProcessFunction):
    def __init__(self, settings: JobSettings):
        self.settings = settings
        self.cluster = None
        self.session = None

    def open(self, runtime_context: RuntimeContext) -> None:
        self.cluster, self.session = connect(self.settings)
        # Shard -> the flush timer already registered. Plain memory, not state:
        # after a restore it is empty and the (restored) timer is registered
        # again, which Flink de-duplicates (same key, same timestamp).
        self.flush_at: dict[int, int] = {}
        self.prepare(runtime_context)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.shutdown()

    def prepare(self, runtime_context: RuntimeContext) -> None:
        raise NotImplementedError

    def _schedule_flush(self, ctx) -> None:
        """A flush of this shard within `writer_flush_ms` (one timer per shard and period)."""
        period = self.settings.writer_flush_ms
        now = ctx.timer_service().current_processing_time()
        at = now - now % period + period
        shard = ctx.get_current_key()
        if self.flush_at.get(shard) != at:
            ctx.timer_service().register_processing_time_timer(at)
            self.flush_at[shard] = at

    def on_timer(self, timestamp: int, ctx) -> None:
        self.flush()

    def _execute_all(self, statement, params: list) -> None:
        """Execute every write, grouped into unlogged batches sent concurrently;
        retry the failed batches (all writes are idempotent) a few times with
        back-off, then raise so Flink restarts the job from its last checkpoint.

        Batches are not for atomicity: they cut the per-request cost of the
        Python driver, which (one interpreter lock for the whole job) bounded
        the job's throughput (docs/BENCHMARKS.md, "Bottleneck").
        """
        from cassandra.concurrent import execute_concurrent

        batches = [self._batch(statement, chunk) for chunk in chunks(params, self.settings.writer_batch_rows)]
        for attempt in range(WRITE_ATTEMPTS):
            if not batches:
                return
            results = execute_concurrent(
                self.session, [(b, None) for b in batches], concurrency=self.settings.writer_concurrency,
                raise_on_first_error=False,
            )
            failed = [(b, r) for b, (ok, r) in zip(batches, results) if not ok]
            if not failed:
                return
            log.warning("%d of %d cassandra write batches failed (attempt %d of %d): %s",
                        len(failed), len(batches), attempt + 1, WRITE_ATTEMPTS, failed[0][1])
            batches = [b for b, _ in failed]
            time.sleep(0.2 * 2**attempt)
        raise failed[0][1]

    @staticmethod
    def _batch(statement, rows: list):
        from cassandra.query import BatchStatement, BatchType

        if len(rows) == 1:  # e.g. one large profile row: a plain write, no batch limits
            return statement.bind(rows[0])
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for row in rows:
            batch.add(statement, row)
        return batch

    def flush(self) -> None:
        raise NotImplementedError


class AggregateWriter(_BufferedWriter):
    """Upserts absolute (count, sum_price) per cube cell; the newest figure per cell wins.

    Figures are appended to a ListState and de-duplicated per cell at flush
    time (in arrival order, so the last one wins). A MapState overwritten in
    place lost updates under PyFlink's thread mode here (2026-11-24), so the
    buffer is append-only.
    """

    def prepare(self, runtime_context: RuntimeContext) -> None:
        self.pending = runtime_context.get_list_state(
            ListStateDescriptor("pending_figures", Types.PICKLED_BYTE_ARRAY())
        )
        self.upsert = self.session.prepare(
            "INSERT INTO aggregates (action, dims, origin, brand_id, category_id, day, bucket_ms, count, sum_price) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

    def process_element(self, row: Row, ctx):
        if row.get_row_kind() in (RowKind.UPDATE_BEFORE, RowKind.DELETE):
            return  # the matching UPDATE_AFTER carries the new absolute figure
        bucket_ms, action, dims, origin, brand_id, category_id, cnt, sum_price = row
        self.pending.add((action, dims, origin, brand_id, category_id, day_of(bucket_ms), bucket_ms, cnt, sum_price))
        self._schedule_flush(ctx)

    def flush(self) -> None:
        newest: dict[tuple, tuple] = {}
        for figure in self.pending.get():
            newest[figure[:7]] = figure
        self._execute_all(self.upsert, list(newest.values()))
        self.pending.clear()


class ProfileRowCounter(KeyedProcessFunction):
    """Keyed by (cookie, action): counts the rows written since the last trim
    and marks the tag that takes the count to cap + slack, whose flush then
    trims that cookie/action back to the newest `profile_cap` rows."""

    def __init__(self, settings: JobSettings):
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        self.rows_held = runtime_context.get_state(ValueStateDescriptor("rows_held", Types.INT()))

    def process_element(self, row: Row, ctx):
        cookie, action, time_ms, partition, offset, tag = row
        held = (self.rows_held.value() or 0) + 1
        trim = held >= self.settings.profile_cap + self.settings.profile_trim_slack
        self.rows_held.update(self.settings.profile_cap if trim else held)
        yield cookie, action, time_ms, partition, offset, tag, trim


class ProfileWriter(_BufferedWriter):
    """Inserts each tag as a profile row; trims the cookie/actions marked by ProfileRowCounter."""

    def prepare(self, runtime_context: RuntimeContext) -> None:
        self.pending = runtime_context.get_list_state(ListStateDescriptor("pending_tags", Types.PICKLED_BYTE_ARRAY()))
        self.insert = self.session.prepare(
            "INSERT INTO user_profiles (cookie, action, time_ms, kafka_partition, kafka_offset, tag) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        self.newest = self.session.prepare(
            "SELECT time_ms, kafka_partition, kafka_offset FROM user_profiles "
            "WHERE cookie = ? AND action = ? LIMIT ?"
        )
        self.trim = self.session.prepare(
            "DELETE FROM user_profiles WHERE cookie = ? AND action = ? "
            "AND (time_ms, kafka_partition, kafka_offset) < (?, ?, ?)"
        )

    def process_element(self, row, ctx):
        self.pending.add(row)
        self._schedule_flush(ctx)

    def flush(self) -> None:
        rows = list(self.pending.get())
        self._execute_all(self.insert, [row[:6] for row in rows])
        cap = self.settings.profile_cap
        for cookie, action in {(row[0], row[1]) for row in rows if row[6]}:
            kept = list(self.session.execute(self.newest, (cookie, action, cap)))
            if len(kept) == cap:
                oldest_kept = kept[-1]
                self.session.execute(
                    self.trim,
                    (cookie, action, oldest_kept[0], oldest_kept[1], oldest_kept[2]),
                )
        self.pending.clear()
