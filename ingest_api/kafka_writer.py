"""Writes tags to Kafka and reports, per tag, whether the broker acknowledged it.

confluent-kafka (librdkafka) is used with acks=all and idempotence, so a
retried batch is never duplicated in the log. `produce()` only queues; a
background thread serves delivery reports and hands them to the event loop in
batches (one wake-up per poll, not one per tag), which resolves the asyncio
future of each tag. The request handler awaits that future: 204 only after
the acknowledgement, 503 when the broker could not take the tag in time.

librdkafka keeps retrying a queued tag for INGEST_DELIVERY_TIMEOUT_MS, far
beyond the answer deadline, so the idempotent producer never times out a
message in flight under mere overload (that starts a new producer epoch whose
re-sends can duplicate acknowledged tags). A tag whose outcome is unknown at
the deadline is answered 503 and may still land later (docs/DESIGN.md: a 503
means "not acknowledged"); at most INGEST_MAX_IN_FLIGHT tags can be in that
state, beyond it a tag is refused with 503 before it is queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer

from ingest_api.config import IngestSettings

log = logging.getLogger(__name__)


class LogUnavailable(Exception):
    """Kafka did not acknowledge the tag within the deadline (answer 503)."""


class KafkaWriter:
    def __init__(self, settings: IngestSettings):
        self._settings = settings
        self._topic = settings.kafka_topic
        self._producer: Producer | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready_cache: tuple[float, bool] = (0.0, False)
        self._producer_id_assigned = False

    # lifecycle -----------------------------------------------------------
    def start(self) -> None:
        s = self._settings
        self._producer = Producer(
            {
                "bootstrap.servers": s.kafka_bootstrap_servers,
                "client.id": "ingest-api",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": s.ingest_linger_ms,
                "message.timeout.ms": s.ingest_delivery_timeout_ms,
                "queue.buffering.max.messages": s.ingest_max_in_flight,
                "socket.keepalive.enable": True,
                "reconnect.backoff.max.ms": 1000,
                "error_cb": self._on_client_error,
                "logger": logging.getLogger("ingest_api.librdkafka"),
                # Statistics tell whether the idempotent producer has its
                # producer id yet; until then a tag cannot be acknowledged.
                "statistics.interval.ms": 500,
                "stats_cb": self._on_statistics,
            }
        )
        self._stopping.clear()
        # (event loop, the tag's future, error, message, cookie) per delivery report of the current poll.
        self._reports: list[tuple[asyncio.AbstractEventLoop, asyncio.Future, KafkaError | None, object, str]] = []
        self._poller = threading.Thread(target=self._serve_delivery_reports, name="kafka-delivery", daemon=True)
        self._poller.start()
        log.info("kafka writer started topic=%s bootstrap=%s", self._topic, s.kafka_bootstrap_servers)

    def warm_up(self, timeout_s: float = 5.0) -> None:
        """Connect, learn the topic's leaders and let the idempotent producer get
        its id now, so the first tag does not spend its deadline on that."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.is_ready(1.0, cached=False):
                return
            time.sleep(0.1)
        log.warning("kafka not ready at start-up topic=%s; requests get 503 until it is", self._topic)

    def close(self, flush_timeout_s: float = 5.0) -> None:
        if self._producer is None:
            return
        # Stop the poller first: from here on only this thread runs callbacks.
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
        remaining = self._producer.flush(flush_timeout_s)
        self._hand_over_reports()
        if remaining:
            log.error("kafka writer closed with %d tags not acknowledged topic=%s", remaining, self._topic)
        self._producer = None

    def _serve_delivery_reports(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stopping.is_set():
            producer.poll(0.05)  # fills self._reports through the on_delivery callbacks
            self._hand_over_reports()

    def _hand_over_reports(self) -> None:
        """Pass the reports of one poll to their event loops, one call per loop."""
        reports, self._reports = self._reports, []
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for loop, *report in reports:
            by_loop.setdefault(loop, []).append(report)
        for loop, batch in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, batch, self._topic)
            except RuntimeError:  # that event loop is closed (shutdown)
                log.warning("%d delivery reports for a closed event loop topic=%s", len(batch), self._topic)

    def _on_statistics(self, stats_json: str) -> None:
        assigned = orjson.loads(stats_json).get("eos", {}).get("idemp_state") == "Assigned"
        if assigned != self._producer_id_assigned:
            log.info("idempotent producer id %s topic=%s", "assigned" if assigned else "lost", self._topic)
        self._producer_id_assigned = assigned

    def _on_client_error(self, err: KafkaError) -> None:
        if err.fatal():
            # Idempotence state is broken beyond repair for this client:
            # readiness goes red so the orchestrator restarts the process.
            log.critical("fatal kafka producer error: %s", err)
            self._ready_cache = (float("inf"), False)
        else:
            log.warning("kafka client error: %s", err)

    # writing ---------------------------------------------------------------
    async def write(self, key: bytes, value: bytes, cookie: str) -> None:
        """Return once the broker acknowledged the record; raise LogUnavailable otherwise."""
        producer = self._producer
        if producer is None:
            raise LogUnavailable("writer not started")
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg) -> None:  # runs on the poller thread, inside poll()
            self._reports.append((loop, acknowledged, err, msg, cookie))

        try:
            producer.produce(self._topic, value=value, key=key, on_delivery=on_delivery)
        except BufferError:
            raise LogUnavailable("too many tags awaiting acknowledgement") from None
        except KafkaException as exc:
            raise LogUnavailable(str(exc)) from None
        grace_s = 0.02  # the delivery report's trip back to the event loop
        try:
            await asyncio.wait_for(acknowledged, self._settings.ingest_ack_timeout_ms / 1000 + grace_s)
        except TimeoutError:
            log.warning("no acknowledgement in time topic=%s cookie=%r", self._topic, cookie)
            raise LogUnavailable("acknowledgement deadline passed") from None

    # readiness -------------------------------------------------------------
    def is_ready(self, timeout_s: float = 1.0, cached: bool = True) -> bool:
        """True when the producer has its id and every partition of the topic has a leader."""
        checked_at, ready = self._ready_cache
        now = time.monotonic()
        if checked_at == float("inf") or (cached and now - checked_at < 1.0):
            return ready
        ready = False
        if self._producer is not None and self._producer_id_assigned:
            try:
                meta = self._producer.list_topics(self._topic, timeout=timeout_s)
                topic = meta.topics.get(self._topic)
                ready = (
                    topic is not None
                    and topic.error is None
                    and bool(topic.partitions)
                    and all(p.leader >= 0 for p in topic.partitions.values())
                )
            except KafkaException as exc:
                log.info("kafka not ready topic=%s: %s", self._topic, exc)
        self._ready_cache = (now, ready)
        return ready


def _settle_all(reports: list, topic: str) -> None:
    """On the event loop: resolve each tag's future with its delivery report."""
    for fut, err, msg, cookie in reports:
        if fut.done():  # the request already gave up and answered 503
            if err is None:
                log.warning(
                    "tag acknowledged after its 503 topic=%s partition=%s offset=%s cookie=%r",
                    msg.topic(), msg.partition(), msg.offset(), cookie,
                )
            else:
                log.info("tag answered 503 was not delivered either topic=%s cookie=%r: %s", topic, cookie, err)
        elif err is None:
            fut.set_result(None)
        else:
            log.warning("tag not acknowledged topic=%s cookie=%r: %s", topic, cookie, err)
            fut.set_exception(LogUnavailable(str(err)))
