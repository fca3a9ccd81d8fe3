"""The SQL half of the job: the Kafka source table and the aggregate cube.

The cube is one keyed aggregation: GROUP BY (event-time minute, action,
CUBE(origin, brand_id, category_id)), i.e. each tag counts in 8 cells of its
1-minute event-time bucket. It runs in mini-batches with local
pre-aggregation (`cube_table_config`):
- each batch rewrites each touched cell's absolute total once, so a hot cell
  costs one update per batch, not one per tag;
- batches close on processing time, so a quiet stream's last bucket is final
  about one batch after its last tag, with no watermark to wait for;
- a late tag simply updates its bucket's cell (a corrected absolute figure,
  never a second row), however late, while the cell is in state.
docs/BENCHMARKS.md compares this with windowed aggregation.

The Java sinks read the rows of `cube_query` and `tag_rows_query` by column
name: CUBE_COLUMNS and PROFILE_COLUMNS here, allezon.sinks.Columns there.
"""

from __future__ import annotations

from common.cube import BUCKET_MS as BUCKET_LENGTH_MS
from common.cube import DIMENSIONS
from common.tag import RECORD_FIELDS
from flink_jobs.config import JobSettings

SOURCE_TABLE = "user_tags"
# The source's rows as one DataStream, registered back as a view for the cube,
# so that the job reads (and parses) the topic once (user_tags_job.build).
TAG_ROWS_VIEW = "tag_rows"

# Columns the sinks read (allezon.sinks.Columns names the same).
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
# A cube row (allezon.sinks.CubeSink).
CUBE_COLUMNS = (BUCKET_MS, ACTION, DIMS, *DIMENSION_COLUMNS, COUNT, SUM_PRICE)
# A profile row (allezon.sinks.ProfileSink).
PROFILE_COLUMNS = (COOKIE, ACTION, TIME_MS, KAFKA_PARTITION, KAFKA_OFFSET, TAG)
# What the cube reads from the tag rows besides ACTION.
CUBE_INPUT_COLUMNS = (*DIMENSION_COLUMNS, "price", BUCKET_MS)


def source_columns(s: JobSettings, position_columns: str) -> str:
    """Columns of the record envelope (common.tag.RECORD_FIELDS) and the tag's event-time minute."""
    envelope = "".join(f"\n  {name} {sql_type}," for name, sql_type in RECORD_FIELDS)
    return f"""{envelope}
  {position_columns},
  {BUCKET_MS} AS {TIME_MS} - MOD(MOD({TIME_MS}, {BUCKET_LENGTH_MS}) + {BUCKET_LENGTH_MS}, {BUCKET_LENGTH_MS})"""


KAFKA_POSITION = (f"{KAFKA_PARTITION} INT METADATA FROM 'partition' VIRTUAL,\n"
                  f"  {KAFKA_OFFSET} BIGINT METADATA FROM 'offset' VIRTUAL")


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
  'properties.fetch.min.bytes' = '{s.kafka_fetch_min_bytes}',
  'properties.fetch.max.wait.ms' = '{s.kafka_fetch_max_wait_ms}',
  'scan.startup.mode' = '{startup_mode}',
  'format' = 'json',
  'json.fail-on-missing-field' = 'true',
  'json.ignore-parse-errors' = 'false'
)"""


def cube_query(s: JobSettings, source: str = SOURCE_TABLE) -> str:
    """The cube, one grouping set per dims mask; its columns are CUBE_COLUMNS.

    `dims` is the mask of the dimensions a row is grouped by (GROUPING(x) is 1
    when x is rolled up); a rolled-up dimension is stored as ''. No tag is
    dropped for lateness; a cell leaves the state once untouched for
    CUBE_STATE_TTL_MS (`cube_table_config`), and a later tag of it then
    starts its total anew.
    """
    present = " + ".join(f"(1 - GROUPING({name})) * {bit}" for name, bit in DIMENSIONS)
    cols = ", ".join(f"COALESCE({name}, '') AS {name}" for name in DIMENSION_COLUMNS)
    names = ", ".join(DIMENSION_COLUMNS)
    return f"""
SELECT {BUCKET_MS}, {ACTION}, CAST({present} AS TINYINT) AS {DIMS}, {cols},
       COUNT(*) AS {COUNT}, SUM(CAST(price AS BIGINT)) AS {SUM_PRICE}
FROM {source}
GROUP BY {BUCKET_MS}, {ACTION}, CUBE({names})"""


def tag_rows_query() -> str:
    """Every tag: the profile row (PROFILE_COLUMNS) and what the cube reads (CUBE_INPUT_COLUMNS)."""
    return f"SELECT {', '.join((*PROFILE_COLUMNS, *CUBE_INPUT_COLUMNS))} FROM {SOURCE_TABLE}"


def cube_table_config(s: JobSettings) -> dict[str, str]:
    return {
        "table.local-time-zone": "UTC",
        # Mini-batches: each cell's state is read and written once per batch and
        # its new total is emitted once per batch, also when no tag follows
        # (the batch closes on processing time), so a quiet stream's last
        # bucket is final about one batch after its last tag.
        "table.exec.mini-batch.enabled": "true",
        "table.exec.mini-batch.allow-latency": f"{s.bucket_flush_ms} ms",
        "table.exec.mini-batch.size": str(s.bucket_batch_size),
        # Local pre-aggregation per batch before the shuffle (the cube has 8
        # cells per tag, the coarse ones are hot).
        "table.optimizer.agg-phase-strategy": "TWO_PHASE",
        # A cell untouched for this long (processing time) is dropped from state.
        "table.exec.state.ttl": f"{s.cube_state_ttl_ms} ms",
    }


def _quote(value: str) -> str:
    return value.replace("'", "''")
