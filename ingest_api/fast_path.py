"""POST /user_tags served as a plain ASGI handler, ahead of FastAPI's stack.

At 1,000 tags/s the FastAPI layers every request crossed (error, telemetry,
exception and exit-stack middleware, routing, dependency resolution, a
`Request` object) cost about as much CPU as the tag's own work (py-spy,
docs/BENCHMARKS.md). This handler does what the `/user_tags` route does,
with the same guards in the same order (header limits, then the bearer
token when one is set) and the same answers: 204 only after Kafka's
acknowledgement, problem documents for 400, 413 and 503, a logged 500 problem
for anything unexpected, and the same metrics (ingest_api/metrics.py). Every
other request, and the OpenAPI description of this one, stay with FastAPI.
"""

from __future__ import annotations

import logging
from time import perf_counter

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from common.auth import BearerAuth
from common.body import ClientGone, read_body_capped
from common.http_limits import HeaderLimits
from common.problems import Problem, problem_response
from ingest_api.config import IngestSettings
from ingest_api.kafka_writer import KafkaWriter
from ingest_api.metrics import IngestMetrics
from ingest_api.routes import accept_tag

log = logging.getLogger(__name__)

PATH = "/user_tags"
_NO_CONTENT = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY_BODY = {"type": "http.response.body", "body": b"", "more_body": False}


def is_fast_path(scope: Scope) -> bool:
    return bool(scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST")


class UserTagsFastPath:
    def __init__(self, app: FastAPI, settings: IngestSettings, token: SecretStr | None) -> None:
        self._app = app  # the FastAPI app: its state holds the writer
        self._settings = settings
        self._limit = settings.ingest_max_body_bytes
        # Made with the app, before this handler; None: INGEST_METRICS_ENABLED=false.
        self._metrics: IngestMetrics | None = app.state.metrics
        guarded: ASGIApp = self._handle
        if token is not None and token.get_secret_value():
            guarded = BearerAuth(guarded, token.get_secret_value())
        self._guarded = HeaderLimits(guarded, settings.http_max_headers, settings.http_max_header_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guarded(scope, receive, send)

    def _writer(self) -> KafkaWriter:
        writer: KafkaWriter = self._app.state.writer  # made by the app's lifespan
        return writer

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        try:
            body = await read_body_capped(scope, receive, self._limit)
            time_ms = await accept_tag(body, self._settings, self._writer())
        except Problem as exc:
            status = exc.status
            response = problem_response(status, exc.detail, errors=exc.errors, headers=exc.headers,
                                        type_=exc.type, instance=URL(scope=scope).path)
        except ClientGone:
            return
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status = 500
            response = problem_response(500, "Unexpected server error; it has been logged.",
                                        instance=URL(scope=scope).path)
        else:
            await send(_NO_CONTENT)
            await send(_EMPTY_BODY)
            if self._metrics is not None:
                self._metrics.accepted(started, time_ms)
            return
        await response(scope, receive, send)
        if self._metrics is not None:
            self._metrics.refused(started, status)
