"""Settings mixins shared by the services.

Each service has exactly one pydantic-settings class that inherits the mixins
for the systems it talks to, so a variable such as KAFKA_BOOTSTRAP_SERVERS
means the same thing everywhere. Defaults point at the local run (`make up`);
secrets have no defaults.
"""

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
