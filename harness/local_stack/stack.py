"""The whole local platform: which components, in which order, and what runs between them.

    stack = Stack(StackSettings())            # or .shifted(10_000, run_dir=tmp)
    stack.up()                                 # everything, as `make up`
    stack.up(["kafka", "cassandra"])           # only the infrastructure (test fixtures)
    stack.down()

Start order: Kafka and Cassandra start together and are awaited together
(with CLUSTER_SIZE=3: the three brokers together, the three Cassandra nodes one
after the other, each once the previous one is UN in the ring); then the topic
is created and the schema applied; then the Flink cluster (a JobManager and
its TaskManagers) and the two APIs, all together; then the stream job is
submitted to the cluster unless it runs there already (stream_job.py decides
what it restores); then the proxy. `down` stops in the reverse order (Kafka and
Cassandra again together) and keeps all data. `up` starts only what is not
running, so after a crash it restarts just the missing node(s).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cassandra.cluster import Session

from cql import apply as schema
from harness.local_stack import artifacts
from harness.local_stack.cassandra import CassandraNode
from harness.local_stack.config import StackSettings
from harness.local_stack.flink import FlinkJobManager, FlinkTaskManager, rest_url
from harness.local_stack.kafka import KafkaBroker
from harness.local_stack.process import Component
from harness.local_stack.proxy import HAProxy
from harness.local_stack.services import ingest_api, query_api
from harness.local_stack.stream_job import ALIVE, StreamJob

log = logging.getLogger(__name__)

# Sub-directories of the run dir that `clean` removes.
RUN_SUBDIRS = ("kafka", "cassandra", "haproxy", "flink", "logs", "pids")


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    ready: bool
    rss_mb: float | None
    address: str


class Stack:
    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        s = self.settings
        self.kafka_brokers = [KafkaBroker(s, node) for node in s.kafka_nodes()]
        self.cassandra_nodes = [CassandraNode(s, node) for node in s.cassandra_nodes()]
        self.flink_jobmanager: FlinkJobManager | None = None
        self.flink_taskmanagers: list[FlinkTaskManager] = []
        self.stream_job: StreamJob | None = None
        if s.flink_job_enabled:
            self.flink_jobmanager = FlinkJobManager(s)
            self.flink_taskmanagers = [FlinkTaskManager(s, i) for i in range(1, self._taskmanager_components() + 1)]
            self.stream_job = StreamJob(s, parallelism=s.job_slots(self.taskmanager_count()))
        self.ingest_api = ingest_api(s)
        self.query_api = query_api(s)
        self.proxy = HAProxy(s)

    # --- the Flink cluster's size ------------------------------------------------------
    @property
    def _scale_file(self) -> Path:
        return self.settings.run_dir / "flink" / "taskmanagers"

    def taskmanager_count(self) -> int:
        """TASKMANAGERS if set, else what `make scale` last asked for, else the default."""
        if self.settings.flink_taskmanagers is None and self._scale_file.is_file():
            return int(self._scale_file.read_text())
        return self.settings.taskmanagers

    def _taskmanager_components(self) -> int:
        """TaskManager components to manage: the count asked for, and any that still run beyond it."""
        pids = self.settings.run_dir / "pids"
        running = [int(p.stem.rsplit("-", 1)[1]) for p in pids.glob("flink-taskmanager-*.pid")] if pids.is_dir() else []
        return max([self.taskmanager_count(), *running])

    # --- lookup --------------------------------------------------------------------
    @property
    def kafka(self) -> KafkaBroker:
        return self.kafka_brokers[0]

    @property
    def cassandra(self) -> CassandraNode:
        return self.cassandra_nodes[0]

    @property
    def infrastructure(self) -> list[Component]:
        return [*self.kafka_brokers, *self.cassandra_nodes]

    @property
    def flink_cluster(self) -> list[Component]:
        return [*([self.flink_jobmanager] if self.flink_jobmanager else []), *self.flink_taskmanagers]

    @property
    def apps(self) -> list[Component]:
        return [*self.flink_cluster, self.ingest_api, self.query_api]

    def components(self) -> list[Component]:
        """Every component, in start order."""
        return [*self.infrastructure, *self.apps, self.proxy]

    def get(self, name: str) -> Component:
        for component in self.components():
            if component.name == name:
                return component
        raise KeyError(f"no component {name!r}; known: {', '.join(c.name for c in self.components())}")

    def _select(self, names: Iterable[str] | None) -> list[Component]:
        if names is None:
            return self.components()
        wanted: set[str] = set()
        for name in names:
            # The job runs on the cluster: "flink-job" selects the cluster too.
            name = "flink" if name == "flink-job" else name
            # "kafka" / "cassandra" also select every node of a bigger cluster.
            matches = [c for c in self.components() if c.name == name or c.name.startswith(f"{name}-")]
            if not matches:
                self.get(name)  # raises KeyError with the known names
            wanted.update(c.name for c in matches)
        return [c for c in self.components() if c.name in wanted]

    # --- lifecycle -------------------------------------------------------------------
    def up(
        self,
        names: Iterable[str] | None = None,
        *,
        create_topic: bool = True,
        apply_schema: bool = True,
        submit_job: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Start the selected components (default: all) and wait until each is ready.

        Running components are left alone and only re-checked. Creates the
        topic when Kafka is selected and applies cql/ when Cassandra is; with
        the Flink cluster, submits the stream job unless it runs (submit_job=False:
        the cluster alone).
        Raises NotReadyError (with the log tail) or StackError.
        """
        selected = self._select(names)
        infra = [c for c in self.infrastructure if c in selected]
        # Jars first, one component at a time (Maven's local repository is shared).
        if any(isinstance(c, KafkaBroker) for c in infra):
            artifacts.resolve("kafka", self.settings)
        if any(isinstance(c, CassandraNode) for c in infra):
            artifacts.resolve("cassandra", self.settings)
        cassandras = [c for c in infra if isinstance(c, CassandraNode)]
        brokers = [c for c in infra if isinstance(c, KafkaBroker)]
        # Cassandra first: it takes longest, and Kafka's storage format runs a JVM meanwhile.
        # The brokers of a cluster start together (their controller quorum needs a majority).
        for component in [*cassandras[:1], *brokers]:
            component.start()
        # Cassandra nodes join one at a time: a node may bootstrap only once the
        # previous one is up and normal in the ring (wait_ready checks that).
        for node in cassandras:
            if node is not cassandras[0]:
                node.start()
            node.wait_ready(timeout)
        for broker in brokers:
            broker.wait_ready(timeout)
        if create_topic and any(c in selected for c in self.kafka_brokers):
            self.kafka.create_topic(self.settings.kafka_topic)
        if apply_schema and any(c in selected for c in self.cassandra_nodes):
            schema.apply_schema(
                self.settings.cassandra_contact_points,
                self.settings.cassandra_keyspace,
                self.settings.replication_factor,
                port=self.settings.cassandra_port,
            )
        apps = [c for c in self.apps if c in selected]
        job_selected = submit_job and self.stream_job is not None and self.flink_jobmanager in apps
        if self.flink_jobmanager in apps:
            artifacts.resolve("flink-connectors", self.settings)
            artifacts.build_sinks(self.settings)
        # TaskManagers beyond the count asked for are left to `down` and `scale`.
        count = self.taskmanager_count()
        apps = [c for c in apps if not (isinstance(c, FlinkTaskManager) and c in self.flink_taskmanagers[count:])]
        for component in apps:
            component.start()
        for component in apps:
            component.wait_ready(timeout)
        if job_selected and self.stream_job is not None:
            self.stream_job.ensure_running(timeout or self.settings.start_timeout_s)
            self.stream_job.set_parallelism(self.settings.job_slots(count))
        if self.proxy in selected:
            self.proxy.start()
            self.proxy.wait_ready(timeout)

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop the selected components (default: all) in reverse start order; keeps data.

        Returns the names of the components that were running.
        """
        selected = self._select(names)
        stopped: list[str] = []
        # The proxy first (no new requests), then the apps, then Kafka and Cassandra;
        # the members of each group stop concurrently.
        for group in ([self.proxy], self.apps, self.infrastructure):
            members = [c for c in group if c in selected]
            if not members:
                continue
            with ThreadPoolExecutor(max_workers=len(members)) as pool:
                for component, was_running in zip(members, pool.map(lambda c: c.stop(), members), strict=True):
                    if was_running:
                        stopped.append(component.name)
        return stopped

    def scale(self, taskmanagers: int, timeout: float | None = None) -> list[str]:
        """Start or stop TaskManagers until `taskmanagers` run; remembered for the next `up`.

        The job's adaptive scheduler rescales it to the new slots. Returns what changed.
        """
        if self.flink_jobmanager is None:
            raise ValueError("the Flink cluster is disabled (FLINK_JOB_ENABLED=false)")
        self._scale_file.parent.mkdir(parents=True, exist_ok=True)
        self._scale_file.write_text(str(taskmanagers))
        while len(self.flink_taskmanagers) < taskmanagers:
            self.flink_taskmanagers.append(FlinkTaskManager(self.settings, len(self.flink_taskmanagers) + 1))
        changed = []
        wanted, extra = self.flink_taskmanagers[:taskmanagers], self.flink_taskmanagers[taskmanagers:]
        for tm in wanted:
            if not tm.is_running():
                tm.start()
                changed.append(f"started {tm.name}")
        for tm in wanted:
            tm.wait_ready(timeout)
        for tm in reversed(extra):
            if tm.stop():
                changed.append(f"stopped {tm.name}")
        # The job's parallelism follows: the adaptive scheduler rescales it to the
        # new bound (up), or already runs on what remains (down).
        job, parallelism = self.stream_job, self.settings.job_slots(taskmanagers)
        if job is not None and job.state() in ALIVE and job.set_parallelism(parallelism):
            changed.append(f"job parallelism {parallelism}")
        return changed

    def kill(self, name: str) -> bool:
        """SIGKILL one component (crash tests)."""
        return self.get(name).kill()

    def restart(self, name: str, timeout: float | None = None) -> None:
        component = self.get(name)
        component.stop()
        component.start()
        component.wait_ready(timeout)

    def status(self) -> list[ComponentStatus]:
        def row(component: Component) -> ComponentStatus:
            pid = component.process.pid
            return ComponentStatus(
                name=component.name,
                pid=pid,
                running=pid is not None,
                ready=component.check_ready() if pid is not None else False,
                rss_mb=component.process.rss_mb() if pid is not None else None,
                address=component.address,
            )

        # Concurrently: a cluster's Cassandra probe runs nodetool (a JVM) per node.
        components = self.components()
        with ThreadPoolExecutor(max_workers=len(components)) as pool:
            rows = list(pool.map(row, components))
        if self.stream_job is not None:
            job = self.stream_job
            state = job.state()
            rows.append(ComponentStatus(
                name="flink-job", pid=None, running=state in ALIVE, ready=job.running(), rss_mb=None,
                address=f"{rest_url(self.settings)}/#/job/running/{job.job_id}  {state or 'not submitted'}",
            ))
        return rows

    def clean(self) -> None:
        """down, then remove the run dir's data, configuration and logs (not the artifact cache)."""
        self.down()
        run_dir = self.settings.run_dir
        for sub in RUN_SUBDIRS:
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        try:
            run_dir.rmdir()
        except OSError:
            pass
        log.info("removed the data in %s", run_dir)

    # --- helpers for tests ----------------------------------------------------------------
    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.settings.kafka_bootstrap_servers

    @contextmanager
    def cassandra_session(self, keyspace: str | None = None) -> Iterator[Session]:
        with schema.session_for(self.settings.cassandra_contact_points, self.settings.cassandra_port, keyspace) as s:
            yield s

    def apply_schema(self, keyspace: str | None = None) -> int:
        return schema.apply_schema(
            self.settings.cassandra_contact_points,
            keyspace or self.settings.cassandra_keyspace,
            self.settings.replication_factor,
            port=self.settings.cassandra_port,
        )

    def drop_keyspace(self, keyspace: str) -> None:
        schema.drop_keyspace(self.settings.cassandra_contact_points, keyspace, port=self.settings.cassandra_port)

