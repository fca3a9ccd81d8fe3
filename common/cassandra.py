"""The one way every process of the platform builds its Cassandra cluster object:
token-aware routing in the local data centre, the configured consistency level."""

from __future__ import annotations

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from common.settings import CassandraSettings


def build_cluster(settings: CassandraSettings, request_timeout_s: float, row_factory=None) -> Cluster:
    options = {} if row_factory is None else {"row_factory": row_factory}
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc)),
        consistency_level=ConsistencyLevel.name_to_value[settings.cassandra_consistency.upper()],
        request_timeout=request_timeout_s,
        **options,
    )
    return Cluster(
        contact_points=settings.cassandra_hosts,
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        connect_timeout=2,
    )
