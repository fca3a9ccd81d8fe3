"""Session-scoped real Kafka and Cassandra, and per-test fresh topics/keyspaces.

By default the local stack (harness/local_stack/) starts both as processes on ports
shifted by 10,000 (so `make up` can run beside the tests) in `.run-test/`;
ALLEZON_TEST_PORT_SHIFT and ALLEZON_TEST_RUN_DIR move them, so two test
sessions can run side by side on one machine.
When a Docker engine answers, testcontainers starts the official images
instead (ALLEZON_TEST_BACKEND=local|docker forces one).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cql import apply as schema
from tests.settings import TestSettings

REPO = Path(__file__).resolve().parent.parent
# Fixtures the integration modules share (real API processes on a fresh topic/keyspace).
pytest_plugins = ["tests.integration.api_env"]
TEST_PARTITIONS = 4


@dataclass
class Backends:
    kafka_bootstrap: str
    cassandra_hosts: list[str]
    cassandra_port: int
    stack: object | None  # harness.local_stack.stack.Stack when the processes are ours (kill tests need it)


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _use_docker() -> bool:
    choice = TestSettings().test_backend
    return choice == "docker" or (choice == "auto" and _docker_engine_answers())


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    if _use_docker():
        from testcontainers.cassandra import CassandraContainer
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, CassandraContainer("cassandra:5.0.6") as cass:
            host, port = cass.get_contact_points()[0]
            yield Backends(kafka.get_bootstrap_server(), [host], port, None)
        return

    from harness.local_stack.config import StackSettings
    from harness.local_stack.stack import Stack

    where = TestSettings()
    # Two slots: a test's job may still be cancelling while the next one starts.
    stack = Stack(StackSettings().shifted(where.test_port_shift, run_dir=where.test_run_dir, flink_task_slots=2))
    stack.clean()  # every session starts from empty data
    stack.up(["kafka", "cassandra"], create_topic=False, apply_schema=False)
    try:
        yield Backends(
            stack.kafka_bootstrap_servers,
            list(stack.settings.cassandra_contact_points),
            stack.settings.cassandra_port,
            stack,
        )
    finally:
        stack.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(backends: Backends) -> str:
    return backends.kafka_bootstrap


@pytest.fixture
def fresh_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A new topic for this test only."""
    name = f"user_tags_{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(name, TEST_PARTITIONS, 1)])[name].result(timeout=30)
    wait_for_leaders(admin, name)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def wait_for_leaders(admin: AdminClient, topic: str, timeout_s: float = 30.0) -> None:
    """Poll until every partition of a new topic has a leader."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=5).topics.get(topic)
        if meta and not meta.error and meta.partitions and all(p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"topic {topic} has no leaders after {timeout_s} s")


@pytest.fixture
def fresh_keyspace(backends: Backends) -> Iterator[str]:
    """A new keyspace with the whole cql/ schema, for this test only."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    schema.apply_schema(backends.cassandra_hosts, name, 1, port=backends.cassandra_port)
    yield name
    schema.drop_keyspace(backends.cassandra_hosts, name, port=backends.cassandra_port)
