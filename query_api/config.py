from pydantic import Field, SecretStr, field_validator

from common.settings import CassandraSettings, HttpSettings, LoggingSettings, check_token_strength


class QuerySettings(CassandraSettings, LoggingSettings, HttpSettings):
    """Environment of the query API (defaults work for `make up`)."""

    http_port: int = Field(default=8082, ge=1, le=65535)

    # Per-statement deadline; SPEC asks 200 ms for a profile answer.
    query_request_timeout_s: float = Field(default=2.0, gt=0)
    # A read whose coordinator has not answered after this many ms is also sent
    # to another live host (up to QUERY_HEDGE_MAX more); the first answer wins.
    # Above the profile p99 under load (about 60 ms, see docs/BENCHMARKS.md), so
    # it fires for a slow node, not for every read. 0 = off. No effect with one node.
    query_hedge_delay_ms: int = Field(default=100, ge=0)
    query_hedge_max: int = Field(default=2, ge=0)
    # An aggregate read that failed (timeout, too few replicas) is asked again
    # until this many seconds after the request began; then 503. The SPEC gives
    # an aggregate answer 60 s.
    query_aggregate_retry_deadline_s: float = Field(default=30.0, ge=0)
    # Connecting at start-up retries until this many seconds passed (then the
    # API stays up, not ready, and keeps trying in the background).
    query_connect_retry_s: float = Field(default=1.0, gt=0)
    # GET /pipeline (query_api/pipeline.py) reads the ingest API's /metrics and
    # the Flink REST API; an empty URL makes that part null. One ingest replica
    # is read (behind a balancer, whichever answers).
    query_ingest_metrics_url: str = "http://127.0.0.1:8081/metrics"
    query_flink_rest_url: str = "http://127.0.0.1:8091"
    # The ingest API's bearer token, when it requires one for /metrics.
    query_ingest_metrics_token: SecretStr | None = None
    # Per-request deadline of those reads, and how long an answer is reused.
    query_pipeline_timeout_s: float = Field(default=1.0, gt=0, le=10)
    query_pipeline_cache_s: float = Field(default=1.0, ge=0)
    # Bearer token every request but the health checks must carry; unset = no auth.
    query_auth_token: SecretStr | None = None

    _token_strength = field_validator("query_auth_token")(check_token_strength)
