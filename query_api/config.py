from pydantic import Field, SecretStr, field_validator

from common.settings import CassandraSettings, HttpSettings, LoggingSettings, check_token_strength


class QuerySettings(CassandraSettings, LoggingSettings, HttpSettings):
    """Environment of the query API (defaults work for `make up`)."""

    # Per-statement deadline; SPEC asks 200 ms for a profile answer.
    query_request_timeout_s: float = Field(default=2.0, gt=0)
    # Connecting at start-up retries until this many seconds passed (then the
    # API stays up, not ready, and keeps trying in the background).
    query_connect_retry_s: float = Field(default=1.0, gt=0)
    # Bearer token every request but the health checks must carry; unset = no auth.
    query_auth_token: SecretStr | None = None

    _token_strength = field_validator("query_auth_token")(check_token_strength)
