"""The one settings class of the local stack (`make up` and the pytest fixtures).

Every field can be set by an environment variable of the same name in upper
case (KAFKA_PORT, CASSANDRA_HEAP, ...), except the two directories, which use
ALLEZON_RUN_DIR and ALLEZON_CACHE_DIR. Variables shared with the services
(KAFKA_TOPIC, CASSANDRA_PORT, CASSANDRA_KEYSPACE, LOG_LEVEL) mean the same thing
here as there, and the stack passes the resulting values to the services it
starts.

Test fixtures build their own instance, e.g.
    StackSettings().shifted(10_000, run_dir=tmp_path)
for a second Kafka + Cassandra on 19092/19093 and 19042/17000 beside `make up`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from common.settings import (
    CassandraKeyspaceSettings,
    KafkaTopicSettings,
    LoggingSettings,
    check_consistency,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

_HEAP_RE = re.compile(r"[1-9][0-9]*[mMgG]")

# Each JVM's garbage collector (KAFKA_GC, CASSANDRA_GC, FLINK_JOBMANAGER_GC,
# FLINK_TASKMANAGER_GC); artifacts.gc_flags() turns one into its JVM flag.
GarbageCollector = Literal["G1", "Parallel", "Serial"]

# Port fields moved together by StackSettings.shifted().
_PORT_FIELDS = (
    "kafka_port",
    "kafka_controller_port",
    "cassandra_port",
    "cassandra_storage_port",
    "cassandra_jmx_port",
    "ingest_port",
    "query_port",
    "front_port",
    "flink_rest_port",
    "flink_rpc_port",
    "proxy_admin_port",
    "flink_metrics_port",
)


@dataclass(frozen=True)
class KafkaNodeSpec:
    """Where one broker listens. Cluster size N puts node i on 127.0.0.i."""

    node_id: int
    host: str
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CassandraNodeSpec:
    """Where one Cassandra node listens. Cluster size N puts node i on 127.0.0.i."""

    node_id: int
    host: str
    native_port: int
    storage_port: int
    jmx_port: int


class StackSettings(KafkaTopicSettings, CassandraKeyspaceSettings, LoggingSettings):
    """The shared variables (KAFKA_TOPIC, CASSANDRA_PORT, CASSANDRA_KEYSPACE,
    LOG_LEVEL) come from the services' own mixins (common/settings.py)."""

    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        case_sensitive=False,
        validate_by_name=True,
        validate_by_alias=True,
    )

    # --- directories -------------------------------------------------------
    # Pid files, logs, configuration and data of every process (removed by `clean`).
    run_dir: Path = Field(
        default=REPO_ROOT / ".run", validation_alias=AliasChoices("ALLEZON_RUN_DIR", "run_dir")
    )
    # Downloaded jars and the Maven repository (kept by `clean`).
    cache_dir: Path = Field(
        default=REPO_ROOT / ".cache", validation_alias=AliasChoices("ALLEZON_CACHE_DIR", "cache_dir")
    )
    # Maven local repository; empty means <cache_dir>/m2 (self-contained, so
    # `rm -rf .cache` really is a cold start). Point it at ~/.m2/repository to share.
    maven_repo: Path | None = Field(
        default=None, validation_alias=AliasChoices("ALLEZON_MAVEN_REPO", "maven_repo")
    )

    # The JDK whose `java` runs Kafka and Cassandra (JAVA_HOME); unset: `java` on PATH.
    java_home: Path | None = None

    # --- topology ------------------------------------------------------------
    # Brokers and Cassandra nodes: 1, or 3 for the replicated mode (node i on
    # 127.0.0.i, the same ports on each address; JMX ports differ, see
    # cassandra_nodes()). CLUSTER_SIZE=3 make up.
    cluster_size: int = 1
    host: str = "127.0.0.1"

    # --- Kafka -----------------------------------------------------------------
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_gc: GarbageCollector = "G1"
    kafka_topic_partitions: int = Field(default=4, ge=1, le=1024)
    # Size-based retention per partition of the topics the stack creates; time
    # based retention is off (see kafka.py for why).
    kafka_retention_bytes: int = Field(default=2 * 1024**3, ge=-1)
    # Off: a producer writing to a misspelt topic must fail, not create it.
    kafka_auto_create_topics: bool = False

    # --- Cassandra ---------------------------------------------------------------
    cassandra_storage_port: int = 7000
    cassandra_jmx_port: int = 7199
    # Unset: 1536m for a single node (its memtables are a quarter of it: fewer
    # flushes, fewer and shorter pauses, docs/BENCHMARKS.md issue 15), 512m per
    # node in the replicated mode (three nodes, each mlockall()s its heap, on a
    # shared 24 GiB machine).
    cassandra_heap: str | None = None
    cassandra_gc: GarbageCollector = "G1"
    # Consistency level the services read and write at (CASSANDRA_CONSISTENCY,
    # the services' own variable). Unset: the services' default (LOCAL_ONE) on
    # a single node, QUORUM in the replicated mode, so that a read sees every
    # acknowledged write while one of the three replicas is down.
    cassandra_consistency: str | None = None

    # --- services ------------------------------------------------------------------
    ingest_port: int = 8081
    query_port: int = 8082
    front_port: int = 8080
    # HAProxy's own /health, /stats and /metrics (its Prometheus exporter).
    proxy_admin_port: int = 8404

    # --- Flink cluster and the stream job -----------------------------------------------
    # Set to false to run the platform without the Flink cluster and its job.
    flink_job_enabled: bool = True
    # Web UI / REST API of the JobManager, and its RPC port (TaskManagers connect to it).
    flink_rest_port: int = 8091
    flink_rpc_port: int = 6123
    # Flink's Prometheus reporter, one port per process: the JobManager on this
    # one, TaskManager i on this + i (up to 8 TaskManagers: 9249-9257).
    flink_metrics_port: int = 9249
    # TaskManager processes (`make scale TASKMANAGERS=n`; the job rescales to
    # their slots). Unset: 1, or 2 in the replicated mode.
    flink_taskmanagers: int | None = Field(
        default=None, ge=0, le=8,
        validation_alias=AliasChoices("TASKMANAGERS", "FLINK_TASKMANAGERS", "flink_taskmanagers"),
    )
    flink_task_slots: int = Field(default=1, ge=1, le=8)
    flink_jobmanager_heap: str = "384m"
    flink_jobmanager_gc: GarbageCollector = "G1"
    # The job's state lives here: minutes of cube cells (docs/DESIGN.md).
    flink_taskmanager_heap: str = "640m"
    # ParallelGC: about a fifth less TaskManager CPU than G1 at the reference load,
    # and shorter pauses on two shared cores (docs/BENCHMARKS.md, issue 15).
    flink_taskmanager_gc: GarbageCollector = "Parallel"
    # The job's state backend (the job's own FLINK_STATE_BACKEND; rocksdb gets managed memory).
    flink_state_backend: str = Field(default="hashmap", pattern="^(rocksdb|hashmap)$")
    # The job's parallelism: its upper bound, as the adaptive scheduler runs it
    # on the slots there are. Unset: one subtask per Kafka partition.
    flink_parallelism: int | None = Field(default=None, ge=1)

    # --- timeouts (seconds) ---------------------------------------------------------
    start_timeout_s: float = Field(default=180.0, gt=0)
    stop_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("cluster_size")
    @classmethod
    def _supported_cluster_size(cls, value: int) -> int:
        # 2 would make min.insync.replicas=2 and QUORUM need every node: no fault tolerance.
        if value not in (1, 3):
            raise ValueError(f"cluster_size must be 1 or 3 (replicated mode), got {value}")
        return value

    _consistency = field_validator("cassandra_consistency")(check_consistency)

    @field_validator("kafka_heap", "cassandra_heap", "flink_jobmanager_heap", "flink_taskmanager_heap")
    @classmethod
    def _heap(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _HEAP_RE.fullmatch(value):
            raise ValueError(f"heap size must look like 512m or 1g, got {value!r}")
        return value

    @field_validator("run_dir", "cache_dir", "maven_repo")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    # --- derived values -----------------------------------------------------------------
    @property
    def maven_repo_dir(self) -> Path:
        return self.maven_repo or self.cache_dir / "m2"

    @property
    def replicated(self) -> bool:
        return self.cluster_size > 1

    @property
    def replication_factor(self) -> int:
        return min(self.cluster_size, 3)

    @property
    def min_insync_replicas(self) -> int:
        """Kafka: an acks=all write needs this many replicas (2 of 3: one broker may be down)."""
        return 1 if self.replication_factor == 1 else 2

    @property
    def cassandra_heap_size(self) -> str:
        return self.cassandra_heap or ("512m" if self.replicated else "1536m")

    @property
    def service_consistency(self) -> str | None:
        """CASSANDRA_CONSISTENCY for the services (None: theirs)."""
        return self.cassandra_consistency or ("QUORUM" if self.replicated else None)

    @property
    def job_parallelism(self) -> int:
        """The stream job's parallelism (an upper bound: the slots decide)."""
        return self.flink_parallelism or self.kafka_topic_partitions

    def job_slots(self, taskmanagers: int) -> int:
        """The job's parallelism on `taskmanagers` TaskManagers: their slots, at
        least 1, at most FLINK_PARALLELISM."""
        return min(self.job_parallelism, max(1, taskmanagers * self.flink_task_slots))

    @property
    def taskmanagers(self) -> int:
        return self.flink_taskmanagers if self.flink_taskmanagers is not None else (2 if self.replicated else 1)

    def node_host(self, node_id: int) -> str:
        """Address of node `node_id` (1-based): the configured host for a single node."""
        if self.cluster_size == 1:
            return self.host
        return f"127.0.0.{node_id}"

    def kafka_nodes(self) -> list[KafkaNodeSpec]:
        return [
            KafkaNodeSpec(i, self.node_host(i), self.kafka_port, self.kafka_controller_port)
            for i in range(1, self.cluster_size + 1)
        ]

    def cassandra_nodes(self) -> list[CassandraNodeSpec]:
        # JMX listens on 127.0.0.1 whatever the node's address, so node i gets
        # CASSANDRA_JMX_PORT + i - 1 (7199, 7200, 7201).
        return [
            CassandraNodeSpec(
                i, self.node_host(i), self.cassandra_port, self.cassandra_storage_port, self.cassandra_jmx_port + i - 1
            )
            for i in range(1, self.cluster_size + 1)
        ]

    @property
    def kafka_bootstrap_servers(self) -> str:
        return ",".join(n.bootstrap for n in self.kafka_nodes())

    @property
    def cassandra_contact_points(self) -> list[str]:
        return [n.host for n in self.cassandra_nodes()]

    def service_env(self) -> dict[str, str]:
        """Environment passed to the API services (the names they read)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "KAFKA_TOPIC": self.kafka_topic,
            "CASSANDRA_CONTACT_POINTS": ",".join(self.cassandra_contact_points),
            "CASSANDRA_PORT": str(self.cassandra_port),
            "CASSANDRA_KEYSPACE": self.cassandra_keyspace,
            "LOG_LEVEL": self.log_level,
            "LOG_FORMAT": self.log_format,
            **({"CASSANDRA_CONSISTENCY": self.service_consistency} if self.service_consistency else {}),
        }

    def flink_metrics_port_of(self, taskmanager: int | None = None) -> int:
        """The Prometheus reporter's port of the JobManager (None) or of TaskManager `taskmanager`."""
        return self.flink_metrics_port + (taskmanager or 0)

    def shifted(self, offset: int, run_dir: Path | str | None = None, **changes: object) -> StackSettings:
        """A copy with every port moved by `offset` (and optionally another run dir).

        For test fixtures that run beside `make up`: offset 10_000 gives Kafka
        19092/19093, Cassandra 19042/17000 (JMX 17199), APIs 18081/18082/18080.
        """
        values: dict[str, object] = {name: getattr(self, name) + offset for name in _PORT_FIELDS}
        if run_dir is not None:
            values["run_dir"] = Path(run_dir).expanduser().resolve()
        values.update(changes)
        return type(self)(**{**self.model_dump(), **values})
