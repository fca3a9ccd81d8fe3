"""Every component's metrics, against the real stack: the ingest and query
APIs' /metrics, HAProxy's Prometheus exporter, the Flink JobManager's and
TaskManager's Prometheus reporters, the job's Kafka lag, and GET /pipeline
that gathers them (docs/OPERATIONS.md, "Metrics")."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from common.tag import UserTag
from harness.local_stack.stack import Stack
from query_api.pipeline import Samples, parse_prometheus, total
from tests.e2e.conftest import poll_until
from tests.integration.api_env import VALID_TAG

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

APIS = ["ingest-api", "query-api", "proxy"]


@pytest.fixture(scope="module")
def platform(flink_cluster: Stack) -> Iterator[Stack]:
    """The session's stack with both APIs and the front door (its own topic and keyspace)."""
    flink_cluster.up(["kafka", "cassandra", *APIS], submit_job=False)
    try:
        yield flink_cluster
    finally:
        flink_cluster.down(APIS)


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/plain"), (url, response.headers)
    samples = parse_prometheus(response.text)
    assert samples, f"{url} exported nothing"
    return samples


def accepted(stack: Stack) -> float:
    return total(scrape(f"{stack.ingest_api.address}/metrics"), "allezon_ingest_tags_total", status="204") or 0.0


def test_every_component_exports_prometheus_text(platform: Stack) -> None:
    ingest = scrape(f"{platform.ingest_api.address}/metrics")
    assert {"allezon_ingest_tags_total", "allezon_ingest_request_seconds_bucket", "allezon_ingest_tags_in_flight",
            "allezon_ingest_newest_tag_time_ms"} <= set(ingest)
    httpx.get(f"{platform.query_api.address}/health/live", timeout=10)
    query = scrape(f"{platform.query_api.address}/metrics")
    assert total(query, "allezon_query_requests_total", endpoint="/health/live", status="200")
    assert "allezon_query_request_seconds_bucket" in query
    proxy = scrape(platform.proxy.metrics_url)
    assert total(proxy, "haproxy_frontend_http_requests_total", proxy="front") is not None
    assert platform.flink_jobmanager is not None
    jobmanager = scrape(platform.flink_jobmanager.metrics_url)
    assert total(jobmanager, "flink_jobmanager_numRegisteredTaskManagers")
    taskmanager = scrape(platform.flink_taskmanagers[0].metrics_url)
    assert any(name.startswith("flink_taskmanager_Status_JVM") for name in taskmanager)


def test_the_ingest_counter_moves_with_a_posted_tag(platform: Stack) -> None:
    before = accepted(platform)
    tag = {**VALID_TAG, "cookie": f"metrics-{time.time_ns()}", "time": "2031-01-02T03:04:05.678Z"}
    response = httpx.post(f"{platform.proxy.base_url}/user_tags", content=orjson.dumps(tag), timeout=10)
    assert response.status_code == 204, response.text
    poll_until(lambda: accepted(platform) == before + 1, timeout_s=10)
    newest = total(scrape(f"{platform.ingest_api.address}/metrics"), "allezon_ingest_newest_tag_time_ms")
    assert newest is not None and newest >= 1925002445678
    # The front door's own exporter saw it too.
    proxy = scrape(platform.proxy.metrics_url)
    assert (total(proxy, "haproxy_backend_http_responses_total", proxy="ingest", code="2xx") or 0) >= 1


def test_the_job_exports_its_kafka_lag_and_pipeline_gathers_it(platform: Stack, start_stream_job, fresh_topic,
                                                                   fresh_keyspace, kafka_bootstrap: str) -> None:
    job = start_stream_job(fresh_topic, fresh_keyspace)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(50):
        # The record exactly as the ingest API writes it (the job reads that format only).
        key, value = UserTag.model_validate({**VALID_TAG, "cookie": f"lag-{i}"}).kafka_record()
        producer.produce(fresh_topic, key=key, value=value)
    assert producer.flush(30) == 0
    tm_url = platform.flink_taskmanagers[0].metrics_url

    def lag_exported() -> bool:
        names = [n for n in scrape(tm_url) if "pendingRecords" in n]
        return bool(names)

    poll_until(lag_exported, timeout_s=60, interval_s=1)
    seen: dict = {}

    def pipeline_reports_the_job() -> bool:
        answer = httpx.get(f"{platform.query_api.address}/pipeline", timeout=10).json()
        seen.update(answer)
        part = answer["job"]
        return bool(part and part["state"] == "RUNNING" and part["kafka_lag_records"] is not None
                    and answer["ingest"] is not None)

    try:
        poll_until(pipeline_reports_the_job, timeout_s=60, interval_s=1)
    except TimeoutError:
        raise AssertionError(f"GET /pipeline never reported the job's lag: {seen}\n{job.log_tail()}") from None
    assert set(seen) == {"sampled_at_ms", "ingest", "job", "freshness"}
    assert set(seen["job"]) == {"name", "state", "restarts", "checkpoints_completed", "checkpoints_failed",
                                "last_checkpoint_age_s", "kafka_lag_records"}
    assert set(seen["freshness"]) == {"newest_bucket_ms", "bucket_lag_s", "profile_lag_s"}
    assert seen["job"]["kafka_lag_records"] >= 0 and seen["job"]["restarts"] == 0
