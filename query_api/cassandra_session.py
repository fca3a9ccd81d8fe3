"""The Cassandra session of the query API: token-aware, prepared statements only."""

from __future__ import annotations

import asyncio
import logging

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from query_api.config import QuerySettings

log = logging.getLogger(__name__)


def build_cluster(settings: QuerySettings) -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc)),
        consistency_level=ConsistencyLevel.name_to_value[settings.cassandra_consistency.upper()],
        request_timeout=settings.query_request_timeout_s,
    )
    return Cluster(
        contact_points=settings.cassandra_hosts,
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        connect_timeout=2,
    )


class CassandraReader:
    """Owns the cluster/session; connects in the background until Cassandra answers."""

    def __init__(self, settings: QuerySettings):
        self.settings = settings
        self._cluster: Cluster | None = None
        self.session: Session | None = None
        self._connector: asyncio.Task | None = None

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_until_up(), name="cassandra-connect")

    async def _connect_until_up(self) -> None:
        while self.session is None:
            cluster = build_cluster(self.settings)
            try:
                self.session = await asyncio.to_thread(cluster.connect)
                self._cluster = cluster
                log.info("connected to cassandra hosts=%s keyspace=%s", self.settings.cassandra_hosts,
                         self.settings.cassandra_keyspace)
            except NoHostAvailable as exc:
                cluster.shutdown()
                log.warning("cassandra not reachable hosts=%s: %s", self.settings.cassandra_hosts, exc)
                await asyncio.sleep(self.settings.query_connect_retry_s)

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.shutdown)

    def is_ready(self) -> bool:
        """Connected, and the keyspace exists (schema applied)."""
        if self.session is None or self._cluster is None:
            return False
        return self.settings.cassandra_keyspace in self._cluster.metadata.keyspaces
