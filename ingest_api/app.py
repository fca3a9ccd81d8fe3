"""The ingest API application factory (served by `python -m ingest_api`)."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from common.auth import install_bearer_auth
from common.http_limits import install_header_limits
from common.logging import configure_logging
from common.problems import install_problem_handlers
from ingest_api.config import IngestSettings
from ingest_api.fast_path import UserTagsFastPath, is_fast_path
from ingest_api.kafka_writer import KafkaWriter
from ingest_api.routes import router


class IngestApp(FastAPI):
    """FastAPI, except that POST /user_tags goes straight to its fast path."""

    fast_path: UserTagsFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None and is_fast_path(scope):
            await self.fast_path(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        writer = KafkaWriter(settings)
        writer.start()
        await run_in_threadpool(writer.warm_up)
        app.state.writer = writer
        # Everything that exists now (modules, FastAPI's routes and models,
        # pydantic validators: ~60,000 objects) lives as long as the process.
        # Frozen, the cyclic collector stops re-scanning it in every full
        # collection; unfrozen, those collections cost ~10 % of the CPU at
        # 1,000 tags/s and paused the loop for tens of ms (docs/BENCHMARKS.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            writer.stop_polling()
            await run_in_threadpool(writer.close)

    app = IngestApp(title="Allezon ingest API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(router)
    # Added last = outermost: header limits are checked before the token.
    install_bearer_auth(app, settings.ingest_auth_token)
    install_header_limits(app, settings.http_max_headers, settings.http_max_header_bytes)
    app.fast_path = UserTagsFastPath(app, settings, settings.ingest_auth_token)
    return app
