"""GET /pipeline: the pipeline's health from the components' own metrics.

One JSON answer (docs/API.md, "Pipeline health") made of:
- the ingest API's Prometheus metrics (tags by status, in flight, newest event time);
- the Flink REST API: the job's state, restarts, checkpoints, and its Kafka
  source's `pendingRecords` (the consumer lag) summed over its subtasks;
- freshness: how far the buckets and the profiles are behind the newest tag.

A component that does not answer within QUERY_PIPELINE_TIMEOUT_S makes its
part `null`, never an error. Answers are cached QUERY_PIPELINE_CACHE_S, so
many open dashboards cost one scrape per second. The harness's `make status`
reuses this module (`Pipeline`, `parse_prometheus`); nothing here imports it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, FastAPI, Request
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response

from common.cube import BUCKET_MS
from query_api.cassandra_session import CassandraReader
from query_api.config import QuerySettings

log = logging.getLogger(__name__)
router = APIRouter()

Samples = dict[str, list[tuple[dict[str, str], float]]]
# Where the freshness of the buckets comes from: the newest bucket (ms) in the cube, or None.
NewestBucket = Callable[[], Awaitable[int | None]]

# The Kafka source's lag: FLIP-33's standard source metric, per subtask.
LAG_METRIC = "pendingRecords"
# The accepted rate behind profile_lag_s is averaged over about this long.
RATE_WINDOW_S = 30.0


def parse_prometheus(text: str) -> Samples:
    """Prometheus text format -> {sample name: [(labels, value), ...]}."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float | None:
    """Sum of the samples of `name` whose labels include `labels`; None when there is none."""
    found = [v for have, v in samples.get(name, []) if all(have.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


def ingest_part(samples: Samples) -> dict[str, Any]:
    """The `ingest` part of the answer, from the ingest API's metrics."""
    tags = {labels.get("status", "?"): int(v) for labels, v in samples.get("allezon_ingest_tags_total", [])}
    in_flight = total(samples, "allezon_ingest_tags_in_flight")
    newest = total(samples, "allezon_ingest_newest_tag_time_ms")
    return {
        "tags_total": dict(sorted(tags.items())),
        "in_flight": int(in_flight) if in_flight is not None else None,
        # 0 until the first accepted tag since the ingest API started.
        "newest_tag_time_ms": int(newest) if newest else None,
    }


def bucket_lag_s(newest_tag_time_ms: int | None, newest_bucket_ms: int | None) -> float | None:
    """Event-time seconds between the newest tag and the end of the newest bucket (>= 0)."""
    if newest_tag_time_ms is None or newest_bucket_ms is None:
        return None
    return max(0.0, (newest_tag_time_ms - (newest_bucket_ms + BUCKET_MS)) / 1000)


def profile_lag_s(lag_records: int | None, accepted_per_s: float | None) -> float | None:
    """How long the job needs for the tags it has not read yet, at the recent accepted rate."""
    if lag_records is None:
        return None
    if lag_records == 0:
        return 0.0
    if not accepted_per_s:
        return None
    return round(lag_records / accepted_per_s, 3)


class Pipeline:
    """Gathers the parts of GET /pipeline; `sample()` answers the cached JSON document.

    `newest_bucket` is where the cube's newest bucket comes from (None: unknown,
    so `newest_bucket_ms` and `bucket_lag_s` are null)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        ingest_metrics_url: str,
        flink_rest_url: str,
        newest_bucket: NewestBucket | None = None,
        *,
        timeout_s: float = 1.0,
        cache_s: float = 1.0,
        ingest_headers: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ingest_url = ingest_metrics_url
        self._flink_url = flink_rest_url.rstrip("/")
        self._newest_bucket = newest_bucket
        self._timeout = httpx.Timeout(timeout_s)
        self._cache_s = cache_s
        self._ingest_headers = ingest_headers or {}
        self._clock = clock
        self._monotonic = monotonic
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._lag_metric: dict[str, str] = {}  # source vertex id -> its metric id
        # (monotonic s, accepted tags) samples for the recent accepted rate.
        self._accepted: deque[tuple[float, int]] = deque()

    async def sample(self) -> dict[str, Any]:
        """The answer, at most `cache_s` old; concurrent callers share one scrape."""
        async with self._lock:
            now = self._monotonic()
            if self._cached is not None and now - self._cached[0] < self._cache_s:
                return self._cached[1]
            answer = await self._gather()
            self._cached = (self._monotonic(), answer)
            return answer

    async def _gather(self) -> dict[str, Any]:
        ingest, job, newest_bucket = await asyncio.gather(self.ingest(), self.job(), self._bucket())
        newest_tag = ingest["newest_tag_time_ms"] if ingest else None
        lag = job["kafka_lag_records"] if job else None
        return {
            "sampled_at_ms": int(self._clock() * 1000),
            "ingest": ingest,
            "job": job,
            "freshness": {
                "newest_bucket_ms": newest_bucket,
                "bucket_lag_s": bucket_lag_s(newest_tag, newest_bucket),
                "profile_lag_s": profile_lag_s(lag, self._accepted_rate()),
            },
        }

    # --- ingest --------------------------------------------------------------------
    async def ingest(self) -> dict[str, Any] | None:
        if not self._ingest_url:
            return None
        try:
            response = await self._client.get(self._ingest_url, headers=self._ingest_headers, timeout=self._timeout)
            response.raise_for_status()
            part = ingest_part(parse_prometheus(response.text))
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("ingest metrics not available from %s: %r", self._ingest_url, exc)
            return None
        self._remember_accepted(part["tags_total"].get("204", 0))
        return part

    def _remember_accepted(self, accepted: int) -> None:
        now = self._monotonic()
        if self._accepted and accepted < self._accepted[-1][1]:
            self._accepted.clear()  # the ingest API restarted: its counter began again
        self._accepted.append((now, accepted))
        while len(self._accepted) > 2 and now - self._accepted[1][0] >= RATE_WINDOW_S:
            self._accepted.popleft()

    def _accepted_rate(self) -> float | None:
        """Accepted tags/s over the last RATE_WINDOW_S (at least 1 s of samples)."""
        if len(self._accepted) < 2:
            return None
        (t0, n0), (t1, n1) = self._accepted[0], self._accepted[-1]
        return (n1 - n0) / (t1 - t0) if t1 - t0 >= 1.0 else None

    # --- the stream job ----------------------------------------------------------------
    async def _rest(self, path: str) -> Any:
        response = await self._client.get(f"{self._flink_url}{path}", timeout=self._timeout)
        response.raise_for_status()
        return response.json()

    async def job(self) -> dict[str, Any] | None:
        if not self._flink_url:
            return None
        try:
            jobs = (await self._rest("/jobs/overview"))["jobs"]
            chosen = pick_job(jobs)
            if chosen is None:
                return None
            jid = chosen["jid"]
            checkpoints, restarts, lag = await asyncio.gather(
                self._rest(f"/jobs/{jid}/checkpoints"),
                self._rest(f"/jobs/{jid}/metrics?get=numRestarts"),
                self.kafka_lag(jid),
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.debug("Flink REST API not available at %s: %r", self._flink_url, exc)
            return None
        return job_part(chosen, checkpoints, restarts, lag, self._clock())

    async def kafka_lag(self, jid: str) -> int | None:
        """The Kafka source's records not yet read, summed over its subtasks (None: not reported)."""
        try:
            vertices = (await self._rest(f"/jobs/{jid}")).get("vertices", [])
            lags = await asyncio.gather(*(self._vertex_lag(jid, v["id"]) for v in vertices
                                          if str(v.get("name", "")).startswith("Source")))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.debug("no Kafka lag for job %s: %r", jid, exc)
            return None
        known = [lag for lag in lags if lag is not None]
        return sum(known) if known else None

    async def _vertex_lag(self, jid: str, vid: str) -> int | None:
        base = f"/jobs/{jid}/vertices/{vid}/subtasks/metrics"
        metric = self._lag_metric.get(vid)
        if metric is None:
            # Operator metrics are named after the operator ("Source__user_tags.pendingRecords").
            names = [m["id"] for m in await self._rest(base)]
            metric = next((n for n in names if n == LAG_METRIC or n.endswith(f".{LAG_METRIC}")), None)
            if metric is None:
                return None
            self._lag_metric[vid] = metric
        found = await self._rest(f"{base}?get={metric}&agg=sum")
        if not found:
            self._lag_metric.pop(vid, None)  # vertex ids change with a new job
            return None
        return int(float(found[0]["sum"]))

    async def _bucket(self) -> int | None:
        if self._newest_bucket is None:
            return None
        try:
            return await asyncio.wait_for(self._newest_bucket(), self._timeout.read)
        except Exception as exc:  # freshness is best effort: null, never an error
            log.debug("newest bucket not available: %r", exc)
            return None


def cube_newest_bucket(reader: CassandraReader, clock: Callable[[], float] = time.time) -> NewestBucket:
    """The newest bucket of either action in the cube (the dashboard's CubeCatalog)."""
    async def newest() -> int | None:
        catalog = reader.catalog
        if catalog is None:  # Cassandra not reachable yet
            return None
        now_ms = int(clock() * 1000)
        found = [await catalog.newest_bucket(action, now_ms) for action in ("VIEW", "BUY")]
        return max((b for b in found if b is not None), default=None)

    return newest


ALIVE_STATES = ("RUNNING", "RESTARTING", "CREATED", "INITIALIZING", "RECONCILING", "FAILING", "CANCELLING")


def pick_job(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The job to report: the newest one that is not finished, else the newest one."""
    if not jobs:
        return None
    alive = [j for j in jobs if j.get("state") in ALIVE_STATES]
    return max(alive or jobs, key=lambda j: j.get("start-time", 0))


def job_part(job: dict[str, Any], checkpoints: dict[str, Any], restarts: list[dict[str, Any]],
             lag: int | None, now_s: float) -> dict[str, Any]:
    """The `job` part of the answer from the Flink REST API's answers."""
    counts = checkpoints.get("counts", {})
    completed = (checkpoints.get("latest") or {}).get("completed") or {}
    acked_ms = completed.get("latest_ack_timestamp") or completed.get("trigger_timestamp")
    restart_values = [float(m["value"]) for m in restarts if m.get("id") == "numRestarts"]
    return {
        "name": job.get("name"),
        "state": job.get("state"),
        "restarts": int(restart_values[0]) if restart_values else None,
        "checkpoints_completed": counts.get("completed"),
        "checkpoints_failed": counts.get("failed"),
        "last_checkpoint_age_s": round(max(0.0, now_s - acked_ms / 1000), 1) if acked_ms else None,
        "kafka_lag_records": lag,
    }


@asynccontextmanager
async def pipeline_lifespan(
    app: FastAPI,
    ingest_metrics_url: str,
    flink_rest_url: str,
    newest_bucket: NewestBucket | None = None,
    *,
    timeout_s: float = 1.0,
    cache_s: float = 1.0,
    ingest_headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Pipeline]:
    """Open the HTTP client of GET /pipeline for the app's life (`app.state.pipeline`)."""
    async with httpx.AsyncClient(transport=transport, timeout=timeout_s) as client:
        pipeline = Pipeline(client, ingest_metrics_url, flink_rest_url, newest_bucket,
                            timeout_s=timeout_s, cache_s=cache_s, ingest_headers=ingest_headers)
        app.state.pipeline = pipeline
        yield pipeline


_PIPELINE_SCHEMA = {
    "type": "object",
    "required": ["sampled_at_ms", "ingest", "job", "freshness"],
    "properties": {
        "sampled_at_ms": {"type": "integer"},
        "ingest": {"type": ["object", "null"]},
        "job": {"type": ["object", "null"]},
        "freshness": {"type": "object"},
    },
}


@router.get("/pipeline", summary="Pipeline health: ingest counters, the stream job, freshness",
            responses={200: {"description": "Each part is null when its component does not answer",
                             "content": {"application/json": {"schema": _PIPELINE_SCHEMA}}}})
async def pipeline(request: Request) -> Response:
    sampler: Pipeline = request.app.state.pipeline
    return Response(orjson.dumps(await sampler.sample()), media_type="application/json")


def open_pipeline(app: FastAPI, settings: QuerySettings,
                  newest_bucket: NewestBucket | None = None) -> AbstractAsyncContextManager[Pipeline]:
    """`pipeline_lifespan` configured by the query API's settings (QUERY_INGEST_METRICS_URL, ...)."""
    token = settings.query_ingest_metrics_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token and token.get_secret_value() else None
    return pipeline_lifespan(app, settings.query_ingest_metrics_url, settings.query_flink_rest_url, newest_bucket,
                             timeout_s=settings.query_pipeline_timeout_s, cache_s=settings.query_pipeline_cache_s,
                             ingest_headers=headers)
