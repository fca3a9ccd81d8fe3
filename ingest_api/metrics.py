"""The ingest API's Prometheus metrics (GET /metrics), kept cheap on the hot path.

POST /user_tags runs at 1,000+ tags/s on two cores, so a request pays for
exactly one counter increment (a label child resolved once, here), one
histogram observation and one comparison for the newest event time. The
in-flight gauge costs nothing per request: it reads the writer's own count
when scraped. Each app gets its own registry (tests build several apps in
one process), and INGEST_METRICS_ENABLED=false records nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: 1 ms .. 1 s. Few buckets, as each observation walks them.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# Pre-bound so that these series exist (at 0) before the first such answer.
KNOWN_STATUSES = (204, 400, 413, 500, 503)

TAGS_TOTAL = "allezon_ingest_tags_total"
IN_FLIGHT = "allezon_ingest_tags_in_flight"
NEWEST_TAG_TIME = "allezon_ingest_newest_tag_time_ms"
REQUEST_SECONDS = "allezon_ingest_request_seconds"


class IngestMetrics:
    """The ingest metrics of one app, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self._tags = Counter("allezon_ingest_tags", "POST /user_tags answers by HTTP status (204 = accepted)",
                             ["status"], registry=self.registry)
        self._by_status: dict[int, Counter] = {s: self._tags.labels(str(s)) for s in KNOWN_STATUSES}
        self._accepted_inc = self._by_status[204].inc
        self._latency = Histogram(REQUEST_SECONDS, "POST /user_tags time from the first body byte to the answer",
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._observe = self._latency.observe
        self._in_flight: Callable[[], float] = lambda: 0.0
        Gauge(IN_FLIGHT, "Tags produced to Kafka whose acknowledgement has not arrived yet",
              registry=self.registry).set_function(lambda: self._in_flight())
        self.newest_tag_time_ms = 0
        Gauge(NEWEST_TAG_TIME, "Largest event time (ms since the epoch) of an accepted tag; 0 before the first",
              registry=self.registry).set_function(lambda: self.newest_tag_time_ms)

    def watch_in_flight(self, count: Callable[[], float]) -> None:
        """Where the in-flight gauge reads its value (the writer, made in the lifespan)."""
        self._in_flight = count

    def accepted(self, started: float, time_ms: int) -> None:
        """A 204: count it, time it, and keep the newest event time."""
        self._accepted_inc()
        self._observe(perf_counter() - started)
        if time_ms > self.newest_tag_time_ms:
            self.newest_tag_time_ms = time_ms

    def refused(self, started: float, status: int) -> None:
        child = self._by_status.get(status)
        if child is None:  # a status seen for the first time: bind it once
            child = self._by_status[status] = self._tags.labels(str(status))
        child.inc()
        self._observe(perf_counter() - started)
