"""SPEC section 1 under a broker crash: while Kafka is down every POST gets 503
with Retry-After within 200 ms, never 204; once it is back, 204 again; and the
topic holds every tag that got 204 exactly once. A tag answered 503 means "not
acknowledged": if it was queued it may land after the restart, at most once;
past INGEST_MAX_IN_FLIGHT queued tags it is refused before it is queued and
never lands.

Uses a broker of its own (not the session's), so killing it disturbs no other test.
"""

import time
import uuid
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from ingest_api.config import IngestSettings
from tests.integration.test_ingest_kafka import VALID, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.faults]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_broker(backends):
    if backends.stack is None:
        pytest.skip("needs the local process stack (kill -9 of the broker)")
    from harness.local_stack.config import StackSettings
    from harness.local_stack.stack import Stack

    stack = Stack(StackSettings().shifted(12_000, run_dir=REPO / ".run-test" / "outage"))
    stack.clean()
    stack.up(["kafka"], create_topic=False)
    try:
        yield stack
    finally:
        stack.clean()


def post(client, cookie_seq: int):
    body = dict(VALID, cookie=f"outage-{cookie_seq}")
    started = time.perf_counter()
    response = client.post("/user_tags", content=orjson.dumps(body))
    return response, (time.perf_counter() - started) * 1000, body


def test_broker_crash_gives_503_never_204_and_loses_nothing(own_broker):
    topic = f"outage_{uuid.uuid4().hex[:8]}"
    own_broker.kafka.create_topic(topic, partitions=2)
    bootstrap = own_broker.kafka_bootstrap_servers
    acknowledged, seq = [], 0
    in_flight = 4
    settings = IngestSettings(kafka_bootstrap_servers=bootstrap, kafka_topic=topic, ingest_max_in_flight=in_flight)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for _ in range(5):
            seq += 1
            response, _, body = post(client, seq)
            assert response.status_code == 204
            acknowledged.append(body["cookie"])

        own_broker.kill("kafka")
        queued, refused = [], []
        for i in range(10):
            seq += 1
            response, elapsed_ms, body = post(client, seq)
            (queued if i < in_flight else refused).append(body["cookie"])
            assert response.status_code == 503, "a tag got 204 while the broker was dead"
            assert response.headers["retry-after"]
            assert response.headers["content-type"] == "application/problem+json"
            assert elapsed_ms < 200, elapsed_ms

        restarted = time.monotonic()
        own_broker.get("kafka").start()
        deadline = restarted + 90
        while time.monotonic() < deadline:
            seq += 1
            response, _, body = post(client, seq)
            assert response.status_code in (204, 503)
            if response.status_code == 204:
                acknowledged.append(body["cookie"])
                break
        else:
            pytest.fail("no 204 within 90 s of the broker's restart")
        print(f"ingest recovered {time.monotonic() - restarted:.1f} s after the broker restart began")

        # The queued 503 tags are delivered (or not) by now: the writer flushes on close.
    records = read_topic(bootstrap, topic, expected=len(acknowledged), deadline_s=30)
    keys = [r.key().decode() for r in records]
    assert all(keys.count(cookie) == 1 for cookie in acknowledged), "a 204 tag is missing or twice in the log"
    extra = [k for k in keys if k not in acknowledged]
    assert len(extra) == len(set(extra)), "a 503 tag landed twice"
    assert set(extra) <= set(queued), f"a tag refused before queueing landed: {set(extra) - set(queued)}"
    print(f"{len(extra)} of {len(queued)} queued 503 tags landed after the restart")
