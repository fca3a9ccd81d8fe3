"""The query API application factory (served by `python -m query_api`)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from common.logging import configure_logging
from common.problems import problem_response
from common.service import frozen_heap, install_common
from query_api.cassandra_session import CassandraReader
from query_api.config import QuerySettings
from query_api.dashboard import router as dashboard_router
from query_api.metrics import install_request_metrics
from query_api.pipeline import cube_newest_bucket, open_pipeline
from query_api.pipeline import router as pipeline_router
from query_api.routes import router
from query_api.store import CASSANDRA_UNAVAILABLE

log = logging.getLogger(__name__)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """A read Cassandra could not serve in time: the client may retry, so 503
    with Retry-After, never a 500."""
    log.warning("cassandra could not answer %s %s: %r", request.method, request.url.path, exc)
    return problem_response(503, "The database could not answer in time; retry shortly.",
                            headers={"Retry-After": "1"}, instance=request.url.path)


def create_app(settings: QuerySettings | None = None) -> FastAPI:
    settings = settings or QuerySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        reader = CassandraReader(settings)
        await reader.start()
        app.state.reader = reader
        try:
            async with open_pipeline(app, settings, cube_newest_bucket(reader)):
                with frozen_heap():
                    yield
        finally:
            await reader.close()

    app = FastAPI(title="Allezon query API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    for exc_type in CASSANDRA_UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)
    app.include_router(router)
    app.include_router(dashboard_router)
    app.include_router(pipeline_router)
    install_common(app, settings, settings.query_auth_token)
    install_request_metrics(app)  # outermost: 401 and 431 answers count too
    return app
