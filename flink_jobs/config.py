from pathlib import Path

from pydantic import Field

from common.settings import CassandraSettings, KafkaSettings, LoggingSettings

_REPO = Path(__file__).resolve().parent.parent


class JobSettings(KafkaSettings, CassandraSettings, LoggingSettings):
    """Environment of the stream job (defaults work for `make up`)."""

    # Unset: Flink's own default (1 locally; the operator's job.parallelism on Kubernetes).
    flink_parallelism: int | None = Field(default=None, ge=1)
    # Web UI and REST API of the local cluster (job status, metrics).
    flink_rest_port: int = 8091
    kafka_group_id: str = "allezon-stream"
    # Directory with the Kafka connector jars (resolved from Maven Central by local_stack).
    flink_connector_dir: Path = _REPO / ".cache" / "artifacts" / "flink-connectors" / "lib"
    flink_checkpoint_dir: Path = _REPO / ".run" / "flink" / "checkpoints"
    flink_checkpoint_interval_ms: int = Field(default=5_000, ge=100)
    # Restore from this checkpoint/savepoint path ("" = the newest retained one, if any).
    flink_restore_from: str = ""
    # Heap state: Python keyed state on RocksDB measured ~20x slower here (see docs/STREAM_JOB.md).
    flink_state_backend: str = Field(default="hashmap", pattern="^(rocksdb|hashmap)$")
    # Event time: how far out of order tags may arrive before a bucket closes on time.
    watermark_out_of_orderness_ms: int = Field(default=2_000, ge=0)
    # A Kafka partition with no tags for this long stops holding the watermark back.
    source_idle_timeout_ms: int = Field(default=5_000, ge=100)
    # Buckets publish their running totals this often even when the watermark
    # does not move (quiet stream): a bucket is final ~this long after its last tag.
    bucket_early_fire_ms: int = Field(default=1_000, ge=100)
    # Tags later than this (event time behind the watermark) are outside retention.
    retention_ms: int = Field(default=24 * 3600 * 1000, ge=60_000)
    # Newest tags per cookie and action kept in Cassandra (SPEC: at least 200).
    profile_cap: int = Field(default=200, ge=200)
    # Extra rows tolerated before a trim, so trims are rare range deletes.
    profile_trim_slack: int = Field(default=50, ge=1)
    # Writes are buffered in keyed state per shard and flushed concurrently.
    writer_shards: int = Field(default=8, ge=1)
    writer_flush_ms: int = Field(default=200, ge=10)
    writer_batch_max: int = Field(default=1_000, ge=1)
    writer_concurrency: int = Field(default=64, ge=1)
