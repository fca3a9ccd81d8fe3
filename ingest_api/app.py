"""The ingest API application factory (served by `python -m ingest_api`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from common.logging import configure_logging
from common.service import frozen_heap, install_common
from ingest_api.config import IngestSettings
from ingest_api.fast_path import UserTagsFastPath, is_fast_path
from ingest_api.kafka_writer import KafkaWriter
from ingest_api.metrics import IngestMetrics
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
        configure_logging(settings.log_level, settings.log_format)
        writer = KafkaWriter(settings)
        writer.start()
        await run_in_threadpool(writer.warm_up)
        app.state.writer = writer
        if app.state.metrics is not None:
            app.state.metrics.watch_in_flight(lambda: writer.in_flight)
        try:
            with frozen_heap():
                yield
        finally:
            writer.stop_polling()
            await run_in_threadpool(writer.close)

    app = IngestApp(title="Allezon ingest API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = IngestMetrics() if settings.ingest_metrics_enabled else None
    app.include_router(router)
    install_common(app, settings, settings.ingest_auth_token)
    app.fast_path = UserTagsFastPath(app, settings, settings.ingest_auth_token)
    return app
