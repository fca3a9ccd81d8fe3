"""The Cassandra session of the query API: token-aware, prepared statements only."""

from __future__ import annotations

import asyncio
import logging

from cassandra import InvalidRequest
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import tuple_factory

from common.cassandra import build_cluster as build_cassandra_cluster
from query_api.config import QuerySettings
from query_api.store import AggregateStore, ProfileStore

log = logging.getLogger(__name__)


def build_cluster(settings: QuerySettings) -> Cluster:
    return build_cassandra_cluster(settings, settings.query_request_timeout_s, row_factory=tuple_factory)


class CassandraReader:
    """Owns the cluster/session; connects in the background until Cassandra answers."""

    def __init__(self, settings: QuerySettings):
        self.settings = settings
        self._cluster: Cluster | None = None
        self.session: Session | None = None
        self.profiles: ProfileStore | None = None
        self.aggregates: AggregateStore | None = None
        self._connector: asyncio.Task | None = None

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_until_up(), name="cassandra-connect")

    async def _connect_until_up(self) -> None:
        """Connect to the keyspace and prepare every statement; retry until both work."""
        while self.session is None:
            cluster = build_cluster(self.settings)
            try:
                session = await asyncio.to_thread(cluster.connect, self.settings.cassandra_keyspace)
                self.profiles = await asyncio.to_thread(ProfileStore.prepare, session)
                self.aggregates = await asyncio.to_thread(AggregateStore.prepare, session)
                self._cluster, self.session = cluster, session
                log.info("connected to cassandra hosts=%s keyspace=%s", self.settings.cassandra_hosts,
                         self.settings.cassandra_keyspace)
            except (NoHostAvailable, InvalidRequest) as exc:
                cluster.shutdown()
                log.warning("cassandra not reachable or schema missing hosts=%s keyspace=%s: %s",
                            self.settings.cassandra_hosts, self.settings.cassandra_keyspace, exc)
                await asyncio.sleep(self.settings.query_connect_retry_s)
            except Exception:
                cluster.shutdown()
                log.exception("unexpected error connecting to cassandra hosts=%s", self.settings.cassandra_hosts)
                await asyncio.sleep(self.settings.query_connect_retry_s)

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.shutdown)

    def is_ready(self) -> bool:
        """Connected to the keyspace with every statement prepared, and a node is up."""
        if self.session is None or self._cluster is None:
            return False
        return any(host.is_up for host in self._cluster.metadata.all_hosts())
