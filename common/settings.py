"""Settings mixins shared by the services, the stream job and the local stack.

Each process has exactly one pydantic-settings class that inherits the mixins
for the systems it talks to, so a variable such as KAFKA_TOPIC means the same
thing everywhere. Defaults point at the local run (`make up`); secrets (the
bearer tokens) have no defaults.
"""

import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Lower case, as Cassandra folds an unquoted name; it is spliced into DDL.
KEYSPACE_RE = re.compile(r"[a-z][a-z0-9_]{0,47}")
CONSISTENCY_LEVELS = ("ONE", "LOCAL_ONE", "TWO", "QUORUM", "LOCAL_QUORUM", "EACH_QUORUM", "ALL")


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)


class KafkaTopicSettings(_Base):
    kafka_topic: str = "user_tags"


class KafkaSettings(KafkaTopicSettings):
    kafka_bootstrap_servers: str = "127.0.0.1:9092"


class CassandraKeyspaceSettings(_Base):
    cassandra_port: int = 9042
    cassandra_keyspace: str = "allezon"

    @field_validator("cassandra_keyspace")
    @classmethod
    def _keyspace(cls, value: str) -> str:
        if not KEYSPACE_RE.fullmatch(value):
            raise ValueError(f"keyspace must match [a-z][a-z0-9_]{{0,47}}, got {value!r}")
        return value


def check_consistency(value: str | None) -> str | None:
    """Validator of a consistency-level setting (None: unset)."""
    if value is None:
        return None
    if value.upper() not in CONSISTENCY_LEVELS:
        raise ValueError(f"CASSANDRA_CONSISTENCY must be one of {', '.join(CONSISTENCY_LEVELS)}, got {value!r}")
    return value.upper()


class CassandraSettings(CassandraKeyspaceSettings):
    cassandra_contact_points: str = "127.0.0.1"
    # ONE on the single local node; QUORUM in the replicated cluster.
    cassandra_consistency: str = "LOCAL_ONE"
    cassandra_local_dc: str = "datacenter1"

    @property
    def cassandra_hosts(self) -> list[str]:
        return [h.strip() for h in self.cassandra_contact_points.split(",") if h.strip()]


class LoggingSettings(_Base):
    log_level: str = "INFO"
    # LOG_FORMAT: "text" (one readable line per record) or "json" (one JSON object per line).
    log_format: str = "text"

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be text or json, got {value!r}")
        return value.lower()


class HttpSettings(_Base):
    # Where the API listens (common/server.py); each service sets its own default port.
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    # Worker processes of one API (uvicorn's own variable name); scale with replicas instead.
    web_concurrency: int = Field(default=1, ge=1)
    # Requests with more headers, or more header bytes (names + values), get 431.
    http_max_headers: int = Field(default=100, ge=10)
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)


MIN_TOKEN_CHARS = 16


def check_token_strength(token: SecretStr | None) -> SecretStr | None:
    """Validator of a bearer-token setting: unset or empty means auth is off;
    a short token is refused at start-up rather than guessed later."""
    if token is not None and 0 < len(token.get_secret_value()) < MIN_TOKEN_CHARS:
        raise ValueError(f"a bearer token needs at least {MIN_TOKEN_CHARS} characters")
    return token
