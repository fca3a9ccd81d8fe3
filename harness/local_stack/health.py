"""The rates, lag and freshness lines of `make status`, from the components' own metrics.

Two samples about a second apart: the query API's GET /pipeline (which adds
the cube's newest bucket) or, when the query API does not answer, the same
gathering in this process (query_api/pipeline.py, without the cube), and the
query API's /metrics for its request rate. Parsing is the product's own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from common.timestamps import format_bucket
from harness.local_stack.config import StackSettings
from query_api.pipeline import Pipeline, parse_prometheus

# Requests of probes and scrapers, left out of the query rate.
_NOT_QUERIES = ("/health/", "/metrics", "/pipeline")
SAMPLE_GAP_S = 1.1


async def _pipeline(client: httpx.AsyncClient, fallback: Pipeline, query_url: str) -> dict[str, Any]:
    try:
        response = await client.get(f"{query_url}/pipeline", timeout=2.0)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer
    except (httpx.HTTPError, ValueError):
        return await fallback.sample()


async def _query_requests(client: httpx.AsyncClient, query_url: str) -> dict[str, float] | None:
    """Query API requests so far by status class (2xx, 4xx, 5xx), probes and scrapes left out."""
    try:
        response = await client.get(f"{query_url}/metrics", timeout=2.0)
        response.raise_for_status()
        samples = parse_prometheus(response.text)
    except (httpx.HTTPError, ValueError):
        return None
    by_class: dict[str, float] = {}
    for labels, value in samples.get("allezon_query_requests_total", []):
        if not labels.get("endpoint", "").startswith(_NOT_QUERIES):
            key = f"{labels.get('status', '?')[:1]}xx"
            by_class[key] = by_class.get(key, 0.0) + value
    return by_class


async def _two_samples(settings: StackSettings) -> tuple[list[dict[str, Any]], list[dict[str, float] | None], float]:
    s = settings
    query_url = f"http://{s.host}:{s.query_port}"
    flink_url = f"http://{s.host}:{s.flink_rest_port}" if s.flink_job_enabled else ""
    async with httpx.AsyncClient() as client:
        fallback = Pipeline(client, f"http://{s.host}:{s.ingest_port}/metrics", flink_url, cache_s=0.0)
        pipelines: list[dict[str, Any]] = []
        queries: list[dict[str, float] | None] = []
        times: list[float] = []
        for i in range(2):
            if i:
                await asyncio.sleep(max(0.0, SAMPLE_GAP_S - (time.monotonic() - times[0])))
            times.append(time.monotonic())
            pipeline, query = await asyncio.gather(_pipeline(client, fallback, query_url),
                                                   _query_requests(client, query_url))
            # GET /pipeline reuses an answer for a second: wait for a newer one.
            for _ in range(5):
                if not i or pipeline["sampled_at_ms"] != pipelines[0]["sampled_at_ms"]:
                    break
                await asyncio.sleep(0.3)
                pipeline = await _pipeline(client, fallback, query_url)
            pipelines.append(pipeline)
            queries.append(query)
    return pipelines, queries, times[1] - times[0]


def _rate(after: float, before: float, seconds: float) -> float:
    return max(0.0, after - before) / seconds


def health_lines(settings: StackSettings) -> list[str]:
    """What `make status` prints below the table of processes."""
    (first, second), (q0, q1), seconds = asyncio.run(_two_samples(settings))
    lines = [f"PIPELINE (rates over about {seconds:.1f} s)"]
    pipeline_s = max(0.001, (second["sampled_at_ms"] - first["sampled_at_ms"]) / 1000)

    ingest0, ingest1 = first.get("ingest"), second.get("ingest")
    if ingest0 and ingest1:
        t0, t1 = ingest0["tags_total"], ingest1["tags_total"]
        rates = {status: _rate(t1[status], t0.get(status, 0), pipeline_s) for status in sorted(t1)}
        refused = {k: v for k, v in rates.items() if k != "204" and v}
        newest = ingest1["newest_tag_time_ms"]
        lines.append(
            f"  {'ingest':<10} accepted {rates.get('204', 0.0):.1f} tags/s, refused {sum(refused.values()):.1f}/s"
            f" ({', '.join(f'{k}: {v:.1f}' for k, v in refused.items()) or 'none'}); "
            f"{ingest1['in_flight']} in flight; newest tag {format_bucket(newest) if newest else 'none yet'}")
    else:
        lines.append(f"  {'ingest':<10} metrics not available")

    if q0 is not None and q1 is not None:
        per_class = {k: _rate(v, q0.get(k, 0.0), seconds) for k, v in sorted(q1.items())}
        lines.append(f"  {'query':<10} {sum(per_class.values()):.1f} requests/s "
                     f"({', '.join(f'{k} {v:.1f}' for k, v in per_class.items() if v) or 'none'}; probes left out)")
    else:
        lines.append(f"  {'query':<10} metrics not available")

    job = second.get("job")
    if job:
        age = job["last_checkpoint_age_s"]
        lag = job["kafka_lag_records"]
        lines.append(
            f"  {'flink-job':<10} {job['state']}, restarts {job['restarts']}, checkpoints "
            f"{job['checkpoints_completed']} completed / {job['checkpoints_failed']} failed"
            f"{f', last {age:.0f} s ago' if age is not None else ''}; "
            f"Kafka lag {'unknown' if lag is None else f'{lag} records'}")
    else:
        lines.append(f"  {'flink-job':<10} not reported (no job, or the Flink REST API does not answer)")

    fresh = second["freshness"]
    bucket, bucket_lag, profile_lag = fresh["newest_bucket_ms"], fresh["bucket_lag_s"], fresh["profile_lag_s"]
    lines.append(
        f"  {'freshness':<10} newest bucket {format_bucket(bucket) if bucket is not None else 'unknown'}"
        f"{f', {bucket_lag:.1f} s behind the newest tag (event time)' if bucket_lag is not None else ''}; "
        f"profiles {f'~{profile_lag:.2f} s behind' if profile_lag is not None else 'lag unknown'}")
    return lines
