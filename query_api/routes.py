"""The query endpoints (SPEC sections 2 and 3) and the health checks."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.convertors import register_url_convertor
from starlette.responses import Response

from common.body import read_body_capped
from common.cube import BUCKET_MS, DIMENSIONS, read_of
from common.limits import MAX_AGGREGATE_RANGE_MS, MAX_DIMENSIONS_RANGE_MS, MAX_EXPECTED_BODY_BYTES, PROFILE_CAP
from common.problems import Problem, problem_openapi, problem_response
from common.tag import user_tag_json_schema
from common.timestamps import TimeRange, TimeRangeError, format_bucket, parse_time_range
from query_api.debug import compare_with_expected
from query_api.deps import ReaderDep
from query_api.params import CookieConvertor, check_cookie, check_filter, check_limit_digits
from query_api.store import TOP_VALUES, ProfileStore

log = logging.getLogger(__name__)
router = APIRouter()

_JSON = "application/json"
# The profile route's template (its cookie is the rest of the path, params.CookieConvertor).
PROFILE_PATH = "/user_profiles/{cookie:cookie}"

_RANGE_DOC = "`<from>_<to>`, UTC without suffix, millisecond or second precision; start inclusive, end exclusive."


def _single(request: Request, name: str, *, required: bool) -> str | None:
    """A query parameter that must appear at most once."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise Problem(400, f"Query parameter {name!r} is repeated.", errors=[{"field": name, "message": "repeated"}])
    if not values:
        if required:
            raise Problem(400, f"Query parameter {name!r} is required.", errors=[{"field": name, "message": "missing"}])
        return None
    return values[0]


def _time_range(request: Request) -> TimeRange:
    text = _single(request, "time_range", required=True)
    assert text is not None  # required=True raised otherwise
    try:
        return parse_time_range(text)
    except TimeRangeError as exc:
        raise Problem(400, f"Invalid time_range: {exc}.",
                      errors=[{"field": "time_range", "message": str(exc)}]) from None


async def _debug_body(request: Request) -> bytes:
    if request.method != "POST":
        return b""
    return await read_body_capped(request.scope, request.receive, MAX_EXPECTED_BODY_BYTES)


async def user_profile(
    cookie: str,
    request: Request,
    reader: ReaderDep,
    time_range: Annotated[str, Query(description=_RANGE_DOC)],
    limit: Annotated[int, Query(ge=0, le=PROFILE_CAP)] = PROFILE_CAP,
) -> Response:
    check_cookie(request, cookie)
    tr = _time_range(request)
    check_limit_digits(_single(request, "limit", required=False))
    store = reader.profiles
    if store is None:
        raise Problem(503, "Cassandra is not reachable yet.", headers={"Retry-After": "1"})
    answer = await profile_answer(store, cookie, tr, limit)
    compare_with_expected("user_profiles", await _debug_body(request), answer, f"cookie={cookie!r}")
    return Response(answer, media_type=_JSON)


async def profile_answer(store: ProfileStore, cookie: str, tr: TimeRange, limit: int) -> bytes:
    """The profile's JSON: the newest `limit` tags per action in the range (the
    route's and query_api/fast_path.py's answer)."""
    views, buys = await asyncio.gather(
        store.tags(cookie, "VIEW", tr.start_ms, tr.end_ms, limit),
        store.tags(cookie, "BUY", tr.start_ms, tr.end_ms, limit),
    )
    # Stored tags are already canonical JSON: splice them, don't re-encode.
    return b"".join((
        b'{"cookie":', orjson.dumps(cookie),
        b',"views":[', ",".join(views).encode(), b'],"buys":[', ",".join(buys).encode(), b"]}",
    ))


def unavailable_response(method: str, path: str, exc: Exception) -> Response:
    """A read Cassandra could not serve in time: the client may retry, so 503
    with Retry-After, never a 500."""
    log.warning("cassandra could not answer %s %s: %r", method, path, exc)
    return problem_response(503, "The database could not answer in time; retry shortly.",
                            headers={"Retry-After": "1"}, instance=path)


async def aggregates(
    request: Request,
    reader: ReaderDep,
    time_range: Annotated[str, Query(description=_RANGE_DOC + " Whole minutes, at most 24 h.")],
    action: Literal["VIEW", "BUY"],
    aggregates: Annotated[list[Literal["COUNT", "SUM_PRICE"]], Query(min_length=1)],
    origin: str | None = None,
    brand_id: str | None = None,
    category_id: str | None = None,
) -> Response:
    tr = _time_range(request)
    for name in ("action", "origin", "brand_id", "category_id"):
        _single(request, name, required=False)
    for name, value in (("origin", origin), ("brand_id", brand_id), ("category_id", category_id)):
        check_filter(request, name, value)
    _whole_minutes(tr, MAX_AGGREGATE_RANGE_MS, "24 hours")
    if len(set(aggregates)) != len(aggregates):
        raise Problem(400, "Each aggregate may be listed once.",
                      errors=[{"field": "aggregates", "message": "repeated value"}])
    store = reader.aggregates
    if store is None:
        raise Problem(503, "Cassandra is not reachable yet.", headers={"Retry-After": "1"})

    found = await store.buckets(action, read_of(origin, brand_id, category_id), tr.start_ms, tr.end_ms)

    named = (("origin", origin), ("brand_id", brand_id), ("category_id", category_id))
    filters = [(name, value) for name, value in named
               if value is not None]
    columns = ["1m_bucket", "action", *(name for name, _ in filters), *(a.lower() for a in aggregates)]
    fixed = [action, *(value for _, value in filters)]
    pick = [0 if a == "COUNT" else 1 for a in aggregates]
    rows = []
    for bucket_ms in range(tr.start_ms, tr.end_ms, BUCKET_MS):
        figures = found.get(bucket_ms, (0, 0))
        rows.append([format_bucket(bucket_ms), *fixed, *(str(figures[i]) for i in pick)])
    answer = orjson.dumps({"columns": columns, "rows": rows})
    compare_with_expected("aggregates", await _debug_body(request), answer, f"query={request.url.query}")
    return Response(answer, media_type=_JSON)


def _whole_minutes(tr: TimeRange, longest_ms: int, longest: str) -> None:
    if tr.start_ms % BUCKET_MS or tr.end_ms % BUCKET_MS:
        raise Problem(400, "time_range must start and end on whole minutes.",
                      errors=[{"field": "time_range", "message": "not aligned to a minute"}])
    if tr.duration_ms > longest_ms:
        raise Problem(400, f"time_range may span at most {longest}.",
                      errors=[{"field": "time_range", "message": f"longer than {longest}"}])


async def newest_bucket(request: Request, reader: ReaderDep, action: Literal["VIEW", "BUY"]) -> Response:
    _single(request, "action", required=True)
    catalog = reader.catalog
    if catalog is None:
        raise Problem(503, "Cassandra is not reachable yet.", headers={"Retry-After": "1"})
    newest = await catalog.newest_bucket(action, int(time.time() * 1000))
    label = None if newest is None else format_bucket(newest)
    return Response(orjson.dumps({"action": action, "newest_bucket": label}), media_type=_JSON)


async def dimensions(
    request: Request,
    reader: ReaderDep,
    time_range: Annotated[str, Query(description=_RANGE_DOC + " Whole minutes, at most 1 h.")],
    action: Literal["VIEW", "BUY"],
) -> Response:
    tr = _time_range(request)
    _single(request, "action", required=True)
    _whole_minutes(tr, MAX_DIMENSIONS_RANGE_MS, "1 hour")
    catalog = reader.catalog
    if catalog is None:
        raise Problem(503, "Cassandra is not reachable yet.", headers={"Retry-After": "1"})
    seen = await catalog.values_seen(action, tr.start_ms, tr.end_ms)
    answer = {"action": action,
              **{name: [{"value": value, "count": count} for value, count in values] for name, values in seen.items()}}
    return Response(orjson.dumps(answer), media_type=_JSON)


def _json_200(description: str, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {_JSON: {"schema": schema}}}}


_PROFILE_SCHEMA = {
    "type": "object",
    "required": ["cookie", "views", "buys"],
    "properties": {
        "cookie": {"type": "string"},
        "views": {"type": "array", "maxItems": PROFILE_CAP, "items": user_tag_json_schema()},
        "buys": {"type": "array", "maxItems": PROFILE_CAP, "items": user_tag_json_schema()},
    },
}
_AGGREGATES_SCHEMA = {
    "type": "object",
    "required": ["columns", "rows"],
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
    },
}
# 413 only for a POST debug body over 1 MiB. (401 and 431 are documented by
# the middlewares that answer them, common/auth.py and common/http_limits.py.)
_QUERY_PROBLEMS = {"GET": problem_openapi(400, 503), "POST": problem_openapi(400, 413, 503)}

# Registered before the route below is compiled (idempotent; the name is ours).
register_url_convertor("cookie", CookieConvertor())

# GET and POST answer alike; POST may carry the expected answer (debug mode).
for _method in ("GET", "POST"):
    router.add_api_route(
        PROFILE_PATH, user_profile, methods=[_method],
        operation_id=f"user_profile_{_method.lower()}",
        summary="A user's newest tags per action in a time range",
        responses={**_json_200("The profile", _PROFILE_SCHEMA), **_QUERY_PROBLEMS[_method]},
    )
    router.add_api_route(
        "/aggregates", aggregates, methods=[_method],
        operation_id=f"aggregates_{_method.lower()}",
        summary="Count and/or sum of price per 1-minute bucket",
        responses={**_json_200("One row per bucket", _AGGREGATES_SCHEMA), **_QUERY_PROBLEMS[_method]},
    )


_NEWEST_SCHEMA = {
    "type": "object",
    "required": ["action", "newest_bucket"],
    "properties": {"action": {"type": "string"}, "newest_bucket": {"type": ["string", "null"]}},
}
_VALUES_SCHEMA = {
    "type": "array",
    "maxItems": TOP_VALUES,
    "items": {"type": "object", "required": ["value", "count"],
              "properties": {"value": {"type": "string"}, "count": {"type": "integer"}}},
}
_DIMENSIONS_SCHEMA = {
    "type": "object",
    "required": ["action", *(name for name, _ in DIMENSIONS)],
    "properties": {"action": {"type": "string"}, **{name: _VALUES_SCHEMA for name, _ in DIMENSIONS}},
}
router.add_api_route(
    "/buckets/newest", newest_bucket, methods=["GET"], operation_id="newest_bucket",
    summary="The newest 1-minute bucket of an action in the cube (event time)",
    responses={**_json_200("The newest bucket, or null when the cube holds none", _NEWEST_SCHEMA),
               **problem_openapi(400, 503)},
)
router.add_api_route(
    "/dimensions", dimensions, methods=["GET"], operation_id="dimensions",
    summary="The filter values seen in a range, the most counted first",
    responses={**_json_200("Per dimension, its values and their tag counts", _DIMENSIONS_SCHEMA),
               **problem_openapi(400, 503)},
)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/health/ready", summary="Readiness: Cassandra session open, statements prepared",
            responses=problem_openapi(503))
async def ready(reader: ReaderDep) -> Response:
    if reader.is_ready():
        return Response(b'{"status":"ready"}', media_type=_JSON)
    return problem_response(503, "Cassandra is not reachable or the schema is missing.", headers={"Retry-After": "1"})
