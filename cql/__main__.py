"""`python -m cql`: apply the schema to the cluster named by the CASSANDRA_*
variables, retrying until it answers (the compose and Kubernetes schema step)."""

from __future__ import annotations

import logging
import sys
import time

from pydantic import Field

from common.logging import configure_logging
from common.settings import CassandraSettings, LoggingSettings
from cql.apply import apply_schema

log = logging.getLogger("cql")


class SchemaSettings(CassandraSettings, LoggingSettings):
    cassandra_replication_factor: int = Field(default=1, ge=1, le=10)
    # A schema step starts beside Cassandra: keep trying this long, then fail.
    schema_wait_s: float = Field(default=120.0, ge=0)


def main() -> int:
    s = SchemaSettings()
    configure_logging(s.log_level, s.log_format)
    deadline = time.monotonic() + s.schema_wait_s
    while True:
        try:
            applied = apply_schema(s.cassandra_hosts, s.cassandra_keyspace, s.cassandra_replication_factor,
                                   port=s.cassandra_port)
        except Exception as exc:
            if time.monotonic() > deadline:
                log.error("could not apply the schema to %s:%d: %s", s.cassandra_hosts, s.cassandra_port, exc)
                return 1
            log.info("cassandra not ready yet (%s); retrying", exc)
            time.sleep(2)
        else:
            log.info("schema applied to %s (rf %d): %d statements", s.cassandra_keyspace,
                     s.cassandra_replication_factor, applied)
            return 0


if __name__ == "__main__":
    sys.exit(main())
