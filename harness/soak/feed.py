"""The reference workload straight into the topic, as records the ingest API would have written."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from common.tag import UserTag
from harness.local_stack.kafka import _quiet_logger
from harness.replay.workload import Workload


class Feeder:
    """Produces tags 0, 1, 2, ... of one Workload (1 ms of event time per tag by default)."""

    def __init__(self, bootstrap: str, topic: str, workload: Workload) -> None:
        self.topic = topic
        self.workload = workload
        self.produced = 0  # tags handed to the producer (acknowledged once flush() returned)
        self.failed: list[str] = []
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 20, "logger": _quiet_logger()})

    def _report(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None and len(self.failed) < 10:
            self.failed.append(str(err))

    def produce(self, count: int) -> None:
        """Queue the next `count` tags and wait until Kafka acknowledged every one."""
        w, produce, poll = self.workload, self.producer.produce, self.producer.poll
        for i in range(self.produced, self.produced + count):
            # Through the ingest API's own model, so the record is byte for byte the one it writes.
            key, value = UserTag.model_validate(w.tag(i)).kafka_record()
            while True:
                try:
                    produce(self.topic, value=value, key=key, on_delivery=self._report)
                    break
                except BufferError:
                    poll(0.05)
            poll(0)
        left = self.producer.flush(120)
        if left or self.failed:
            raise SystemExit(f"Kafka did not acknowledge {left} tag(s); errors: {self.failed}")
        self.produced += count

    @property
    def newest_time_ms(self) -> int | None:
        return self.workload.time_ms(self.produced - 1) if self.produced else None
