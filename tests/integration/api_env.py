"""Both APIs as real uvicorn processes (`--http httptools --loop uvloop`, as
deployed) on a topic and keyspace of their own, plus the probes the bad-input
tests use to prove that nothing was stored: the topic's end offsets and the
full contents of the Cassandra tables.

Test modules import the fixtures they need from here (module scope: one
server per module keeps the suite fast on a 2-core machine).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common.cube import BUCKET_MS, STORED_MASKS, bucket_of, cell_key
from cql import apply as schema
from tests.conftest import TEST_PARTITIONS, wait_for_leaders
from tests.e2e.conftest import api_service

# Any real-looking tag; the tests vary it.
VALID_TAG = {
    "time": "2022-03-22T12:15:00.000Z",
    "cookie": "cookie-1",
    "country": "PL",
    "device": "PC",
    "action": "BUY",
    "origin": "shop.example",
    "product_info": {"product_id": 17, "brand_id": "Nike", "category_id": "shoes", "price": 1999},
}
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int | None = None) -> dict:
    """A 4xx RFC 9457 problem document (of `status` when given)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM, response.headers
    problem = response.json()
    assert problem["status"] == response.status_code
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["type"], str) and problem["type"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    return problem


# -- Kafka ---------------------------------------------------------------------

@dataclass
class Topic:
    bootstrap: str
    name: str
    _consumer: Consumer

    def end_offsets(self) -> list[int]:
        """High watermark of every partition (what a write would move)."""
        return [self._consumer.get_watermark_offsets(TopicPartition(self.name, p), timeout=10)[1]
                for p in range(TEST_PARTITIONS)]

    def records(self) -> list[dict]:
        """Every record value of the topic, decoded, up to the current end offsets."""
        ends = self.end_offsets()
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(self.name, p, 0) for p in range(TEST_PARTITIONS)])
        wanted, found = sum(ends), []
        try:
            while len(found) < wanted:
                msg = consumer.poll(10)
                assert msg is not None, f"topic {self.name}: {len(found)} of {wanted} records read"
                if msg.error() is None:
                    found.append(orjson.loads(msg.value()))
        finally:
            consumer.close()
        return found


@pytest.fixture(scope="module")
def api_topic(kafka_bootstrap: str) -> Iterator[Topic]:
    name = f"bad_input_{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(name, TEST_PARTITIONS, 1)])[name].result(timeout=30)
    wait_for_leaders(admin, name)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"watermarks-{name}"})
    try:
        yield Topic(kafka_bootstrap, name, consumer)
    finally:
        consumer.close()
        admin.delete_topics([name])[name].result(timeout=30)


def ingest_env(kafka_bootstrap: str, topic: str, **extra: str) -> dict[str, str]:
    # A generous acknowledgement deadline: these tests are about bad input, and
    # on a loaded shared machine the 170 ms default would turn a good tag into a 503.
    return {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic, "INGEST_ACK_TIMEOUT_MS": "5000",
            **extra}


@pytest.fixture(scope="module")
def ingest_url(api_topic: Topic, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("ingest") / "ingest-api.log"
    with api_service("ingest_api", ingest_env(api_topic.bootstrap, api_topic.name), log) as url:
        yield url


# -- Cassandra -------------------------------------------------------------------

@dataclass
class Keyspace:
    hosts: list[str]
    port: int
    name: str
    session: object  # cassandra.cluster.Session

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every table, sorted: equal snapshots = nothing changed."""
        tables = sorted(row[0] for row in self.session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (self.name,)))
        return {table: sorted(tuple(row) for row in self.session.execute(f"SELECT * FROM {self.name}.{table}"))
                for table in tables}

    def store_tag(self, tag: dict, partition: int = 0, offset: int = 0) -> None:
        """Write a tag's profile row and its 8 cube cells as the stream job would
        (counts add up, so several tags may share a cell)."""
        from common.tag import UserTag

        accepted = UserTag.model_validate(tag)
        p = accepted.product_info
        ks, session = self.name, self.session
        # Prepared, like every statement of the platform: the values are bound, never quoted into CQL.
        session.execute(session.prepare(
            f"INSERT INTO {ks}.user_profiles (cookie, action, time_ms, kafka_partition, kafka_offset, tag) "
            "VALUES (?, ?, ?, ?, ?, ?)"),
            (accepted.cookie, accepted.action, accepted.time_ms, partition, offset,
             accepted.canonical_json().decode()))
        read = session.prepare(
            f"SELECT count, sum_price FROM {ks}.aggregate_cells WHERE action = ? AND dims = ? "
            "AND bucket_ms = ? AND origin = ? AND brand_id = ? AND category_id = ? AND late_partition = -1 "
            "AND late_offset = -1")
        write = session.prepare(
            f"INSERT INTO {ks}.aggregate_cells (action, dims, bucket_ms, origin, brand_id, category_id, "
            "late_partition, late_offset, count, sum_price) VALUES (?, ?, ?, ?, ?, ?, -1, -1, ?, ?)")
        bucket = bucket_of(accepted.time_ms)
        for mask in STORED_MASKS:  # as the stream job writes them
            origin, brand, category = cell_key(mask, accepted.origin, p.brand_id, p.category_id)
            key = (accepted.action, mask, bucket, origin, brand, category)
            row = session.execute(read, key).one()
            count, total = (row[0], row[1]) if row else (0, 0)
            session.execute(write, (*key, count + 1, total + p.price))


@pytest.fixture(scope="module")
def api_keyspace(backends) -> Iterator[Keyspace]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    schema.apply_schema(backends.cassandra_hosts, name, 1, port=backends.cassandra_port)
    cluster, session = schema.connect(backends.cassandra_hosts, backends.cassandra_port)
    try:
        yield Keyspace(backends.cassandra_hosts, backends.cassandra_port, name, session)
    finally:
        cluster.shutdown()
        schema.drop_keyspace(backends.cassandra_hosts, name, port=backends.cassandra_port)


def query_env(keyspace: Keyspace, **extra: str) -> dict[str, str]:
    # /pipeline reads nothing here: its defaults would read a `make up` stack beside the tests.
    return {"CASSANDRA_CONTACT_POINTS": ",".join(keyspace.hosts), "CASSANDRA_PORT": str(keyspace.port),
            "CASSANDRA_KEYSPACE": keyspace.name, "QUERY_INGEST_METRICS_URL": "", "QUERY_FLINK_REST_URL": "",
            **extra}


@pytest.fixture(scope="module")
def query_url(api_keyspace: Keyspace, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("query") / "query-api.log"
    with api_service("query_api", query_env(api_keyspace), log) as url:
        yield url


def range_of(start: str, minutes: int) -> str:
    """`<start>_<start + minutes>` at second precision (start like 2022-03-22T12:15:00)."""
    from common.timestamps import format_bucket, parse_time_range

    start_ms = parse_time_range(f"{start}_{start}.001").start_ms
    return f"{start}_{format_bucket(start_ms + minutes * BUCKET_MS)}"
