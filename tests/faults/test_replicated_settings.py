"""What CLUSTER_SIZE=3 derives (no process started): addresses, ports, names,
replication settings and the environment the services get; and that the
single-node mode is unchanged."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.local_stack.config import StackSettings
from harness.local_stack.stack import Stack


@pytest.fixture(autouse=True)
def no_stack_environment(monkeypatch):
    """The figures below are the defaults: ignore a developer's KAFKA_PORT, CLUSTER_SIZE, ..."""
    for name in StackSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("ALLEZON_RUN_DIR", "ALLEZON_CACHE_DIR", "ALLEZON_MAVEN_REPO"):
        monkeypatch.delenv(name, raising=False)


def test_single_node_is_unchanged():
    s = StackSettings(cluster_size=1)
    stack = Stack(s)
    assert [c.name for c in stack.infrastructure] == ["kafka", "cassandra"]
    assert "CASSANDRA_CONSISTENCY" not in s.service_env()
    assert s.job_parallelism == s.kafka_topic_partitions and s.cassandra_heap_size == "1536m"
    assert s.min_insync_replicas == 1 and s.replication_factor == 1
    assert [tm.name for tm in stack.flink_taskmanagers] == ["flink-taskmanager-1"]


def test_cluster_of_three_on_three_loopback_addresses():
    s = StackSettings(cluster_size=3).shifted(21_000)
    stack = Stack(s)
    assert [c.name for c in stack.infrastructure] == [
        "kafka-1", "kafka-2", "kafka-3", "cassandra-1", "cassandra-2", "cassandra-3",
    ]
    assert [n.host for n in s.kafka_nodes()] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert s.kafka_bootstrap_servers == "127.0.0.1:30092,127.0.0.2:30092,127.0.0.3:30092"
    # JMX binds 127.0.0.1 whatever the node's address: one port per node.
    assert [n.jmx_port for n in s.cassandra_nodes()] == [28199, 28200, 28201]
    assert len({port for c in stack.infrastructure for port in c.ports()}) == len(
        [port for c in stack.infrastructure for port in c.ports()]
    )
    # "kafka" / "cassandra" select every node (make logs COMPONENT=kafka, up kafka cassandra).
    assert [c.name for c in stack._select(["cassandra"])] == ["cassandra-1", "cassandra-2", "cassandra-3"]


def test_cluster_replication_and_service_environment():
    s = StackSettings(cluster_size=3)
    stack = Stack(s)
    assert s.replication_factor == 3 and s.min_insync_replicas == 2
    env = s.service_env()
    assert env["CASSANDRA_CONSISTENCY"] == "QUORUM"
    assert env["CASSANDRA_CONTACT_POINTS"] == "127.0.0.1,127.0.0.2,127.0.0.3"
    # Two TaskManagers of one slot each: the job runs at parallelism 2 (the adaptive scheduler).
    assert [tm.name for tm in stack.flink_taskmanagers] == ["flink-taskmanager-1", "flink-taskmanager-2"]
    assert s.cassandra_heap_size == "512m"

    properties = stack.kafka_brokers[1].server_properties()
    for line in (
        "node.id=2",
        "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.2:9093,3@127.0.0.3:9093",
        "listeners=PLAINTEXT://127.0.0.2:9092,CONTROLLER://127.0.0.2:9093",
        "default.replication.factor=3",
        "min.insync.replicas=2",
        "offsets.topic.replication.factor=3",
        "transaction.state.log.min.isr=2",
        "unclean.leader.election.enable=false",
    ):
        assert line in properties.splitlines(), line

    yaml = stack.cassandra_nodes[2].cassandra_yaml()
    assert 'seeds: "127.0.0.1:7000,127.0.0.2:7000"' in yaml
    assert "listen_address: 127.0.0.3" in yaml and "rpc_address: 127.0.0.3" in yaml
    assert str(s.run_dir / "cassandra" / "node-3" / "commitlog") in yaml


def test_explicit_settings_win_over_the_cluster_defaults():
    s = StackSettings(cluster_size=3, cassandra_consistency="local_quorum", flink_parallelism=1, cassandra_heap="1g",
                      flink_taskmanagers=3)
    assert s.service_env()["CASSANDRA_CONSISTENCY"] == "LOCAL_QUORUM"
    assert s.job_parallelism == 1 and s.cassandra_heap_size == "1g" and s.taskmanagers == 3


@pytest.mark.parametrize("size", [0, 2, 4])
def test_only_one_or_three_nodes(size):
    with pytest.raises(ValidationError, match="cluster_size must be 1 or 3"):
        StackSettings(cluster_size=size)
