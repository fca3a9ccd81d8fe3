"""What one soak sample measures on the running stack: memory, disk and the job's consumer lag."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from harness.local_stack import flink
from harness.local_stack.kafka import _quiet_logger
from harness.local_stack.process import StackError
from harness.local_stack.stack import Stack

# "garbage-first heap   total 262144K, used 45678K [...]" (and each generation's line for
# the other collectors; "5% used" region lines do not match).
_USED_RE = re.compile(r"\bused (\d+)([KMG])\b")
_UNIT = {"K": 1 / 1024, "M": 1.0, "G": 1024.0}
COORDINATOR_WAIT_S = 120.0
_COORDINATOR_ERRORS = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                       KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT)


def disk_mb(root: Path) -> float:
    """Disk usage (du, allocated blocks) of a directory tree in MiB; files may vanish meanwhile."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except FileNotFoundError:
                pass
    return total / 2**20


def heap_used_mb(heap_info: str) -> float:
    """Used heap (MiB) from `jcmd <pid> GC.heap_info`: the lines before Metaspace."""
    used = 0.0
    for line in heap_info.splitlines():
        if line.strip().startswith("Metaspace"):
            break
        for amount, unit in _USED_RE.findall(line):
            used += int(amount) * _UNIT[unit]
    return used


class Probe:
    """Reads the stack's processes, directories and the job's group offsets."""

    def __init__(self, stack: Stack, group: str) -> None:
        self.stack = stack
        s = stack.settings
        self.topic = s.kafka_topic
        self.group = group
        # Reads the job group's committed offsets (OffsetFetch) and the watermarks; it never
        # subscribes, so it never joins the group, and it commits nothing. (Not the
        # AdminClient: its list_consumer_group_offsets segfaults in librdkafka while the
        # group has no coordinator yet, confluent-kafka-python issue 1982.)
        self.consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap_servers, "group.id": group,
                                  "enable.auto.commit": False, "logger": _quiet_logger()})
        meta = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if meta.error is not None:
            raise SystemExit(f"topic {self.topic}: {meta.error}")
        self.partitions = sorted(meta.partitions)
        job = stack.stream_job
        if job is None:
            raise SystemExit("the stack runs without the stream job (FLINK_JOB_ENABLED=false)")
        self.job = job
        self.checkpoint_dir = flink.checkpoint_dir(stack.settings)

    def close(self) -> None:
        self.consumer.close()

    # --- offsets -------------------------------------------------------------------
    def end_offsets(self) -> dict[int, tuple[int, int]]:
        """Partition -> (low, high) watermark."""
        return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                for p in self.partitions}

    def committed(self) -> dict[int, int]:
        """Partition -> the job group's committed offset (-1: none yet)."""
        # A fresh broker answers NOT_COORDINATOR until it has created __consumer_offsets.
        deadline = time.monotonic() + COORDINATOR_WAIT_S
        while True:
            try:
                answer = self.consumer.committed([TopicPartition(self.topic, p) for p in self.partitions], timeout=10)
                return {tp.partition: tp.offset if tp.offset >= 0 else -1 for tp in answer}
            except KafkaException as exc:
                if not exc.args[0].retriable() and exc.args[0].code() not in _COORDINATOR_ERRORS:
                    raise
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def lag(self) -> tuple[int, int]:
        """(tags in the topic the job's group has not committed yet, offsets committed so far)."""
        ends, committed = self.end_offsets(), self.committed()
        lag = done = 0
        for p, (low, high) in ends.items():
            position = committed.get(p, -1)
            position = low if position < 0 else position
            lag += max(0, high - position)
            done += position
        return lag, done

    # --- processes -----------------------------------------------------------------
    def rss_mb(self) -> dict[str, float | None]:
        """Component -> RSS of its process tree (None: not running)."""
        return {c.name: c.process.rss_mb() for c in self.stack.components()}

    def job_jvms(self) -> list[psutil.Process]:
        """The TaskManagers' JVMs, which hold the job's state (each component's pid is its JVM)."""
        procs = [tm.process.process() for tm in self.stack.flink_taskmanagers]
        return [p for p in procs if p is not None]

    def jcmd(self, jvm: psutil.Process) -> str:
        """The stack's JDK's jcmd, else the one beside the JVM's own java, else PATH's."""
        candidates = []
        if self.stack.settings.java_home is not None:
            candidates.append(self.stack.settings.java_home / "bin" / "jcmd")
        try:
            candidates.append(Path(jvm.exe()).parent / "jcmd")
        except psutil.Error:
            pass
        for path in candidates:
            if path.is_file():
                return str(path)
        found = shutil.which("jcmd")
        if found is None:
            raise SystemExit("jcmd not found (a JDK is needed; set JAVA_HOME)")
        return found

    def job_heap_after_gc_mb(self) -> float | None:
        """Live heap of the TaskManagers' JVMs together: a full GC, then the used heap."""
        total = None
        for jvm in self.job_jvms():
            jcmd = self.jcmd(jvm)
            try:
                subprocess.run([jcmd, str(jvm.pid), "GC.run"], capture_output=True, text=True, timeout=120, check=True)
                info = subprocess.run([jcmd, str(jvm.pid), "GC.heap_info"], capture_output=True, text=True,
                                      timeout=60, check=True).stdout
            except (subprocess.SubprocessError, OSError):
                return None
            total = (total or 0.0) + heap_used_mb(info)
        return total

    def job_environment(self, name: str) -> str | None:
        """A variable of the environment the running job was submitted with (None: unset)."""
        value = self.job.ledger().get("environment", {}).get(name)
        return str(value) if value is not None else None

    # --- disk ------------------------------------------------------------------------
    def disk(self) -> dict[str, float]:
        """MiB on disk of Cassandra's data (after a flush; also its two tables apart), Kafka's logs and the
        job's checkpoints."""
        for node in self.stack.cassandra_nodes:
            if node.is_running():
                # A failed flush only makes this sample's figure include less; the soak goes on.
                try:
                    node.nodetool("flush")
                except (StackError, subprocess.SubprocessError) as exc:
                    print(f"warning: {node.name}: nodetool flush failed: {exc}", file=sys.stderr)
        keyspaces = [node.home / "data" / self.stack.settings.cassandra_keyspace for node in self.stack.cassandra_nodes]
        return {
            "cassandra_mb": sum(disk_mb(node.home / "data") for node in self.stack.cassandra_nodes),
            "cells_mb": sum(disk_mb(d) for k in keyspaces for d in k.glob("aggregate_cells-*")),
            "profiles_mb": sum(disk_mb(d) for k in keyspaces for d in k.glob("user_profiles-*")),
            "kafka_mb": sum(disk_mb(broker.data_dir) for broker in self.stack.kafka_brokers),
            "checkpoint_mb": disk_mb(self.checkpoint_dir),
        }

    def table_stats(self) -> dict[str, dict[str, str]]:
        """`nodetool tablestats` of the keyspace's tables on the first node: per table, the lines
        that size it (TABLE_STAT_KEYS: partitions estimate, live and total space, sstables, tombstones)."""
        node = self.stack.cassandra_nodes[0]
        try:
            stats = node.table_stats(self.stack.settings.cassandra_keyspace)
        except (StackError, subprocess.SubprocessError) as exc:
            print(f"warning: {node.name}: nodetool tablestats failed: {exc}", file=sys.stderr)
            return {}
        return {table: {k: v for k, v in lines.items() if k in TABLE_STAT_KEYS} for table, lines in stats.items()}


TABLE_STAT_KEYS = ("SSTable count", "Space used (live)", "Space used (total)", "Number of partitions (estimate)",
                   "Average tombstones per slice (last five minutes)", "Compacted partition mean bytes")

