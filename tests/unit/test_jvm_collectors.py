"""Each JVM of the local stack runs the garbage collector its setting names
(KAFKA_GC, CASSANDRA_GC, FLINK_JOBMANAGER_GC, FLINK_TASKMANAGER_GC)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.local_stack.cassandra import CassandraNode
from harness.local_stack.config import StackSettings
from harness.local_stack.flink import cluster_config, flink_home
from harness.local_stack.kafka import KafkaBroker

COLLECTOR_FLAGS = {"-XX:+UseG1GC", "-XX:+UseParallelGC", "-XX:+UseSerialGC"}


def collectors(argv: list[str]) -> set[str]:
    return {arg for arg in argv if arg in COLLECTOR_FLAGS}


def test_every_jvm_runs_its_named_collector(tmp_path: Path) -> None:
    settings = StackSettings(run_dir=tmp_path, kafka_gc="Serial", cassandra_gc="Parallel",
                             flink_jobmanager_gc="Serial", flink_taskmanager_gc="Parallel")
    kafka = KafkaBroker(settings).java_argv("kafka.Kafka")
    assert collectors(kafka) == {"-XX:+UseSerialGC"}
    assert "-XX:MaxGCPauseMillis=20" not in kafka  # G1's own tuning goes with G1
    assert collectors(CassandraNode(settings).java_argv()) == {"-XX:+UseParallelGC"}
    config = cluster_config(settings, flink_home())
    assert config["env.java.opts.jobmanager"] == "-XX:+UseSerialGC"
    assert config["env.java.opts.taskmanager"] == "-XX:+UseParallelGC"
    assert not collectors(config["env.java.opts.all"].split())  # one collector per JVM


def test_kafka_on_g1_keeps_its_tuning(tmp_path: Path) -> None:
    kafka = KafkaBroker(StackSettings(run_dir=tmp_path, kafka_gc="G1")).java_argv("kafka.Kafka")
    assert collectors(kafka) == {"-XX:+UseG1GC"}
    assert "-XX:MaxGCPauseMillis=20" in kafka


def test_an_unknown_collector_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        StackSettings(run_dir=tmp_path, cassandra_gc="ZGC")
