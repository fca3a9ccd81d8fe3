"""The Cassandra session of the query API: token-aware, prepared statements
only, and reads that do not wait on one slow node.

Every statement here is a read, so it is idempotent: a coordinator that
reports a read timeout or too few live replicas is asked again on the next
host, and one that does not answer at all is hedged (query_api/store.py,
`Hedging`). A node that is restarting, compacting or paused in a GC then costs
a query about the hedge delay (100 ms), not a 503.
"""

from __future__ import annotations

import asyncio
import logging

from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import DCAwareRoundRobinPolicy, RetryPolicy, TokenAwarePolicy
from cassandra.query import tuple_factory

from query_api.config import QuerySettings
from query_api.store import AggregateStore, CubeCatalog, Hedging, ProfileStore

log = logging.getLogger(__name__)


class ReadRetryPolicy(RetryPolicy):  # type: ignore[misc]  # the driver is untyped
    """Retries a read once on the next host after a coordinator-side read
    timeout or unavailable error (the default asks the same coordinator again,
    or gives up). Connection errors move on to the next host, as by default.
    The query API writes nothing; a write timeout is passed on."""

    def on_read_timeout(self, query: object, consistency: int, required_responses: int, received_responses: int,
                        data_retrieved: bool, retry_num: int) -> tuple[int, None]:
        return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)

    def on_unavailable(self, query: object, consistency: int, required_replicas: int, alive_replicas: int,
                       retry_num: int) -> tuple[int, None]:
        return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)

    def on_write_timeout(self, *args: object, **kwargs: object) -> tuple[int, None]:
        return self.RETHROW, None


def build_cluster(settings: QuerySettings) -> Cluster:
    """Token-aware routing in the local data centre (replicas shuffled, so a
    partition's reads are spread over its replicas), the configured consistency."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(
            DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc), shuffle_replicas=True
        ),
        retry_policy=ReadRetryPolicy(),
        consistency_level=ConsistencyLevel.name_to_value[settings.cassandra_consistency.upper()],
        request_timeout=settings.query_request_timeout_s,
        row_factory=tuple_factory,
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
        self.profiles: ProfileStore | None = None
        self.aggregates: AggregateStore | None = None
        self.catalog: CubeCatalog | None = None
        self._connector: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_until_up(), name="cassandra-connect")

    async def _connect_until_up(self) -> None:
        """Connect to the keyspace and prepare every statement; retry until both work."""
        while self.session is None:
            cluster = build_cluster(self.settings)
            try:
                session = await asyncio.to_thread(cluster.connect, self.settings.cassandra_keyspace)
                hedging = Hedging(self.settings.query_hedge_delay_ms / 1000, self.settings.query_hedge_max)
                self.profiles = await asyncio.to_thread(ProfileStore.prepare, session, hedging)
                self.aggregates = await asyncio.to_thread(
                    AggregateStore.prepare, session, hedging, self.settings.query_aggregate_retry_deadline_s
                )
                self.catalog = await asyncio.to_thread(CubeCatalog.prepare, session, hedging)
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
