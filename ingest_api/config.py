from pydantic import Field

from common.settings import KafkaSettings, LoggingSettings


class IngestSettings(KafkaSettings, LoggingSettings):
    """Environment of the ingest API (defaults work for `make up`)."""

    # Bodies above this get 413 (SPEC: 64 KiB unless configured).
    ingest_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # How long the broker may take to acknowledge a tag (acks=all) before the
    # request is answered 503. The whole request must stay under 200 ms.
    ingest_ack_timeout_ms: int = Field(default=170, ge=10, le=10_000)
    # Seconds a client is told to wait after a 503.
    ingest_retry_after_s: int = Field(default=1, ge=1)
    # librdkafka batching delay; a few ms trades nothing visible for fewer requests.
    ingest_linger_ms: float = Field(default=2.0, ge=0)
    # Bound on tags waiting for their acknowledgement; over it, 503 at once.
    ingest_max_in_flight: int = Field(default=100_000, ge=1)
