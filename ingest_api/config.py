from pydantic import Field, SecretStr, field_validator

from common.limits import DEFAULT_MAX_BODY_BYTES
from common.settings import HttpSettings, KafkaSettings, LoggingSettings, check_token_strength


class IngestSettings(KafkaSettings, LoggingSettings, HttpSettings):
    """Environment of the ingest API (defaults work for `make up`)."""

    http_port: int = Field(default=8081, ge=1, le=65535)

    # Bodies above this get 413 (SPEC: 64 KiB unless configured).
    ingest_max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    # How long the broker may take to acknowledge a tag (acks=all) before the
    # request is answered 503. The whole request must stay under 200 ms.
    ingest_ack_timeout_ms: int = Field(default=170, ge=10, le=10_000)
    # How long librdkafka keeps trying to deliver a queued tag. Deliberately far
    # longer than the answer deadline: a message that times out while in flight
    # makes the idempotent producer start a new epoch, and its re-sends can then
    # duplicate tags that already got a 204 (seen under overload, docs/DESIGN.md).
    ingest_delivery_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Seconds a client is told to wait after a 503.
    ingest_retry_after_s: int = Field(default=1, ge=1)
    # librdkafka batching delay; a few ms trades nothing visible for fewer requests.
    ingest_linger_ms: float = Field(default=2.0, ge=0)
    # While tags await their acknowledgement, the event loop serves librdkafka's
    # delivery reports this often (a report waits at most this long for its handler).
    ingest_report_poll_ms: float = Field(default=1.0, gt=0, le=20)
    # Bound on tags waiting for their acknowledgement; over it, 503 at once and
    # the tag is not queued. Normal load keeps a few dozen in flight; the bound
    # caps how many 503-answered tags can still land after an outage.
    ingest_max_in_flight: int = Field(default=1_000, ge=1)
    # Prometheus metrics of POST /user_tags at GET /metrics (ingest_api/metrics.py);
    # false records nothing, to measure what recording costs.
    ingest_metrics_enabled: bool = True
    # Bearer token every request but the health checks must carry; unset = no auth.
    ingest_auth_token: SecretStr | None = None

    _token_strength = field_validator("ingest_auth_token")(check_token_strength)
