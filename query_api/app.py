"""The query API application factory: `uvicorn query_api.app:create_app --factory`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from common.logging import configure_logging
from common.problems import install_problem_handlers
from query_api.cassandra_session import CassandraReader
from query_api.config import QuerySettings
from query_api.routes import router


def create_app(settings: QuerySettings | None = None) -> FastAPI:
    settings = settings or QuerySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        reader = CassandraReader(settings)
        await reader.start()
        app.state.reader = reader
        try:
            yield
        finally:
            await reader.close()

    app = FastAPI(title="Allezon query API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(router)
    return app
