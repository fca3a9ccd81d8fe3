"""The SQL half of the job: the Kafka source table, its event time and watermarks.

Each tag row carries its event time (`EVENT_TIME`, the record's timestamp once
the rows become a DataStream) and the source emits watermarks per Kafka
partition: the newest tag time seen minus CUBE_OUT_OF_ORDERNESS_MS, with a
partition that stays idle for SOURCE_IDLE_TIMEOUT_MS not holding them back.
Partitions are read aligned: one whose watermark runs SOURCE_MAX_DRIFT_MS
ahead of the slowest pauses, so the windows' state (which follows the
slowest partition) never holds more than that much extra event time.
The cube's windows run on them (allezon.cube.MinuteCube, Java).

The Java side reads the rows of `tag_rows_query` by column name:
PROFILE_COLUMNS and CUBE_INPUT_COLUMNS here, allezon.Columns there; the cube's
rows, made in Java, have CUBE_COLUMNS.
"""

from __future__ import annotations

from common.cube import DIMENSIONS
from common.tag import RECORD_FIELDS
from flink_jobs.config import JobSettings

SOURCE_TABLE = "user_tags"
EVENT_TIME = "event_time"

# Columns the Java side reads (allezon.Columns names the same).
ACTION = "action"
BUCKET_MS = "bucket_ms"
DIMS = "dims"
COUNT = "cnt"
SUM_PRICE = "sum_price"
COOKIE = "cookie"
TIME_MS = "time_ms"
KAFKA_PARTITION = "kafka_partition"
KAFKA_OFFSET = "kafka_offset"
TAG = "tag"
DIMENSION_COLUMNS = tuple(name for name, _ in DIMENSIONS)  # origin, brand_id, category_id
# A cube row (allezon.cube.CubeRows -> allezon.sinks.CubeSink).
CUBE_COLUMNS = (BUCKET_MS, ACTION, DIMS, *DIMENSION_COLUMNS, COUNT, SUM_PRICE)
# A profile row (allezon.sinks.ProfileSink).
PROFILE_COLUMNS = (COOKIE, ACTION, TIME_MS, KAFKA_PARTITION, KAFKA_OFFSET, TAG)
# What the cube reads from the tag rows besides ACTION (and the row's timestamp, EVENT_TIME).
CUBE_INPUT_COLUMNS = (*DIMENSION_COLUMNS, "price", EVENT_TIME)


def source_columns(s: JobSettings, position_columns: str) -> str:
    """Columns of the record envelope (common.tag.RECORD_FIELDS), the tag's event time and the watermark."""
    envelope = "".join(f"\n  {name} {sql_type}," for name, sql_type in RECORD_FIELDS)
    delay_s = f"{s.cube_out_of_orderness_ms / 1000:.3f}"
    return f"""{envelope}
  {position_columns},
  {EVENT_TIME} AS TO_TIMESTAMP_LTZ({TIME_MS}, 3),
  WATERMARK FOR {EVENT_TIME} AS {EVENT_TIME} - INTERVAL '{delay_s}' SECOND"""


KAFKA_POSITION = (f"{KAFKA_PARTITION} INT METADATA FROM 'partition' VIRTUAL,\n"
                  f"  {KAFKA_OFFSET} BIGINT METADATA FROM 'offset' VIRTUAL")


def source_ddl(s: JobSettings) -> str:
    """Kafka source with the record envelope plus the record's partition/offset.

    A restored job resumes from the offsets in its state; the startup mode
    only applies to a job started without state (the whole retained topic)."""
    return f"""
CREATE TABLE {SOURCE_TABLE} ({source_columns(s, KAFKA_POSITION)}
) WITH (
  'connector' = 'kafka',
  'topic' = '{_quote(s.kafka_topic)}',
  'properties.bootstrap.servers' = '{_quote(s.kafka_bootstrap_servers)}',
  'properties.group.id' = '{_quote(s.kafka_group_id)}',
  'properties.isolation.level' = 'read_committed',
  'properties.fetch.min.bytes' = '{s.kafka_fetch_min_bytes}',
  'properties.fetch.max.wait.ms' = '{s.kafka_fetch_max_wait_ms}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json',
  'json.fail-on-missing-field' = 'true',
  'json.ignore-parse-errors' = 'false',
  'scan.watermark.alignment.group' = 'user-tags',
  'scan.watermark.alignment.max-drift' = '{s.source_max_drift_ms} ms',
  'scan.watermark.alignment.update-interval' = '1 s'
)"""


def tag_rows_query() -> str:
    """Every tag: the profile row (PROFILE_COLUMNS) and what the cube reads (CUBE_INPUT_COLUMNS)."""
    return f"SELECT {', '.join((*PROFILE_COLUMNS, *CUBE_INPUT_COLUMNS))} FROM {SOURCE_TABLE}"


def table_config(s: JobSettings) -> dict[str, str]:
    return {
        "table.local-time-zone": "UTC",
        # A partition without tags for this long stops holding the watermark back.
        "table.exec.source.idle-timeout": f"{s.source_idle_timeout_ms} ms",
    }


def _quote(value: str) -> str:
    return value.replace("'", "''")
