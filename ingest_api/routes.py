"""POST /user_tags (SPEC section 1) and the health checks."""

import logging
from time import perf_counter

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from common.body import ClientGone, read_body_capped
from common.problems import Problem, problem_openapi, problem_response
from common.tag import TagRejected, parse_user_tag, user_tag_json_schema
from ingest_api.config import IngestSettings
from ingest_api.deps import SettingsDep, WriterDep
from ingest_api.kafka_writer import KafkaWriter, LogUnavailable
from ingest_api.metrics import IngestMetrics

log = logging.getLogger(__name__)
router = APIRouter()

_TAG_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": user_tag_json_schema()}},
    }
}


@router.post(
    "/user_tags",
    status_code=204,
    response_class=Response,
    summary="Add one user tag",
    openapi_extra=_TAG_BODY,
    responses={204: {"description": "Acknowledged by all in-sync Kafka replicas"}, **problem_openapi(400, 413, 503)},
)
async def add_user_tag(request: Request, settings: SettingsDep, writer: WriterDep) -> Response:
    # Served by ingest_api/fast_path.py ahead of FastAPI (same guards, same
    # answers, same metrics); this route describes the operation and is the fallback.
    metrics: IngestMetrics | None = request.app.state.metrics
    started = perf_counter()
    try:
        body = await read_body_capped(request.scope, request.receive, settings.ingest_max_body_bytes)
        time_ms = await accept_tag(body, settings, writer)
    except Problem as exc:
        if metrics is not None:
            metrics.refused(started, exc.status)
        raise
    except ClientGone:
        raise
    except Exception:
        if metrics is not None:
            metrics.refused(started, 500)
        raise
    if metrics is not None:
        metrics.accepted(started, time_ms)
    return Response(status_code=204)


async def accept_tag(body: bytes, settings: IngestSettings, writer: KafkaWriter) -> int:
    """Validate one tag and return its event time (ms) once Kafka acknowledged
    it; Problem 400 or 503 otherwise."""
    try:
        tag = parse_user_tag(body)
    except TagRejected as rejected:
        raise Problem(400, rejected.detail, errors=rejected.errors) from None
    key, value = tag.kafka_record()
    try:
        await writer.write(key, value, tag.cookie)
    except LogUnavailable as exc:
        raise Problem(
            503,
            f"The event log could not take the tag in time ({exc}); retry later.",
            headers={"Retry-After": str(settings.ingest_retry_after_s)},
        ) from None
    return tag.time_ms


@router.get("/health/ready", summary="Readiness: Kafka reachable and the topic has leaders",
            responses=problem_openapi(503))
async def ready(writer: WriterDep) -> Response:
    if await run_in_threadpool(writer.is_ready):
        return Response(b'{"status":"ready"}', media_type="application/json")
    return problem_response(503, "Kafka is not reachable or the topic has no leader.", headers={"Retry-After": "1"})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    recorded: IngestMetrics | None = request.app.state.metrics
    body = generate_latest(recorded.registry) if recorded is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
