"""Request metrics of the query API: a counter by endpoint and status, and a
latency histogram by endpoint, at GET /metrics.

`endpoint` is the route's template (`/user_profiles/{cookie:cookie}`), never
the raw path, so cookies do not multiply the series; a path no route matches
is `other`. Pure ASGI (no BaseHTTPMiddleware, which costs a task per request),
installed outermost so that 401 and 431 answers count too.
"""

from __future__ import annotations

from time import perf_counter

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds: profiles answer in ms, aggregates may take up to 60 s (docs/API.md).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0, 60.0)
UNMATCHED = "other"


class QueryMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter("allezon_query_requests", "Query API answers by endpoint (route template) and status",
                                ["endpoint", "status"], registry=registry)
        self.seconds = Histogram("allezon_query_request_seconds", "Query API time to answer, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=registry)


_metrics: QueryMetrics | None = None


def query_metrics() -> QueryMetrics:
    """The process's query metrics, in the default registry (made on first use, not at import)."""
    global _metrics
    if _metrics is None:
        _metrics = QueryMetrics()
    return _metrics


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: QueryMetrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # unless a response starts

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router put the matched route into the scope.
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or UNMATCHED
            self._metrics.requests.labels(endpoint, str(status)).inc()
            self._metrics.seconds.labels(endpoint).observe(perf_counter() - started)


def install_request_metrics(app: FastAPI) -> None:
    """Count every request; call after install_common so this is outermost."""
    app.add_middleware(RequestMetrics, metrics=query_metrics())
