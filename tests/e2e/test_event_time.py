"""End to end, event time: the cube's windows, the late path and retention
(docs/DESIGN.md, "Windows, lateness and retention"), through the ingest API,
Kafka, the real job and the query API, each answer compared with the oracle.

- a tag later than the allowed lateness is counted exactly (a correction row);
- a tag more than the retention behind the watermark is dropped, logged with
  its Kafka position, and an expired bucket's partitions are deleted;
- a stream whose event time stands still while wall time passes keeps its
  totals (no wall-clock TTL);
- minutes before 1970 and after 2038;
- a day of event time in shuffled order, checked with 24 h ranges, with the
  job killed -9 mid-stream while corrections are staged, and restarted.

The job runs with a short retention (EVENT_RETENTION_MS, 10 minutes) and no
out-of-orderness where the test needs the watermark to move by the minute.
"""

from __future__ import annotations

import random
import time
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from common.cube import BUCKET_MS
from cql import apply as schema
from harness.replay.oracle import Oracle
from harness.replay.workload import Workload, format_tag_time
from tests.e2e.conftest import poll_until
from tests.e2e.test_pipeline import aggregate_answers_match, oracle_of_the_log, post_all, range_param

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

T0 = 1647950400000  # 2022-03-22T12:00:00Z
MINUTE = BUCKET_MS
LATENESS_MS = 60_000
RETENTION_MS = 10 * MINUTE
# The watermark moves with every tag (no out-of-orderness), and partitions that
# get no tags (few cookies here) stop holding it back after a second.
JOB_ENV = {"CUBE_ALLOWED_LATENESS_MS": str(LATENESS_MS), "EVENT_RETENTION_MS": str(RETENTION_MS),
           "CUBE_OUT_OF_ORDERNESS_MS": "0", "SOURCE_IDLE_TIMEOUT_MS": "1000"}


def tag(time_ms: int, cookie: str = "c", action: str = "BUY", price: int = 100) -> dict:
    return {"time": format_tag_time(time_ms), "cookie": cookie, "country": "PL", "device": "PC", "action": action,
            "origin": "o", "product_info": {"product_id": 1, "brand_id": "b", "category_id": "c", "price": price}}


def count(client, bucket_ms: int, action: str = "BUY") -> int:
    params = [("time_range", range_param(bucket_ms, bucket_ms + MINUTE, millis=False)), ("action", action),
              ("aggregates", "COUNT")]
    response = client.get("/aggregates?" + urlencode(params))
    assert response.status_code == 200, response.text
    return int(response.json()["rows"][0][-1])


def wait_count(client, bucket_ms: int, want: int, timeout_s: float = 60) -> None:
    try:
        poll_until(lambda: count(client, bucket_ms) == want, timeout_s, 0.5)
    except TimeoutError:
        pytest.fail(f"bucket {format_tag_time(bucket_ms)}: COUNT {count(client, bucket_ms)}, want {want}")


def correction_rows(backends, keyspace: str, bucket_ms: int) -> int:
    cluster, session = schema.connect(backends.cassandra_hosts, backends.cassandra_port, keyspace)
    try:
        rows = session.execute(
            "SELECT late_partition FROM aggregate_cells WHERE action = 'BUY' AND dims = 0 AND bucket_ms = %s",
            [bucket_ms])
        return sum(1 for r in rows if r.late_partition >= 0)
    finally:
        cluster.shutdown()


def _job_json(job, path: str):
    return httpx.get(f"{job.rest_url}{path}", timeout=5).json()


def _vertex(job, name_prefix: str) -> tuple[str, str]:
    jid = job.job_id
    vid = next(v["id"] for v in _job_json(job, f"/jobs/{jid}")["vertices"] if name_prefix in v["name"])
    return jid, vid


def windows_watermark(job) -> int:
    """The cube windows' input watermark (the lowest subtask's): the late router passed it on first."""
    jid, vid = _vertex(job, "cube-windows")
    values = [int(m["value"]) for m in _job_json(job, f"/jobs/{jid}/vertices/{vid}/watermarks")]
    return min(values) if values else -2**63


def router_counter(job, name: str) -> int:
    """A counter of the late router (summed over subtasks), from Flink's REST API."""
    jid, vid = _vertex(job, "cube-late-router")
    ids = [m["id"] for m in _job_json(job, f"/jobs/{jid}/vertices/{vid}/subtasks/metrics") if m["id"].endswith(name)]
    if not ids:
        return 0
    got = _job_json(job, f"/jobs/{jid}/vertices/{vid}/subtasks/metrics?get={ids[0]}&agg=sum")
    return int(float(got[0]["sum"])) if got else 0


def wait_counter(job, name: str, want: int) -> None:
    """Flink's REST API serves metrics it fetched up to 10 s before (metrics.fetcher.update-interval)."""
    try:
        poll_until(lambda: router_counter(job, name) == want, 30, 1)
    except TimeoutError:
        pytest.fail(f"{name} = {router_counter(job, name)}, want {want}")


def wait_watermark(job, at_least_ms: int) -> None:
    try:
        poll_until(lambda: windows_watermark(job) >= at_least_ms, 30, 0.5)
    except TimeoutError:
        pytest.fail(f"watermark {windows_watermark(job)} did not reach {at_least_ms}:\n{job.log_tail()}")


def advance(ingest_client, to_ms: int) -> None:
    """A VIEW tag at `to_ms` on every cookie used here, so every partition moves the watermark."""
    for cookie in ("c", "d", "e", "f", "g", "h"):
        assert post_all(ingest_client, [tag(to_ms, cookie, action="VIEW")])


def test_late_tags_count_exactly_and_tags_past_the_retention_are_dropped(
        start_stream_job, ingest_client, query_client, fresh_topic, fresh_keyspace, backends):
    job = start_stream_job(fresh_topic, fresh_keyspace, **JOB_ENV)
    post_all(ingest_client, [tag(T0 + 10_000 + i) for i in range(10)])
    wait_count(query_client, T0, 10)

    # Event time stands still while wall time passes: more tags of the same bucket, same total plus them.
    time.sleep(3)  # the scenario itself: wall time moving on, not synchronisation
    post_all(ingest_client, [tag(T0 + 20_000)])
    wait_count(query_client, T0, 11)

    # Event time moves 3 minutes on: T0's window is released (lateness 1 minute).
    advance(ingest_client, T0 + 3 * MINUTE)
    wait_watermark(job, T0 + MINUTE + LATENESS_MS)
    post_all(ingest_client, [tag(T0 + 30_000, cookie="late")])  # past the allowed lateness
    wait_count(query_client, T0, 12)
    assert correction_rows(backends, fresh_keyspace, T0) == 1, "the late tag did not take the late path"
    wait_counter(job, "tagsVeryLate", 1)

    # A tag more than the retention behind the watermark is dropped (counted; logged with its position).
    too_late = T0 + 3 * MINUTE - RETENTION_MS - 2 * MINUTE
    post_all(ingest_client, [tag(too_late, cookie="too late")])
    wait_counter(job, "tagsDroppedPastRetention", 1)
    assert count(query_client, too_late - too_late % MINUTE) == 0

    # Past the retention, T0's bucket is deleted: its window row and its correction.
    advance(ingest_client, T0 + MINUTE + RETENTION_MS + MINUTE)
    wait_watermark(job, T0 + MINUTE + RETENTION_MS)
    post_all(ingest_client, [tag(T0 + MINUTE + RETENTION_MS + MINUTE)])  # a cube row, so the sink sweeps
    wait_count(query_client, T0, 0)


def test_minutes_before_1970_and_after_2038(start_stream_job, ingest_client, query_client, fresh_topic,
                                            fresh_keyspace):
    start_stream_job(fresh_topic, fresh_keyspace, **JOB_ENV)
    before_1970 = -2 * MINUTE  # 1969-12-31T23:58:00Z
    post_all(ingest_client, [tag(before_1970 + 1), tag(before_1970 + MINUTE - 1), tag(-1)])
    wait_count(query_client, before_1970, 2)
    wait_count(query_client, -MINUTE, 1)

    after_2038 = 2_240_611_200_000  # 2041-01-01T00:00:00Z, past 32-bit seconds
    post_all(ingest_client, [tag(after_2038 + 59_999, price=7), tag(after_2038, price=5)])
    wait_count(query_client, after_2038, 2)
    params = [("time_range", range_param(after_2038, after_2038 + MINUTE, millis=False)), ("action", "BUY"),
              ("aggregates", "SUM_PRICE")]
    assert query_client.get("/aggregates?" + urlencode(params)).json()["rows"] == [
        ["2041-01-01T00:00:00", "BUY", "12"]]


def test_a_shuffled_day_is_exact_across_a_killed_job(
        start_stream_job, ingest_client, query_client, fresh_topic, fresh_keyspace, kafka_bootstrap):
    """A day of event time in random order: nearly every tag is later than the allowed
    lateness (the default, 10 s), so the late path carries the day. Its TaskManager is
    killed -9 mid-stream, while corrections wait for their checkpoint, and started again."""
    job = start_stream_job(fresh_topic, fresh_keyspace)
    day = 24 * 3600_000
    workload = Workload(seed=11, start_ms=T0, step_ms=(day - 10 * MINUTE) // 1200, cookies=40)
    tags = list(workload.tags(1200))
    random.Random(3).shuffle(tags)

    acked = post_all(ingest_client, tags[:600])
    before = job.checkpoints_completed()
    poll_until(lambda: job.checkpoints_completed() > before, timeout_s=60)
    acked += post_all(ingest_client, tags[600:800])
    job.kill_taskmanager()  # corrections of the last tags are staged, not written
    acked += post_all(ingest_client, tags[800:])
    job.start_taskmanager()
    assert job.restored_from(), "the job did not restore a checkpoint"

    oracle: Oracle = oracle_of_the_log(kafka_bootstrap, fresh_topic, acked)
    queries = [dict(start_ms=T0, end_ms=T0 + day, action=action, aggregates=["COUNT", "SUM_PRICE"],
                    origin=None, brand_id=None, category_id=None) for action in ("VIEW", "BUY")]
    sample = tags[0]
    queries += [dict(start_ms=T0, end_ms=T0 + day, action=sample["action"], aggregates=["SUM_PRICE", "COUNT"],
                     origin=sample["origin"], brand_id=sample["product_info"]["brand_id"], category_id=None)]
    try:
        poll_until(lambda: not aggregate_answers_match(query_client, oracle, queries), timeout_s=90, interval_s=2)
    except TimeoutError:
        wrong = aggregate_answers_match(query_client, oracle, queries)
        pytest.fail(f"24 h answers still wrong 90 s after the restart: {orjson.dumps(wrong)[:1500]!r}")
