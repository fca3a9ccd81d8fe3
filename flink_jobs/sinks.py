"""The job's windows and Cassandra sinks are Java (the Maven module
flink_jobs/operators/: allezon.cube and allezon.sinks): this attaches
them to the SQL half's tag rows and passes them their settings.

Their jar comes from FLINK_SINKS_JAR (built by the local stack, shipped in the
Docker image). Rows reach them by column name (sql.PROFILE_COLUMNS and
sql.CUBE_INPUT_COLUMNS; allezon.Columns on the Java side).
Why Java: a row that enters a Python function costs a Java-to-Python
crossing under one interpreter lock; see docs/BENCHMARKS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.cube import STORED_MASKS
from flink_jobs.config import JobSettings

if TYPE_CHECKING:
    from pyflink.datastream import DataStream


def sink_settings(s: JobSettings) -> dict[str, str]:
    """What the Java side's SinkConfig reads (all strings)."""
    return {
        "contact_points": ",".join(s.cassandra_hosts),
        "port": str(s.cassandra_port),
        "local_dc": s.cassandra_local_dc,
        "keyspace": s.cassandra_keyspace,
        "consistency": s.cassandra_consistency,
        "request_timeout_ms": str(s.writer_request_timeout_ms),
        "max_in_flight": str(s.writer_concurrency),
        "batch_rows": str(s.writer_batch_rows),
        "batch_bytes": str(s.writer_batch_bytes),
        "flush_ms": str(s.writer_flush_ms),
        "profile_cap": str(s.profile_cap),
        "profile_trim_slack": str(s.profile_trim_slack),
        "allowed_lateness_ms": str(s.cube_allowed_lateness_ms),
        "retention_ms": str(s.event_retention_ms),
        "emit_interval_ms": str(s.cube_emit_interval_ms),
        "stored_masks": ",".join(str(mask) for mask in STORED_MASKS),
    }


def attach(tag_rows: DataStream, s: JobSettings) -> None:
    """Build the cube of the tag rows and attach the sinks (all Java, on the
    Java stream behind the PyFlink DataStream: no Python on the way)."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    settings = gateway.jvm.java.util.HashMap()
    for key, value in sink_settings(s).items():
        settings.put(key, value)
    gateway.jvm.allezon.sinks.CassandraSinks.attach(tag_rows._j_data_stream, settings)
