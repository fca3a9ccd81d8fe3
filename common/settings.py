"""Settings mixins shared by the services.

Each service has exactly one pydantic-settings class that inherits the mixins
for the systems it talks to, so a variable such as KAFKA_BOOTSTRAP_SERVERS
means the same thing everywhere. Defaults point at the local run (`make up`);
secrets (the bearer tokens) have no defaults.
"""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)


class KafkaSettings(_Base):
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic: str = "user_tags"


class CassandraSettings(_Base):
    cassandra_contact_points: str = "127.0.0.1"
    cassandra_port: int = 9042
    cassandra_keyspace: str = "allezon"
    # ONE on the single local node; QUORUM in the replicated cluster.
    cassandra_consistency: str = "LOCAL_ONE"
    cassandra_local_dc: str = "datacenter1"

    @property
    def cassandra_hosts(self) -> list[str]:
        return [h.strip() for h in self.cassandra_contact_points.split(",") if h.strip()]


class LoggingSettings(_Base):
    log_level: str = "INFO"



class HttpSettings(_Base):
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
