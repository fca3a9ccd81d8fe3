"""The stream job: Kafka `user_tags` -> Cassandra profiles and aggregate cube.

Run: `.venv-flink/bin/python -m flink_jobs.user_tags_job` (PyFlink's local
cluster; `make up` does this, harness/local_stack/services.py has its argv
and environment). The source, its event time and watermarks are Flink SQL
(sql.py); the cube's windows and the Cassandra sinks are Java
(flink_jobs/operators/, attached by sinks.py), so no record enters
Python: this module only builds the graph.

Exactly-once effect: checkpoints hold the Kafka offsets and the cube state, a
checkpoint completes only once the sinks had every earlier row acknowledged by
Cassandra, and every write is idempotent. On start the
job restores the newest retained checkpoint, so a crash followed by `make up`
resumes where the last checkpoint left off. Without any checkpoint it reads
the topic from the earliest offset (replaying is harmless, see above).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common.logging import configure_logging
from flink_jobs.config import JobSettings

if TYPE_CHECKING:
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

log = logging.getLogger("flink_jobs.user_tags_job")

# Bump when a change makes old checkpoints unrestorable (operators added,
# removed or changed state). Checkpoints live under FLINK_CHECKPOINT_DIR/
# graph-<version>, so a new graph starts empty and replays the topic from the
# earliest offset, rewriting every row exactly (all writes are idempotent
# upserts), instead of failing to map the old state.
GRAPH_VERSION = 4


def checkpoint_root(s: JobSettings) -> Path:
    return s.flink_checkpoint_dir / f"graph-{GRAPH_VERSION}"


def newest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N directory with _metadata), if any."""
    done = [p.parent for p in checkpoint_dir.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: p.stat().st_mtime, default=None)


def job_jars(s: JobSettings) -> list[Path]:
    """The connector jars (Kafka, the Cassandra driver) and the sinks' jar."""
    jars = sorted(s.flink_connector_dir.glob("*.jar"))
    if not jars:
        raise SystemExit(f"no connector jars in {s.flink_connector_dir}; run `make up` (it resolves them)")
    if s.flink_sinks_jar is None or not s.flink_sinks_jar.is_file():
        raise SystemExit(f"FLINK_SINKS_JAR={s.flink_sinks_jar} is not a file: the job needs the Cassandra sinks' jar "
                         "(`mvn package` in flink_jobs/operators/; `make up` builds it)")
    return [*jars, s.flink_sinks_jar]


def flink_configuration(s: JobSettings, restore_from: Path | str | None) -> Configuration:
    from pyflink.common import Configuration

    jars = job_jars(s)
    c = Configuration()
    settings = {
        "pipeline.name": "allezon-user-tags",
        "pipeline.jars": ";".join(j.as_uri() for j in jars),
        "python.client.executable": sys.executable,
        "state.backend.type": s.flink_state_backend,
        "state.checkpoints.dir": checkpoint_root(s).resolve().as_uri(),
        "state.checkpoints.num-retained": "3",
        "execution.checkpointing.interval": f"{s.flink_checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.min-pause": "500 ms",
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "30 s",
        "taskmanager.memory.process.size": "1200m",
        "rest.bind-address": "127.0.0.1",
        "rest.address": "127.0.0.1",
        "rest.port": str(s.flink_rest_port),
    }
    if s.flink_changelog:
        settings.update({
            "state.changelog.enabled": "true",
            "state.changelog.storage": "filesystem",
            "state.changelog.dstl.dfs.base-path": (checkpoint_root(s) / "changelog").resolve().as_uri(),
            "state.changelog.periodic-materialize.interval": f"{s.flink_materialize_interval_ms} ms",
        })
    if s.flink_parallelism is not None:
        settings["parallelism.default"] = str(s.flink_parallelism)
    if restore_from:
        settings["execution.state-recovery.path"] = str(restore_from)
        # CLAIM: the job owns the checkpoint it restores. The default NO_CLAIM
        # demands a full first snapshot, which the changelog backend cannot
        # take: every checkpoint after a restore would fail and the job restart
        # in a loop (tests/faults/test_process_kills.py covers it).
        settings["execution.state-recovery.claim-mode"] = "CLAIM"
    for key, value in settings.items():
        c.set_string(key, value)
    return c


def build(s: JobSettings, restore_from: Path | str | None) -> StreamExecutionEnvironment:
    """The job graph, ready for `env.execute()`."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from flink_jobs import sinks, sql

    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(s, restore_from))
    t_env = StreamTableEnvironment.create(env)
    for key, value in sql.table_config(s).items():
        t_env.get_config().set(key, value)
    startup = "group-offsets" if restore_from else "earliest-offset"
    t_env.execute_sql(sql.source_ddl(s, startup))

    # The sinks' classes must be visible to this driver's JVM too (the graph is built there).
    add_jars_to_context_class_loader([j.as_uri() for j in job_jars(s)])
    # One Kafka source: its rows (timestamped with their event time, with the
    # source's watermarks) go to the profile sink and into the cube.
    tag_rows = t_env.to_data_stream(t_env.sql_query(sql.tag_rows_query()))
    sinks.attach(tag_rows, s)
    return env


def main() -> None:
    s = JobSettings()
    configure_logging(s.log_level)
    checkpoint_root(s).mkdir(parents=True, exist_ok=True)
    older = [p.name for p in s.flink_checkpoint_dir.glob("*") if p != checkpoint_root(s) and any(p.rglob("_metadata"))]
    if older:
        log.warning("ignoring checkpoints of an older job graph in %s: %s (this graph replays the topic from "
                    "the earliest offset; `make clean` removes them)", s.flink_checkpoint_dir, older)
    restore_from = s.flink_restore_from or newest_checkpoint(checkpoint_root(s))
    log.info("starting job topic=%s bootstrap=%s keyspace=%s restore_from=%s",
             s.kafka_topic, s.kafka_bootstrap_servers, s.cassandra_keyspace, restore_from)
    build(s, restore_from).execute("allezon-user-tags")


if __name__ == "__main__":
    main()
