from pydantic import Field

from common.settings import CassandraSettings, LoggingSettings


class QuerySettings(CassandraSettings, LoggingSettings):
    """Environment of the query API (defaults work for `make up`)."""

    # Per-statement deadline; SPEC asks 200 ms for a profile answer.
    query_request_timeout_s: float = Field(default=2.0, gt=0)
    # Connecting at start-up retries until this many seconds passed (then the
    # API stays up, not ready, and keeps trying in the background).
    query_connect_retry_s: float = Field(default=1.0, gt=0)
