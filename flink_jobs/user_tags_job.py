"""The stream job: Kafka `user_tags` -> Cassandra profiles and aggregate cube.

Submitted to a Flink cluster with Flink's own CLI; the command line has one
home, flink_jobs/launch.py (`make job-submit` runs it; docs/OPERATIONS.md).
`python -m flink_jobs.user_tags_job` runs the same graph on PyFlink's
in-process mini cluster instead. The source, its event time and watermarks
are Flink SQL (sql.py); the cube's windows and the Cassandra sinks are Java
(flink_jobs/operators/, attached by sinks.py), so no record enters Python:
this module only builds the graph.

Exactly-once effect: checkpoints hold the Kafka offsets and the cube state, a
checkpoint completes only once the sinks had every earlier row acknowledged by
Cassandra, and every write is idempotent.

State: the job restores what it is submitted with (`flink run --fromSavepoint`
a checkpoint or savepoint). Without one it reads the topic from the earliest
retained offset, which over a topic whose start has been deleted would write
partial bucket totals over complete ones. So it refuses to start without state
unless told that this is intended (START_WITHOUT_STATE=true: a new deployment,
an empty cube).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common.logging import configure_logging
from flink_jobs.config import JobSettings
from flink_jobs.launch import JOB_NAME

if TYPE_CHECKING:
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

log = logging.getLogger("flink_jobs.user_tags_job")

# Where Flink's configuration names the snapshot a job restores (the current key and its older name).
RESTORE_PATH_KEYS = ("execution.state-recovery.path", "execution.savepoint.path")


class NoStateError(SystemExit):
    """The job was submitted without state and without START_WITHOUT_STATE."""


def job_jars(s: JobSettings) -> list[Path]:
    """The connector jars (Kafka, the Cassandra driver) and the sinks' jar."""
    jars = sorted(s.flink_connector_dir.glob("*.jar"))
    if not jars:
        raise SystemExit(f"no connector jars in {s.flink_connector_dir}; run `make up` (it resolves them)")
    if s.flink_sinks_jar is None or not s.flink_sinks_jar.is_file():
        raise SystemExit(f"FLINK_SINKS_JAR={s.flink_sinks_jar} is not a file: the job needs the Cassandra sinks' jar "
                         "(`mvn package` in flink_jobs/operators/; `make up` builds it)")
    return [*jars, s.flink_sinks_jar]


def flink_configuration(s: JobSettings) -> Configuration:
    """The job's own settings. Where checkpoints go, the scheduler and the
    restore path are the cluster's and the submitter's (flink_jobs/launch.py)."""
    from pyflink.common import Configuration

    jars = job_jars(s)
    c = Configuration()
    settings = {
        "pipeline.name": JOB_NAME,
        "pipeline.jars": ";".join(j.as_uri() for j in jars),
        "python.client.executable": sys.executable,
        "state.backend.type": s.flink_state_backend,
        "state.checkpoints.num-retained": "3",
        "execution.checkpointing.interval": f"{s.flink_checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.min-pause": "500 ms",
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "30 s",
    }
    if s.flink_state_backend == "rocksdb":
        # Each checkpoint uploads only the sstables written since the last one.
        settings["execution.checkpointing.incremental"] = "true"
    if s.flink_checkpoint_dir is not None:
        settings["state.checkpoints.dir"] = s.flink_checkpoint_dir.resolve().as_uri()
    if s.flink_rest_port is not None:  # the mini cluster's web UI
        settings.update({"rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1",
                         "rest.port": str(s.flink_rest_port)})
    if s.flink_changelog:
        if s.flink_checkpoint_dir is None:
            raise SystemExit("FLINK_CHANGELOG=true needs FLINK_CHECKPOINT_DIR (the changelog's files go beside it)")
        settings.update({
            "state.changelog.enabled": "true",
            "state.changelog.storage": "filesystem",
            "state.changelog.dstl.dfs.base-path": (s.flink_checkpoint_dir / "changelog").resolve().as_uri(),
            "state.changelog.periodic-materialize.interval": f"{s.flink_materialize_interval_ms} ms",
        })
    if s.flink_parallelism is not None:
        settings["parallelism.default"] = str(s.flink_parallelism)
    for key, value in settings.items():
        c.set_string(key, value)
    return c


def restore_path(env: StreamExecutionEnvironment) -> str | None:
    """The checkpoint or savepoint this submission restores (`flink run --fromSavepoint`), if any."""
    given = env._j_stream_execution_environment.getConfiguration().toMap()
    for key in RESTORE_PATH_KEYS:
        if given.get(key):
            return str(given.get(key))
    return None


def build(s: JobSettings) -> StreamExecutionEnvironment:
    """The job graph, ready for `env.execute()`. Raises NoStateError when
    there is no state to restore and START_WITHOUT_STATE is not set."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from flink_jobs import sinks, sql

    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(s))
    restoring = restore_path(env)
    log.info("building job topic=%s bootstrap=%s keyspace=%s restore_from=%s",
             s.kafka_topic, s.kafka_bootstrap_servers, s.cassandra_keyspace, restoring)
    if restoring is None and not s.start_without_state:
        raise NoStateError(
            "refusing to start the stream job without state: submit it with the checkpoint or savepoint to "
            "restore (`flink run --fromSavepoint <path>`; `make job-submit FROM=<path>`), or set "
            "START_WITHOUT_STATE=true if starting empty is intended (a new deployment: the job then reads the "
            "topic from its earliest retained offset, and over a cube that holds buckets whose tags the topic no "
            "longer has, it would overwrite complete totals with partial ones)"
        )
    t_env = StreamTableEnvironment.create(env)
    for key, value in sql.table_config(s).items():
        t_env.get_config().set(key, value)
    t_env.execute_sql(sql.source_ddl(s))

    # The sinks' classes must be visible to this driver's JVM too (the graph is built there).
    add_jars_to_context_class_loader([j.as_uri() for j in job_jars(s)])
    # One Kafka source: its rows (timestamped with their event time, with the
    # source's watermarks) go to the profile sink and into the cube.
    tag_rows = t_env.to_data_stream(t_env.sql_query(sql.tag_rows_query()))
    sinks.attach(tag_rows, s)
    return env


def main() -> None:
    s = JobSettings()
    configure_logging(s.log_level, s.log_format)
    build(s).execute(JOB_NAME)


if __name__ == "__main__":
    main()
