"""Writes tags to Kafka and reports, per tag, whether the broker acknowledged it.

confluent-kafka (librdkafka) is used with acks=all and idempotence, so a
retried batch is never duplicated in the log. `produce()` only queues; the
event loop itself serves the delivery reports: while tags await their
acknowledgement it calls `poll(0)` every INGEST_REPORT_POLL_MS (1 ms), and
each report resolves its tag's future right there. (A background thread that
waited in `poll()` and handed reports over with `call_soon_threadsafe` cost a
GIL hand-over and a loop wake-up per report batch, docs/BENCHMARKS.md.) The
request handler awaits that future: 204 only after the acknowledgement, 503
when the broker could not take the tag in time.

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
from collections.abc import Callable

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ingest_api.config import IngestSettings

log = logging.getLogger(__name__)


# Beyond the broker's deadline, time for its delivery report to reach the
# handler: the loop serves reports every INGEST_REPORT_POLL_MS (1 ms), so 10 ms
# is ample, and a 503 leaves room for scheduling jitter inside the SPEC's
# 200 ms (docs/BENCHMARKS.md, "The 503 deadline").
REPORT_TRIP_MS = 10


class LogUnavailable(Exception):
    """Kafka did not acknowledge the tag within the deadline (answer 503)."""


# How often the loop serves librdkafka's queue when no tag awaits its
# acknowledgement: statistics (readiness), errors and log lines only.
IDLE_POLL_S = 0.1


class KafkaWriter:
    def __init__(self, settings: IngestSettings):
        self._settings = settings
        self._topic = settings.kafka_topic
        self._producer: Producer | None = None
        self._ready_cache: tuple[float, bool] = (0.0, False)
        self._producer_id_assigned = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._pump: asyncio.TimerHandle | None = None
        self._pump_fast = False
        self._polling = False
        self._in_flight = 0  # tags produced whose delivery report has not been served
        self._poll_s = settings.ingest_report_poll_ms / 1000
        self._deadline_s = (settings.ingest_ack_timeout_ms + REPORT_TRIP_MS) / 1000

    # lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Create the producer; call on the event loop that will serve requests."""
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
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._in_flight = 0
        self._polling = True
        self._schedule_pump(IDLE_POLL_S)
        log.info("kafka writer started topic=%s bootstrap=%s", self._topic, s.kafka_bootstrap_servers)

    def warm_up(self, timeout_s: float = 5.0) -> None:
        """Connect, learn the topic's leaders and let the idempotent producer get
        its id now, so the first tag does not spend its deadline on that.
        Runs in a worker thread while the loop serves the statistics."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.is_ready(1.0, cached=False):
                return
            time.sleep(0.1)
        log.warning("kafka not ready at start-up topic=%s; requests get 503 until it is", self._topic)

    def stop_polling(self) -> None:
        """On the event loop, before `close`: from here on `close` serves the reports."""
        self._polling = False
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None

    def close(self, flush_timeout_s: float = 5.0) -> None:
        """Wait for the queued tags (in a worker thread, after `stop_polling`)."""
        if self._producer is None:
            return
        remaining = self._producer.flush(flush_timeout_s)  # reports go to the loop thread-safely
        if remaining:
            log.error("kafka writer closed with %d tags not acknowledged topic=%s", remaining, self._topic)
        self._producer = None

    @property
    def in_flight(self) -> int:
        """Tags produced whose delivery report has not been served yet."""
        return self._in_flight

    # delivery reports, served on the loop -----------------------------------
    def _schedule_pump(self, delay_s: float) -> None:
        assert self._loop is not None
        if not self._polling:
            return
        self._pump_fast = delay_s < IDLE_POLL_S
        self._pump = self._loop.call_later(delay_s, self._serve_reports)

    def _serve_reports(self) -> None:
        self._pump = None
        producer = self._producer
        if producer is None:
            return
        producer.poll(0)  # runs the on_delivery callbacks (and stats, errors, logs) here
        self._schedule_pump(self._poll_s if self._in_flight else IDLE_POLL_S)

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
        loop = self._loop  # the loop start() ran on, which serves the requests
        if producer is None or loop is None:
            raise LogUnavailable("writer not started")
        # Result True: acknowledged; False: the deadline passed first.
        outcome: asyncio.Future[bool] = loop.create_future()
        try:
            producer.produce(self._topic, value=value, key=key, on_delivery=self._reporter(outcome, cookie))
        except BufferError:
            raise LogUnavailable("too many tags awaiting acknowledgement") from None
        except KafkaException as exc:
            raise LogUnavailable(str(exc)) from None
        self._in_flight += 1
        if not self._pump_fast:
            if self._pump is not None:
                self._pump.cancel()
            self._schedule_pump(self._poll_s)
        deadline = loop.call_later(self._deadline_s, _expire, outcome)
        try:
            acknowledged = await outcome
        finally:
            deadline.cancel()
        if not acknowledged:
            log.warning("no acknowledgement in time topic=%s cookie=%r", self._topic, cookie)
            raise LogUnavailable("acknowledgement deadline passed")

    def _reporter(self, outcome: asyncio.Future[bool], cookie: str) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:  # inside poll() or flush()
            self._in_flight -= 1
            if threading.get_ident() == self._loop_thread:
                _settle(outcome, err, msg, cookie, self._topic)
            else:  # flush() at shutdown
                try:
                    outcome.get_loop().call_soon_threadsafe(_settle, outcome, err, msg, cookie, self._topic)
                except RuntimeError:  # that event loop is closed (shutdown)
                    log.warning("delivery report for a closed event loop topic=%s cookie=%r", self._topic, cookie)

        return on_delivery

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


def _expire(outcome: asyncio.Future[bool]) -> None:
    if not outcome.done():
        outcome.set_result(False)


def _settle(outcome: asyncio.Future[bool], err: KafkaError | None, msg: Message, cookie: str, topic: str) -> None:
    """On the tag's event loop: resolve its future with its delivery report."""
    if outcome.done():  # the request already gave up and answered 503
        if err is None:
            log.warning(
                "tag acknowledged after its 503 topic=%s partition=%s offset=%s cookie=%r",
                msg.topic(), msg.partition(), msg.offset(), cookie,
            )
        else:
            log.info("tag answered 503 was not delivered either topic=%s cookie=%r: %s", topic, cookie, err)
    elif err is None:
        outcome.set_result(True)
    else:
        log.warning("tag not acknowledged topic=%s cookie=%r: %s", topic, cookie, err)
        outcome.set_exception(LogUnavailable(str(err)))
