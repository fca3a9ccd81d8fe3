"""POST /user_tags against a real Kafka broker (SPEC section 1)."""

import time

import orjson
import pytest
from confluent_kafka import Consumer
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from ingest_api.config import IngestSettings

pytestmark = pytest.mark.integration

VALID = {
    "time": "2022-03-22T12:15:00.000Z",
    "cookie": "ćookie/with ?&=#% chars",
    "country": "PL",
    "device": "MOBILE",
    "action": "BUY",
    "origin": "shop/ä",
    "product_info": {"product_id": "P-1", "brand_id": "Nike", "category_id": "shoes", "price": 2147483647},
}


def read_topic(bootstrap: str, topic: str, expected: int, deadline_s: float = 15.0) -> list:
    """Every record of `topic` from the beginning: polls until `expected` arrived
    (or the deadline), then until nothing more comes for 0.5 s."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{topic}-{time.monotonic_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    records, deadline = [], time.monotonic() + deadline_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                records.append(msg)
        # Then read on until the topic stays quiet, so anything extra shows up.
        while True:
            extra = consumer.poll(0.5)
            if extra is None:
                break
            if extra.error() is None:
                records.append(extra)
    finally:
        consumer.close()
    return records


@pytest.fixture
def ingest(kafka_bootstrap, fresh_topic):
    settings = IngestSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic=fresh_topic)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.topic = fresh_topic
        yield client


def test_valid_tag_gets_204_and_lands_in_kafka_keyed_by_cookie(ingest, kafka_bootstrap):
    body = dict(VALID, unknown_field={"nested": True})
    response = ingest.post("/user_tags", content=orjson.dumps(body))
    assert response.status_code == 204, response.text
    assert response.content == b""

    [record] = read_topic(kafka_bootstrap, ingest.topic, expected=1)
    assert record.key() == VALID["cookie"].encode()
    value = orjson.loads(record.value())
    assert orjson.loads(value["tag"]) == VALID  # exactly as accepted, unknown field gone
    assert "unknown_field" not in value["tag"]
    assert value["time_ms"] == 1647951300000
    assert value["price"] == 2147483647


def test_same_cookie_lands_in_one_partition_in_order(ingest, kafka_bootstrap):
    times = [f"2022-03-22T12:15:{s:02d}.000Z" for s in range(10)]
    for t in times:
        assert ingest.post("/user_tags", json=dict(VALID, time=t)).status_code == 204
    records = read_topic(kafka_bootstrap, ingest.topic, expected=len(times))
    assert len({r.partition() for r in records}) == 1
    assert [orjson.loads(orjson.loads(r.value())["tag"])["time"] for r in records] == times


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"time": ', "body"),
        (orjson.dumps(dict(VALID, device="FRIDGE")), "device"),
        (orjson.dumps(dict(VALID, time="22/03/2022")), "time"),
        (orjson.dumps({k: v for k, v in VALID.items() if k != "cookie"}), "cookie"),
        (orjson.dumps(dict(VALID, product_info=dict(VALID["product_info"], price="12"))), "product_info.price"),
    ],
)
def test_invalid_tag_gets_400_problem_and_nothing_is_written(ingest, kafka_bootstrap, body, field):
    response = ingest.post("/user_tags", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and problem["title"] and problem["type"]
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    assert read_topic(kafka_bootstrap, ingest.topic, expected=1, deadline_s=2) == []


def test_body_over_64_kib_gets_413_and_nothing_is_written(ingest, kafka_bootstrap):
    huge = dict(VALID, origin="x" * 4000, padding="y" * (64 * 1024))
    response = ingest.post("/user_tags", content=orjson.dumps(huge))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    # Also when the client does not declare a length (chunked upload).
    response = ingest.post("/user_tags", content=iter([orjson.dumps(huge)]))
    assert response.status_code == 413
    assert read_topic(kafka_bootstrap, ingest.topic, expected=1, deadline_s=2) == []


def test_unreachable_kafka_gives_503_with_retry_after_within_200ms(fresh_topic):
    # Nothing listens on this port: the broker is "down" from the start.
    settings = IngestSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_topic=fresh_topic)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for _ in range(3):
            started = time.perf_counter()
            response = client.post("/user_tags", content=orjson.dumps(VALID))
            elapsed_ms = (time.perf_counter() - started) * 1000
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["content-type"] == "application/problem+json"
            assert elapsed_ms < 200, elapsed_ms
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/live").status_code == 200


def test_readiness_reflects_kafka(ingest):
    assert ingest.get("/health/ready").status_code == 200


def test_unknown_route_and_method_get_problem_documents(ingest):
    assert ingest.get("/nope").headers["content-type"] == "application/problem+json"
    response = ingest.get("/user_tags")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
