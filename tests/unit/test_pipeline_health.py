"""GET /pipeline's parts (query_api/pipeline.py): the Prometheus text parser,
the assembly of the answer from fake components (httpx.MockTransport), null
parts for components that fail or are too slow, the cache, and the lags."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import httpx
import pytest

from query_api.pipeline import (
    Pipeline,
    bucket_lag_s,
    ingest_part,
    parse_prometheus,
    pick_job,
    profile_lag_s,
)

INGEST_TEXT = """\
# HELP allezon_ingest_tags_total POST /user_tags answers by HTTP status (204 = accepted)
# TYPE allezon_ingest_tags_total counter
allezon_ingest_tags_total{status="204"} 123.0
allezon_ingest_tags_total{status="400"} 2.0
allezon_ingest_tags_total{status="503"} 0.0
# HELP allezon_ingest_tags_created x
# TYPE allezon_ingest_tags_created gauge
allezon_ingest_tags_created{status="204"} 1.7645e+09
# HELP allezon_ingest_request_seconds x
# TYPE allezon_ingest_request_seconds histogram
allezon_ingest_request_seconds_bucket{le="0.001"} 3.0
allezon_ingest_request_seconds_bucket{le="+Inf"} 125.0
allezon_ingest_request_seconds_count 125.0
allezon_ingest_request_seconds_sum 0.5
# HELP allezon_ingest_tags_in_flight x
# TYPE allezon_ingest_tags_in_flight gauge
allezon_ingest_tags_in_flight 3.0
# HELP allezon_ingest_newest_tag_time_ms x
# TYPE allezon_ingest_newest_tag_time_ms gauge
allezon_ingest_newest_tag_time_ms 1.76453999e+12
"""

NOW_S = 1764540000.0
JID = "a" * 32
SOURCE = "cbc357ccb763df2852fee8c4fc7d55f2"


def test_parse_prometheus_text() -> None:
    samples = parse_prometheus(INGEST_TEXT)
    assert samples["allezon_ingest_tags_total"] == [({"status": "204"}, 123.0), ({"status": "400"}, 2.0),
                                                   ({"status": "503"}, 0.0)]
    assert samples["allezon_ingest_request_seconds_bucket"][1] == ({"le": "+Inf"}, 125.0)
    assert samples["allezon_ingest_newest_tag_time_ms"] == [({}, 1764539990000.0)]


def test_parse_prometheus_escapes_timestamps_and_special_values() -> None:
    text = ('# TYPE flink_x gauge\nflink_x{job_name="a \\"q\\" \\\\ b",host="h"} NaN 1700000000000\n'
            'haproxy_y{proxy="front"} +Inf\n')
    samples = parse_prometheus(text)
    (labels, value), = samples["flink_x"]
    assert labels == {"job_name": 'a "q" \\ b', "host": "h"} and math.isnan(value)
    assert samples["haproxy_y"] == [({"proxy": "front"}, math.inf)]


def test_parse_prometheus_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse_prometheus("this is { not prometheus\n")


def test_ingest_part() -> None:
    assert ingest_part(parse_prometheus(INGEST_TEXT)) == {
        "tags_total": {"204": 123, "400": 2, "503": 0}, "in_flight": 3, "newest_tag_time_ms": 1764539990000}
    # 0 = nothing accepted since the ingest API started: unknown, not 1970.
    assert ingest_part(parse_prometheus("allezon_ingest_newest_tag_time_ms 0\n"))["newest_tag_time_ms"] is None


def test_lags() -> None:
    assert bucket_lag_s(1764539990000, 1764539880000) == 50.0
    assert bucket_lag_s(1764539990000, 1764539940000) == 0.0  # the bucket still open: never negative
    assert bucket_lag_s(None, 1764539940000) is None and bucket_lag_s(1, None) is None
    assert profile_lag_s(40, 1000.0) == 0.04
    assert profile_lag_s(0, None) == 0.0  # nothing to read: caught up whatever the rate
    assert profile_lag_s(40, None) is None and profile_lag_s(40, 0.0) is None and profile_lag_s(None, 5.0) is None


def test_pick_job_prefers_the_newest_running() -> None:
    jobs = [{"jid": "old", "state": "CANCELED", "start-time": 3},
            {"jid": "run", "state": "RUNNING", "start-time": 2},
            {"jid": "older", "state": "FAILED", "start-time": 1}]
    assert pick_job(jobs)["jid"] == "run"  # type: ignore[index]
    assert pick_job(jobs[:1])["jid"] == "old"  # type: ignore[index]
    assert pick_job([]) is None


def flink_routes(lag_sum: float = 40.0) -> dict[str, object]:
    metric = "Source__user_tags[1].pendingRecords"
    return {
        "/jobs/overview": {"jobs": [{"jid": JID, "name": "allezon-user-tags", "state": "RUNNING",
                                     "start-time": 1}]},
        f"/jobs/{JID}/checkpoints": {"counts": {"completed": 12, "failed": 1},
                                      "latest": {"completed": {"latest_ack_timestamp": int((NOW_S - 3.2) * 1000)}}},
        f"/jobs/{JID}/metrics": [{"id": "numRestarts", "value": "2"}],
        f"/jobs/{JID}": {"vertices": [{"id": SOURCE, "name": "Source: user_tags[1] -> Calc[2]"},
                                      {"id": "other", "name": "cube-windows"}]},
        f"/jobs/{JID}/vertices/{SOURCE}/subtasks/metrics": (
            lambda request: [{"id": metric, "sum": lag_sum}] if request.url.params.get("get") == metric
            else [{"id": "numRecordsIn"}, {"id": metric}]),
    }


Handler = Callable[[httpx.Request], httpx.Response]


def fake(ingest: object = INGEST_TEXT, flink: dict[str, object] | None = None,
         calls: list[str] | None = None) -> httpx.MockTransport:
    """Fake ingest API (:8081) and Flink REST API (:8091); an Exception value is raised."""
    routes = flink_routes() if flink is None else flink

    def handle(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request.url.path)
        if request.url.port == 8081:
            if isinstance(ingest, Exception):
                raise ingest
            return httpx.Response(200, text=str(ingest))
        answer = routes.get(request.url.path)
        if answer is None:
            return httpx.Response(404, json={"errors": ["Not found"]})
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer(request) if callable(answer) else answer)

    return httpx.MockTransport(handle)


def sample(transport: httpx.MockTransport, newest_bucket: object = None, **kwargs: object) -> dict:
    async def run() -> dict:
        async with httpx.AsyncClient(transport=transport) as client:
            pipeline = Pipeline(client, "http://127.0.0.1:8081/metrics", "http://127.0.0.1:8091",
                                newest_bucket, clock=lambda: NOW_S, **kwargs)  # type: ignore[arg-type]
            return await pipeline.sample()

    return asyncio.run(run())


async def _bucket() -> int:
    return 1764539880000


def test_the_whole_answer() -> None:
    assert sample(fake(), _bucket) == {
        "sampled_at_ms": 1764540000000,
        "ingest": {"tags_total": {"204": 123, "400": 2, "503": 0}, "in_flight": 3,
                   "newest_tag_time_ms": 1764539990000},
        "job": {"name": "allezon-user-tags", "state": "RUNNING", "restarts": 2, "checkpoints_completed": 12,
                "checkpoints_failed": 1, "last_checkpoint_age_s": 3.2, "kafka_lag_records": 40},
        # One sample: no accepted rate yet, so no profile lag.
        "freshness": {"newest_bucket_ms": 1764539880000, "bucket_lag_s": 50.0, "profile_lag_s": None},
    }


def test_unreachable_components_are_null() -> None:
    down = httpx.ConnectError("refused")
    answer = sample(fake(ingest=down, flink={"/jobs/overview": down}))
    assert answer["ingest"] is None and answer["job"] is None
    assert answer["freshness"] == {"newest_bucket_ms": None, "bucket_lag_s": None, "profile_lag_s": None}


def test_slow_or_broken_parts_are_null() -> None:
    assert sample(fake(ingest=httpx.ReadTimeout("slow")))["ingest"] is None
    assert sample(fake(ingest="<html>not metrics {"))["ingest"] is None
    routes = flink_routes()
    routes[f"/jobs/{JID}/checkpoints"] = {"unexpected": True}
    del routes[f"/jobs/{JID}/metrics"]  # 404
    assert sample(fake(flink=routes))["job"] is None

    async def failing_bucket() -> int:
        raise RuntimeError("cassandra down")

    answer = sample(fake(), failing_bucket)
    assert answer["freshness"]["newest_bucket_ms"] is None and answer["ingest"] is not None


def test_no_job_and_no_lag_metric() -> None:
    assert sample(fake(flink={"/jobs/overview": {"jobs": []}}))["job"] is None
    routes = flink_routes()
    routes[f"/jobs/{JID}/vertices/{SOURCE}/subtasks/metrics"] = [{"id": "numRecordsIn"}]
    job = sample(fake(flink=routes))["job"]
    assert job["kafka_lag_records"] is None and job["state"] == "RUNNING"


def test_answers_are_cached_and_the_rate_gives_the_profile_lag() -> None:
    calls: list[str] = []
    texts = iter([INGEST_TEXT, INGEST_TEXT.replace('"204"} 123.0', '"204"} 2123.0')])
    clock = [100.0]
    flink = fake(flink=flink_routes(lag_sum=500))

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.port == 8081:
            calls.append("ingest")
            return httpx.Response(200, text=next(texts))
        return flink.handler(request)  # type: ignore[return-value]

    async def run() -> list[dict]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
            pipeline = Pipeline(client, "http://127.0.0.1:8081/metrics", "http://127.0.0.1:8091",
                                clock=lambda: NOW_S, monotonic=lambda: clock[0], cache_s=1.0)
            first = await pipeline.sample()
            clock[0] += 0.5
            cached = await pipeline.sample()
            clock[0] += 1.5
            second = await pipeline.sample()
            return [first, cached, second]

    first, cached, second = asyncio.run(run())
    assert cached is first and calls == ["ingest", "ingest"]
    assert first["freshness"]["profile_lag_s"] is None
    # 2,000 tags accepted in 2 s: 1,000/s, and 500 records behind = 0.5 s.
    assert second["freshness"]["profile_lag_s"] == 0.5
