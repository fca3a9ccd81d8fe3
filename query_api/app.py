"""The query API application factory (served by `python -m query_api`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

from common.logging import configure_logging
from common.service import frozen_heap, install_common
from query_api.cassandra_session import CassandraReader
from query_api.config import QuerySettings
from query_api.dashboard import router as dashboard_router
from query_api.fast_path import ProfileFastPath, plain_profile_query
from query_api.metrics import install_request_metrics
from query_api.pipeline import cube_newest_bucket, open_pipeline
from query_api.pipeline import router as pipeline_router
from query_api.routes import router, unavailable_response
from query_api.store import CASSANDRA_UNAVAILABLE


async def _unavailable(request: Request, exc: Exception) -> Response:
    return unavailable_response(request.method, request.url.path, exc)


class QueryApp(FastAPI):
    """FastAPI, except that a plainly valid GET /user_profiles/... goes straight to its fast path."""

    fast_path: ProfileFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None and (query := plain_profile_query(scope)) and self.fast_path.store():
            await self.fast_path(scope, receive, send, query)
        else:
            await super().__call__(scope, receive, send)


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

    app = QueryApp(title="Allezon query API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    for exc_type in CASSANDRA_UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)
    app.include_router(router)
    app.include_router(dashboard_router)
    app.include_router(pipeline_router)
    install_common(app, settings, settings.query_auth_token)
    install_request_metrics(app)  # outermost: 401 and 431 answers count too
    app.fast_path = ProfileFastPath(app, settings, settings.query_auth_token)
    return app
