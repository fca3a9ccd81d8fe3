"""The SQL half of the job: the Kafka source table and the aggregate cube.

The cube is eight legacy group windows (TUMBLE, 1 minute, event time), one per
subset of (origin, brand_id, category_id), unioned. Legacy group windows are
used, not window TVFs, because only they support the emit strategies the
SPEC needs (set in `cube_table_config`):
- early fire: running totals are published every second even when the
  watermark does not move, so a quiet stream's last bucket is final within
  about a second of its last tag;
- late fire (at once) with allowed lateness = retention: a late tag updates its
  bucket's total (an upsert of the corrected figure, never a second row);
  window state is purged only once the watermark is past bucket end +
  retention, i.e. by event time, never by the wall clock.
"""

from __future__ import annotations

from common.cube import DIMENSIONS
from flink_jobs.config import JobSettings

SOURCE_TABLE = "user_tags"


def source_columns(s: JobSettings, position_columns: str) -> str:
    """Columns of the record envelope (common.tag), event time and watermark."""
    return f"""
  time_ms BIGINT,
  cookie STRING,
  action STRING,
  origin STRING,
  brand_id STRING,
  category_id STRING,
  price INT,
  tag STRING,
  {position_columns},
  bucket_ms AS time_ms - MOD(MOD(time_ms, 60000) + 60000, 60000),
  ts AS TO_TIMESTAMP_LTZ(time_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '{s.watermark_out_of_orderness_ms / 1000:.3f}' SECOND"""


KAFKA_POSITION = "kafka_partition INT METADATA FROM 'partition' VIRTUAL,\n  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL"


def source_ddl(s: JobSettings, startup_mode: str) -> str:
    """Kafka source with the record envelope plus the record's partition/offset."""
    return f"""
CREATE TABLE {SOURCE_TABLE} ({source_columns(s, KAFKA_POSITION)}
) WITH (
  'connector' = 'kafka',
  'topic' = '{_quote(s.kafka_topic)}',
  'properties.bootstrap.servers' = '{_quote(s.kafka_bootstrap_servers)}',
  'properties.group.id' = '{_quote(s.kafka_group_id)}',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = '{startup_mode}',
  'format' = 'json',
  'json.fail-on-missing-field' = 'true',
  'json.ignore-parse-errors' = 'false'
)"""


def cube_query() -> str:
    """One SELECT per dims mask, unioned: (bucket_ms, action, dims, origin, brand_id, category_id, cnt, sum_price)."""
    selects = []
    for mask in range(8):
        group_cols = [name for name, bit in DIMENSIONS if mask & bit]
        # COALESCE makes every branch's columns NOT NULL alike, so the eight
        # upsert streams have one type and can be unioned.
        cols = [f"COALESCE({name}, '')" if mask & bit else "CAST('' AS STRING)" for name, bit in DIMENSIONS]
        group_by = ", ".join(["TUMBLE(ts, INTERVAL '1' MINUTE)", "bucket_ms", "action", *group_cols])
        selects.append(
            f"SELECT bucket_ms, action, CAST({mask} AS TINYINT) AS dims, "
            f"{cols[0]} AS origin, {cols[1]} AS brand_id, {cols[2]} AS category_id, "
            f"COUNT(*) AS cnt, SUM(CAST(price AS BIGINT)) AS sum_price "
            f"FROM {SOURCE_TABLE} GROUP BY {group_by}"
        )
    return "\nUNION ALL\n".join(selects)


def profile_query() -> str:
    return f"SELECT cookie, action, time_ms, kafka_partition, kafka_offset, tag FROM {SOURCE_TABLE}"


def cube_table_config(s: JobSettings) -> dict[str, str]:
    return {
        "table.local-time-zone": "UTC",
        "table.exec.source.idle-timeout": f"{s.source_idle_timeout_ms} ms",
        "table.exec.emit.early-fire.enabled": "true",
        "table.exec.emit.early-fire.delay": f"{s.bucket_early_fire_ms} ms",
        "table.exec.emit.late-fire.enabled": "true",
        # 0 = publish each late correction at once. A late-fire *delay* shares
        # the window's processing-time timer with early fire; seen to lose the
        # correction of a cell whose late tags arrived right after its on-time
        # fire (end-to-end test, 2026-11-24). Late tags are rare, so no batching.
        "table.exec.emit.late-fire.delay": "0 ms",
        "table.exec.emit.allow-lateness": f"{s.retention_ms} ms",
    }


def _quote(value: str) -> str:
    return value.replace("'", "''")
