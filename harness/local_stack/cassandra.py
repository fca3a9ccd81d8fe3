"""A Cassandra 5.0 node run from cassandra-all and its Maven dependencies.

There is no Cassandra 5.x binary tarball on Maven Central, so instead of
bin/cassandra this module writes a minimal cassandra.yaml and logback.xml and
starts org.apache.cassandra.service.CassandraDaemon with the JVM flags that
the tarball's jvm17-server.options would have set.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
from pathlib import Path

from cql.apply import connect
from harness.local_stack import artifacts
from harness.local_stack.config import CassandraNodeSpec, StackSettings
from harness.local_stack.process import Component, ManagedProcess, StackError

log = logging.getLogger(__name__)

# JPMS exports/opens needed by Cassandra 5.0 on JDK 17 (from its jvm17-server.options).
JDK17_FLAGS = [
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]  # fmt: skip

# Tools (nodetool) log warnings to stderr, not into the node's system log.
NODETOOL_LOGBACK = """<configuration scan="false">
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
"""


class CassandraNode(Component):
    def __init__(self, settings: StackSettings, node: CassandraNodeSpec | None = None) -> None:
        self.settings = settings
        self.node = node or settings.cassandra_nodes()[0]
        self.name = "cassandra" if settings.cluster_size == 1 else f"cassandra-{self.node.node_id}"
        self.ready_timeout_s = settings.start_timeout_s
        self.stop_timeout_s = settings.stop_timeout_s
        self.home = settings.run_dir / "cassandra" / f"node-{self.node.node_id}"
        self.conf_dir = self.home / "conf"
        self.yaml_file = self.conf_dir / "cassandra.yaml"
        self.logback_file = self.conf_dir / "logback.xml"
        self.nodetool_logback_file = self.conf_dir / "logback-tools.xml"
        self.system_log = settings.run_dir / "logs" / f"{self.name}-system.log"
        self.lib_dir = artifacts.lib_dir("cassandra", settings)
        self.process = ManagedProcess(self.name, [], settings.run_dir)

    # --- Component -------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.node.host}:{self.node.native_port}"

    @property
    def log_files(self) -> list[Path]:
        return [self.system_log]

    def ports(self) -> list[tuple[str, int]]:
        n = self.node
        return [(n.host, n.native_port), (n.host, n.storage_port), ("127.0.0.1", n.jmx_port)]

    def java_argv(self) -> list[str]:
        heap = artifacts.heap_mib(self.settings.cassandra_heap_size)
        return [
            artifacts.java_executable(self.settings),
            f"-Xms{heap}m",
            f"-Xmx{heap}m",
            "-Xss256k",
            *artifacts.gc_flags(self.settings.cassandra_gc),
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxTenuringThreshold=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "-Djdk.attach.allowAttachSelf=true",
            *JDK17_FLAGS,
            f"-javaagent:{self.lib_dir}/jamm-0.4.0.jar",
            f"-Dcassandra.config=file://{self.yaml_file}",
            f"-Dlogback.configurationFile=file://{self.logback_file}",
            f"-Dcassandra.storagedir={self.home}",
            f"-Dcassandra.logdir={self.system_log.parent}",
            f"-Dcassandra.jmx.local.port={self.node.jmx_port}",
            "-Dcassandra-foreground=yes",
            *self.gossip_flags(),
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-cp",
            f"{self.lib_dir}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def gossip_flags(self) -> list[str]:
        """How long a starting node listens to gossip before it serves or joins.

        A single node has no one to listen to: no settling, 1 s ring delay. A
        cluster node waits for gossip to settle before it accepts CQL (else a
        restarted node coordinates QUORUM requests before it knows its peers
        are up, and they fail as unavailable), and a joining node needs more
        than 1 s to hear back from the seeds on a busy 2-core machine
        ("Unable to contact any seeds" seen with 1 s).
        """
        if not self.settings.replicated:
            return ["-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.ring_delay_ms=1000"]
        # Settling: at least 2 s, then 3 quiet polls 0.5 s apart (default 5 s and 1 s,
        # paid up to four times per start) -- three nodes on loopback settle fast.
        return [
            "-Dcassandra.ring_delay_ms=5000",
            "-Dcassandra.gossip_settle_min_wait_ms=2000",
            "-Dcassandra.gossip_settle_interval_ms=500",
            "-Dcassandra.gossip_settle_poll_success_required=3",
        ]

    def prepare(self) -> None:
        lib = artifacts.resolve("cassandra", self.settings)
        if not (lib / "jamm-0.4.0.jar").is_file():
            raise StackError(f"{self.name}: jamm-0.4.0.jar (the -javaagent) missing from {lib}; pom changed?")
        for sub in ("conf", "data", "commitlog", "saved_caches", "hints", "cdc_raw"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.yaml_file.write_text(self.cassandra_yaml())
        self.logback_file.write_text(self.logback_xml())
        self.nodetool_logback_file.write_text(NODETOOL_LOGBACK)
        self.process.argv = self.java_argv()

    def ready(self) -> bool:
        """The node answers CQL; in a cluster it has also joined the ring (UN in nodetool status).

        A cluster node is not ready while it is still joining: the next node
        must not start bootstrapping before then (Cassandra refuses, or worse,
        two nodes pick their tokens without seeing each other's).
        """
        with socket.create_connection((self.node.host, self.node.native_port), timeout=1.0):
            pass
        cluster, session = connect([self.node.host], self.node.native_port, timeout=5.0)
        try:
            row = session.execute("SELECT release_version, bootstrapped FROM system.local").one()
            if row is None or not row.release_version:
                return False
            if not self.settings.replicated:
                return True
            if row.bootstrapped != "COMPLETED":
                return False
        finally:
            cluster.shutdown()
        # Only now the (costlier: one JVM) nodetool call.
        return self.ring_states().get(self.node.host) == "UN"

    # --- configuration -------------------------------------------------------------
    def cassandra_yaml(self) -> str:
        s, n, home = self.settings, self.node, self.home
        # Two seeds of three: a restarted node always finds a live seed when one
        # node is down, and node 3 really bootstraps (seeds do not).
        seeds = ",".join(f"{x.host}:{x.storage_port}" for x in s.cassandra_nodes()[:2])
        return f"""# Written by harness/local_stack/cassandra.py; regenerated on every start.
cluster_name: allezon-local
num_tokens: 16
allocate_tokens_for_local_replication_factor: {s.replication_factor}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
# A fresh cluster: no compatibility with 4.x sstables/messaging needed.
storage_compatibility_mode: NONE

data_file_directories:
  - {home}/data
commitlog_directory: {home}/commitlog
saved_caches_directory: {home}/saved_caches
hints_directory: {home}/hints
cdc_raw_directory: {home}/cdc_raw

commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB

seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seeds}"
listen_address: {n.host}
rpc_address: {n.host}
storage_port: {n.storage_port}
native_transport_port: {n.native_port}
start_native_transport: true
endpoint_snitch: SimpleSnitch

# Small machine (2 cores shared with Kafka, Flink and the APIs).
concurrent_reads: 16
concurrent_writes: 16
concurrent_counter_writes: 8
concurrent_compactors: 1
# The stream job writes unlogged multi-partition batches of idempotent upserts
# (fewer requests, not atomicity), up to 32 KiB: no warning for each.
batch_size_warn_threshold: 40KiB
unlogged_batch_across_partitions_warn_threshold: 500
memtable_flush_writers: 1
# Tests drop one keyspace each: no snapshot per dropped table.
auto_snapshot: false
"""

    def logback_xml(self) -> str:
        logfile = self.system_log
        return f"""<!-- Written by harness/local_stack/cassandra.py. -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{logfile}</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{logfile}.%i</fileNamePattern>
      <minIndex>1</minIndex>
      <maxIndex>5</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>20MB</maxFileSize>
    </triggeringPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
  </root>
</configuration>
"""

    # --- tools -------------------------------------------------------------------------
    def nodetool(self, *args: str, timeout: float = 120.0) -> str:
        """Run `nodetool <args>` against this node over JMX (e.g. "flush", "drain", "status")."""
        argv = [
            artifacts.java_executable(self.settings),
            "-Xmx128m",
            *JDK17_FLAGS,
            f"-Dlogback.configurationFile=file://{self.nodetool_logback_file}",
            "-cp",
            f"{self.lib_dir}/*",
            "org.apache.cassandra.tools.NodeTool",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.node.jmx_port),
            *args,
        ]
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise StackError(f"nodetool {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def ring_states(self) -> dict[str, str]:
        """Address -> state as this node sees the ring: "UN" (up, normal), "DN", "UJ" (joining), ..."""
        states: dict[str, str] = {}
        for line in self.nodetool("status").splitlines():
            # "UN  127.0.0.2:47000  104.36 KiB  16  100.0%  <host id>  rack1" (port shown when not 7000)
            if m := re.match(r"([UD][NLJM])\s+(\d+\.\d+\.\d+\.\d+)(?::\d+)?\s", line):
                states[m.group(2)] = m.group(1)
        return states

    def table_stats(self, keyspace: str) -> dict[str, dict[str, str]]:
        """`nodetool tablestats` of the keyspace on this node: {table: {line name: value}}."""
        return parse_table_stats(self.nodetool("tablestats", keyspace))

    def table_write_counts(self, keyspace: str) -> dict[str, int]:
        """Table -> writes this node has applied (nodetool tablestats "Local write count")."""
        return {table: int(stats["Local write count"])
                for table, stats in self.table_stats(keyspace).items() if "Local write count" in stats}


def parse_table_stats(text: str) -> dict[str, dict[str, str]]:
    """{table: {line name: value}} from `nodetool tablestats` output; the keyspace's own lines,
    before its first table, are left out."""
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if not sep:
            continue
        if name == "Table":
            current = tables.setdefault(value.strip(), {})
        elif current is not None:
            current[name] = value.strip()
    return tables
