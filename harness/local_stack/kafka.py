"""A Kafka 4.1 broker in KRaft mode (broker and controller in one JVM), run from Maven jars.

Retention: the stack turns time-based deletion off (retention.ms=-1) and
bounds each partition by size (KAFKA_RETENTION_BYTES, 2 GiB by default).
Kafka applies retention.ms to record timestamps, which are the producer's
create times or the broker's clock, never the tag's event time (tags may be
dated 2022); the platform's own retention follows event time and is done
downstream. Size is the only limit that cannot drop data merely because the
stack was idle for a while.
"""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from harness.local_stack import artifacts
from harness.local_stack.config import KafkaNodeSpec, StackSettings
from harness.local_stack.process import Component, ManagedProcess, StackError

log = logging.getLogger(__name__)

# A log segment: Kafka deletes by size whole segments only, so a partition holds up to
# retention.bytes plus one segment.
SEGMENT_BYTES = 256 * 1024**2
# Kafka's own G1 tuning (its kafka-run-class.sh), kept when KAFKA_GC=G1.
_G1_FLAGS = ("-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent")


def log_cap_bytes(settings: StackSettings) -> int | None:
    """The most the topic's log can hold on disk over all brokers; None without a size cap."""
    if settings.kafka_retention_bytes < 0:
        return None
    per_partition = settings.kafka_retention_bytes + SEGMENT_BYTES
    return settings.kafka_topic_partitions * settings.replication_factor * per_partition


def _quiet_logger() -> logging.Logger:
    """A logger that swallows librdkafka's connection-refused chatter while we poll."""
    quiet = logging.getLogger("local_stack.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    return quiet


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as StorageTool random-uuid)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def admin_client(bootstrap: str, **extra: object) -> AdminClient:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _quiet_logger(), **extra}
    return AdminClient(config)


class KafkaBroker(Component):
    stop_timeout_s = 60.0

    def __init__(self, settings: StackSettings, node: KafkaNodeSpec | None = None) -> None:
        self.settings = settings
        self.node = node or settings.kafka_nodes()[0]
        self.name = "kafka" if settings.cluster_size == 1 else f"kafka-{self.node.node_id}"
        self.ready_timeout_s = settings.start_timeout_s
        self.stop_timeout_s = settings.stop_timeout_s
        self.home = settings.run_dir / "kafka" / f"node-{self.node.node_id}"
        self.data_dir = self.home / "data"
        self.config_file = self.home / "server.properties"
        self.log4j_file = self.home / "log4j2.properties"
        self.server_log = settings.run_dir / "logs" / f"{self.name}-server.log"
        self.lib_dir = artifacts.lib_dir("kafka", settings)
        self.process = ManagedProcess(self.name, [], settings.run_dir)

    # --- Component -------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return self.node.bootstrap

    @property
    def address(self) -> str:
        return self.bootstrap

    @property
    def log_files(self) -> list[Path]:
        return [self.server_log]

    def ports(self) -> list[tuple[str, int]]:
        return [(self.node.host, self.node.port), (self.node.host, self.node.controller_port)]

    def java_argv(self, main_class: str, *args: str) -> list[str]:
        heap = artifacts.heap_mib(self.settings.kafka_heap)
        return [
            artifacts.java_executable(self.settings),
            f"-Xms{min(heap, 256)}m",
            f"-Xmx{heap}m",
            *artifacts.gc_flags(self.settings.kafka_gc),
            *(_G1_FLAGS if self.settings.kafka_gc == "G1" else ()),
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            f"{self.lib_dir}/*",
            main_class,
            *args,
        ]

    def prepare(self) -> None:
        artifacts.resolve("kafka", self.settings)
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.server_properties())
        self.log4j_file.write_text(self.log4j2_properties())
        self.format_storage()
        self.process.argv = self.java_argv("kafka.Kafka", str(self.config_file))

    def ready(self) -> bool:
        with socket.create_connection((self.node.host, self.node.port), timeout=1.0):
            pass
        metadata = admin_client(self.bootstrap).list_topics(timeout=3)
        return self.node.node_id in metadata.brokers and metadata.controller_id >= 0

    # --- configuration ---------------------------------------------------------------
    def server_properties(self) -> str:
        s = self.settings
        rf, min_isr = s.replication_factor, s.min_insync_replicas
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in s.kafka_nodes())
        host, port, cport = self.node.host, self.node.port, self.node.controller_port
        return f"""# Written by harness/local_stack/kafka.py; regenerated on every start.
process.roles=broker,controller
node.id={self.node.node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}
advertised.listeners=PLAINTEXT://{host}:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={self.data_dir}

# Topics: the stack creates its own; a typo in a producer must fail loudly.
auto.create.topics.enable={str(s.kafka_auto_create_topics).lower()}
num.partitions={s.kafka_topic_partitions}
default.replication.factor={rf}
min.insync.replicas={min_isr}
unclean.leader.election.enable=false

# Retention by size only (see harness/local_stack/kafka.py): event times are logical
# and may be years old, Kafka's clock is not theirs.
log.retention.ms=-1
log.retention.bytes={s.kafka_retention_bytes}
log.segment.bytes={SEGMENT_BYTES}

# Internal topics on a small local cluster.
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=8
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
# A broker restarted after a crash (kill -9) must wait for its previous
# session to expire before it may register again: keep that short.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000

# Few threads: 2 cores shared with Cassandra, Flink and the APIs.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
"""

    def log4j2_properties(self) -> str:
        logs = self.server_log
        return f"""# Written by harness/local_stack/kafka.py.
status = warn
name = local-kafka
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs}
appender.file.filePattern = {logs}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""

    def cluster_id(self) -> str:
        """The cluster id shared by all nodes (created on first use, kept in the run dir)."""
        path = self.settings.run_dir / "kafka" / "cluster.id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    def format_storage(self) -> None:
        """Format the KRaft log dir once (skipped when meta.properties exists)."""
        if (self.data_dir / "meta.properties").exists():
            return
        argv = self.java_argv("kafka.tools.StorageTool", "format", "-t", self.cluster_id(), "-c", str(self.config_file))
        log.info("%s: formatting storage in %s", self.name, self.data_dir)
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise StackError(f"{self.name}: storage format failed:\n{result.stdout}\n{result.stderr}")

    # --- topics -----------------------------------------------------------------------
    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> bool:
        """Create `name` unless it exists; wait until every partition has a leader.

        Returns True when this call created it. An existing topic is left as it
        is (a different partition count only logs a warning).
        """
        return create_topic(
            self.settings.kafka_bootstrap_servers,
            name,
            partitions=partitions or self.settings.kafka_topic_partitions,
            replication_factor=replication_factor or self.settings.replication_factor,
            config={
                "retention.ms": "-1",
                "retention.bytes": str(self.settings.kafka_retention_bytes),
                "min.insync.replicas": str(self.settings.min_insync_replicas),
                **(config or {}),
            },
            timeout=timeout,
        )

    def delete_topic(self, name: str, timeout: float = 30.0) -> bool:
        return delete_topic(self.settings.kafka_bootstrap_servers, name, timeout)

    def in_sync_for(self, topic: str) -> bool:
        """True when this broker is in the ISR of every partition of `topic` (asked of the cluster)."""
        return self.node.node_id in in_sync_brokers(self.settings.kafka_bootstrap_servers, topic)


def partition_replicas(bootstrap: str, topic: str, timeout: float = 5.0) -> dict[int, tuple[int, list[int]]]:
    """Partition -> (leader, in-sync replicas) as the cluster's metadata reports them now."""
    meta = admin_client(bootstrap).list_topics(topic=topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        raise StackError(f"topic {topic}: no metadata ({meta.error if meta else 'missing'})")
    return {p.id: (p.leader, list(p.isrs)) for p in meta.partitions.values()}


def in_sync_brokers(bootstrap: str, topic: str) -> set[int]:
    """Brokers that are in the ISR of every partition of `topic`."""
    partitions = partition_replicas(bootstrap, topic)
    isr_sets = [set(isr) for _, isr in partitions.values()]
    return set.intersection(*isr_sets) if isr_sets else set()


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> bool:
    """Idempotently create a topic and wait for its partition leaders. True if created here."""
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    existing = admin.list_topics(timeout=timeout).topics.get(name)
    created = False
    if existing is not None and existing.error is None:
        if len(existing.partitions) != partitions:
            log.warning("topic %s exists with %d partitions (wanted %d); left as is",
                        name, len(existing.partitions), partitions)
    else:
        future = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config or {})],
            operation_timeout=timeout,
            request_timeout=timeout,
        )[name]
        try:
            future.result(timeout=timeout)
            created = True
            log.info("topic %s created (%d partitions, rf %d)", name, partitions, replication_factor)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StackError(f"cannot create topic {name}: {exc}") from exc
    while True:
        topic = admin.list_topics(topic=name, timeout=max(1.0, deadline - time.monotonic())).topics.get(name)
        if topic is not None and topic.error is None and topic.partitions and all(
            p.leader >= 0 and p.error is None for p in topic.partitions.values()
        ):
            return created
        if time.monotonic() > deadline:
            raise StackError(f"topic {name}: partitions have no leader after {timeout:.0f} s")
        time.sleep(0.1)


def delete_topic(bootstrap: str, name: str, timeout: float = 30.0) -> bool:
    """Delete a topic; False when it did not exist."""
    admin = admin_client(bootstrap)
    future = admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name]
    try:
        future.result(timeout=timeout)
        return True
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return False
        raise StackError(f"cannot delete topic {name}: {exc}") from exc
