from pathlib import Path

from pydantic import Field

from common.limits import PROFILE_CAP, RETAINED_EVENT_TIME_MS
from common.settings import CassandraSettings, KafkaSettings, LoggingSettings

_REPO = Path(__file__).resolve().parent.parent


class JobSettings(KafkaSettings, CassandraSettings, LoggingSettings):
    """Environment of the stream job (defaults work for `make up`)."""

    # Unset: Flink's own default (1 locally; the operator's job.parallelism on Kubernetes).
    flink_parallelism: int | None = Field(default=None, ge=1)
    # Web UI of the in-process mini cluster (`python -m flink_jobs.user_tags_job`);
    # a job submitted to a cluster uses the cluster's.
    flink_rest_port: int | None = None
    kafka_group_id: str = "allezon-stream"
    # The source's fetches wait for this many bytes or this long: at 1,000
    # tags/s a few fetches a second instead of one per handful of tags (the
    # broker's CPU per tag; docs/BENCHMARKS.md). The wait adds at most that
    # much to a profile's freshness.
    kafka_fetch_min_bytes: int = Field(default=64 * 1024, ge=1)
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0, le=500)
    # Directory with the connector jars: Kafka's and the Cassandra driver (harness/local_stack resolves them).
    flink_connector_dir: Path = _REPO / ".cache" / "artifacts" / "flink-connectors" / "lib"
    # Unset: the cluster's state.checkpoints.dir (the local stack's, or the FlinkDeployment's).
    flink_checkpoint_dir: Path | None = None
    flink_checkpoint_interval_ms: int = Field(default=5_000, ge=100)
    # Start without a checkpoint or savepoint to restore (a new deployment over
    # an empty cube); otherwise the job refuses (user_tags_job.py says why).
    start_without_state: bool = False
    # Heap state by default; rocksdb is for state larger than memory (docs/DESIGN.md, "State backend").
    flink_state_backend: str = Field(default="hashmap", pattern="^(rocksdb|hashmap)$")
    # Changelog (incremental) checkpoints of the heap state. Off: the cube's state
    # holds minutes of cells (about 60 MB per subtask at the reference workload), so a
    # full snapshot per checkpoint is cheap, and the changelog's files were never
    # removed (3.2 GB after 13 minutes of a soak; docs/BENCHMARKS.md).
    flink_changelog: bool = False
    flink_materialize_interval_ms: int = Field(default=600_000, ge=1_000)
    # The cube (docs/DESIGN.md, "Windows, lateness and retention"). Event time throughout:
    # - watermarks trail the newest tag time of each Kafka partition by this much;
    cube_out_of_orderness_ms: int = Field(default=2_000, ge=0, le=60_000)
    # - a partition without tags for this long (processing time) stops holding them back;
    source_idle_timeout_ms: int = Field(default=5_000, ge=100)
    # - a partition whose watermark runs this far ahead of the slowest one pauses (state bound);
    source_max_drift_ms: int = Field(default=30_000, ge=1_000)
    # - a bucket's window is kept this long after its end, then released: later tags
    #   for it take the late path (a correction row each, written within a checkpoint).
    #   The windows' state, snapshotted whole every checkpoint, grows with it: with
    #   3 minutes a checkpoint outlasted its interval (docs/BENCHMARKS.md, issue 15);
    cube_allowed_lateness_ms: int = Field(default=10_000, ge=0, le=300_000)
    # - buckets this far behind the watermark are deleted, and tags for them dropped (SPEC: 24 h);
    event_retention_ms: int = Field(default=RETAINED_EVENT_TIME_MS, ge=5 * 60_000)
    # A cell's running total is written at most this often while its tags arrive,
    # so a stream that stops has its last bucket final about this long after its last tag.
    cube_emit_interval_ms: int = Field(default=1_000, ge=100, le=5_000)
    # Newest tags per cookie and action kept in Cassandra (SPEC: at least PROFILE_CAP).
    profile_cap: int = Field(default=PROFILE_CAP, ge=PROFILE_CAP)
    # Extra rows tolerated before a trim, so trims are rare range deletes.
    profile_trim_slack: int = Field(default=50, ge=1)
    # The Cassandra sinks (Java, flink_jobs/operators/): rows wait at most
    # writer_flush_ms, then go out in unlogged batches of writer_batch_rows rows
    # and about writer_batch_bytes (under Cassandra's batch_size_fail_threshold,
    # 50 KiB; profile rows carry the tag JSON), at most writer_concurrency
    # batches in flight per sink; every checkpoint waits for them all.
    writer_flush_ms: int = Field(default=200, ge=10)
    writer_concurrency: int = Field(default=16, ge=1)
    writer_batch_rows: int = Field(default=500, ge=1, le=1000)
    writer_batch_bytes: int = Field(default=32 * 1024, ge=1024, le=48 * 1024)
    writer_request_timeout_ms: int = Field(default=10_000, ge=100)
    # The sinks' jar (`mvn package` in flink_jobs/operators/): the local
    # stack builds it and the Docker image ships it. The job needs it.
    flink_sinks_jar: Path | None = None
