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

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

_KEYSPACE_RE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_HEAP_RE = re.compile(r"[1-9][0-9]*[mMgG]")

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


class StackSettings(BaseSettings):
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

    # --- topology ------------------------------------------------------------
    # Brokers and Cassandra nodes. Only 1 is implemented; 3 is the planned
    # replicated mode (nodes on 127.0.0.1/.2/.3, same ports on each address).
    cluster_size: int = 1
    host: str = "127.0.0.1"

    # --- Kafka -----------------------------------------------------------------
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_topic: str = "user_tags"
    kafka_topic_partitions: int = Field(default=4, ge=1, le=1024)
    # Size-based retention per partition of the topics the stack creates; time
    # based retention is off (see kafka.py for why).
    kafka_retention_bytes: int = Field(default=2 * 1024**3, ge=-1)
    # Off: a producer writing to a misspelt topic must fail, not create it.
    kafka_auto_create_topics: bool = False

    # --- Cassandra ---------------------------------------------------------------
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    cassandra_jmx_port: int = 7199
    cassandra_heap: str = "768m"
    cassandra_keyspace: str = "allezon"

    # --- services ------------------------------------------------------------------
    ingest_port: int = 8081
    query_port: int = 8082
    front_port: int = 8080
    ingest_app: str = "ingest_api.app:create_app"
    query_app: str = "query_api.app:create_app"
    log_level: str = "INFO"

    # --- stream job ----------------------------------------------------------------
    # Set to false to run the platform without the stream job (e.g. to submit
    # a changed job by hand).
    flink_job_enabled: bool = True
    # Web UI / REST API of the job's local Flink cluster.
    flink_rest_port: int = 8091

    # --- timeouts (seconds) ---------------------------------------------------------
    start_timeout_s: float = Field(default=180.0, gt=0)
    stop_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("cluster_size")
    @classmethod
    def _only_single_node(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only cluster_size=1 is implemented (3 is planned)")
        return value

    @field_validator("kafka_heap", "cassandra_heap")
    @classmethod
    def _heap(cls, value: str) -> str:
        if not _HEAP_RE.fullmatch(value):
            raise ValueError(f"heap size must look like 512m or 1g, got {value!r}")
        return value

    @field_validator("cassandra_keyspace")
    @classmethod
    def _keyspace(cls, value: str) -> str:
        if not _KEYSPACE_RE.fullmatch(value):
            raise ValueError(f"keyspace must match [a-z][a-z0-9_]{{0,47}}, got {value!r}")
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
    def replication_factor(self) -> int:
        return min(self.cluster_size, 3)

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
        return [
            CassandraNodeSpec(
                i, self.node_host(i), self.cassandra_port, self.cassandra_storage_port, self.cassandra_jmx_port
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
        }

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
