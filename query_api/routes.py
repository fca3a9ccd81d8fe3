"""Health checks of the query API (profiles and aggregates arrive with issue [2 of 4])."""

from fastapi import APIRouter
from starlette.responses import Response

from common.problems import problem_openapi, problem_response
from query_api.deps import ReaderDep

router = APIRouter()


@router.get("/health/live", summary="Liveness: the process answers")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: Cassandra session open and keyspace present",
            responses=problem_openapi(503))
async def ready(reader: ReaderDep) -> Response:
    if reader.is_ready():
        return Response(b'{"status":"ready"}', media_type="application/json")
    return problem_response(503, "Cassandra is not reachable or the keyspace is missing.", headers={"Retry-After": "1"})
