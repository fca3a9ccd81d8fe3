"""The local Flink cluster: a standalone session cluster from the Flink
distribution the PyFlink wheel ships (its bin/, lib/ and plugins/).

One JobManager (`flink-jobmanager`) and FLINK_TASKMANAGERS TaskManagers
(`flink-taskmanager-1`, ...), each started in the foreground by Flink's own
scripts (`jobmanager.sh start-foreground`, `taskmanager.sh start-foreground`),
so the pid the stack supervises is the JVM itself. Their configuration is one
`config.yaml` that `cluster_config()` writes into <run_dir>/flink/conf. The
stream job is submitted to this cluster by stream_job.py.

The job scheduler is Flink's adaptive scheduler: a job runs with as many slots
as the TaskManagers offer, up to its parallelism, and rescales when
TaskManagers come or go (docs/OPERATIONS.md).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness.local_stack import artifacts
from harness.local_stack.config import REPO_ROOT, StackSettings
from harness.local_stack.process import Component, ManagedProcess, StackError

log = logging.getLogger(__name__)

# Rolled log files kept per Flink process, each up to 100 MB (the
# distribution's log4j-console.properties).
LOG_FILES_KEPT = 2


def flink_home(repo: Path = REPO_ROOT) -> Path:
    """The distribution inside the PyFlink wheel of `repo`'s .venv-flink."""
    found = sorted((repo / ".venv-flink" / "lib").glob("python3*/site-packages/pyflink/bin/flink"))
    if not found:
        raise StackError(f"no Flink distribution under {repo / '.venv-flink'}: run `make bootstrap`")
    return found[-1].parent.parent


def _distribution_java_opts(home: Path) -> str:
    """The JVM flags the distribution's own config.yaml sets (module exports for JDK 17)."""
    for line in (home / "conf" / "config.yaml").read_text().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "all" and "--add-" in value:
            return value.strip()
    raise StackError(f"no env.java.opts.all in {home / 'conf' / 'config.yaml'}")


def conf_dir(settings: StackSettings) -> Path:
    return settings.run_dir / "flink" / "conf"


def checkpoint_dir(settings: StackSettings) -> Path:
    return settings.run_dir / "flink" / "checkpoints"


def savepoint_dir(settings: StackSettings) -> Path:
    return settings.run_dir / "flink" / "savepoints"


def rest_url(settings: StackSettings) -> str:
    return f"http://{settings.host}:{settings.flink_rest_port}"


def cluster_config(settings: StackSettings, home: Path) -> dict[str, str]:
    """The cluster's config.yaml, as flat keys."""
    s = settings
    tmp = s.run_dir / "flink" / "tmp"
    config = {
        "jobmanager.rpc.address": s.host,
        "jobmanager.rpc.port": str(s.flink_rpc_port),
        "jobmanager.bind-host": s.host,
        "taskmanager.bind-host": s.host,
        "taskmanager.host": s.host,
        "rest.address": s.host,
        "rest.bind-address": s.host,
        "rest.port": str(s.flink_rest_port),
        # Heaps set explicitly; the other memory pools are sized from them.
        "jobmanager.memory.heap.size": s.flink_jobmanager_heap,
        "jobmanager.memory.off-heap.size": "64m",
        "taskmanager.memory.task.heap.size": s.flink_taskmanager_heap,
        "taskmanager.memory.framework.heap.size": "128m",
        # Direct memory for the Cassandra driver's netty, loaded by each job's own
        # class loader: a session TaskManager keeps some of it per job it ran, and
        # in CI (2026-12-01) about the tenth job in a row failed with "Cannot reserve
        # ... bytes of direct buffer memory" at the 192 MB limit. 256 MB more is a
        # bound only: nothing is allocated until used.
        "taskmanager.memory.task.off-heap.size": "256m",
        # Managed memory is RocksDB's; the heap backend needs none.
        "taskmanager.memory.managed.size": "256m" if s.flink_state_backend == "rocksdb" else "0m",
        "taskmanager.memory.network.min": "64m",
        "taskmanager.memory.network.max": "64m",
        "taskmanager.numberOfTaskSlots": str(s.flink_task_slots),
        # A job uses every slot up to its parallelism, and rescales when
        # TaskManagers come or go (after a checkpoint, so little is replayed).
        "jobmanager.scheduler": "adaptive",
        "parallelism.default": str(s.job_parallelism),
        "jobmanager.adaptive-scheduler.resource-stabilization-timeout": "2 s",
        "jobmanager.adaptive-scheduler.scaling-interval.min": "10 s",
        # A TaskManager that died is declared lost after two failed heartbeat
        # RPCs (about 4 s) rather than after the 50 s heartbeat timeout, which
        # now only catches a hung one.
        "heartbeat.interval": "2000",
        "heartbeat.timeout": "20000",
        "heartbeat.rpc-failure-threshold": "2",
        "execution.checkpointing.dir": checkpoint_dir(s).as_uri(),
        "execution.checkpointing.savepoint-dir": savepoint_dir(s).as_uri(),
        "io.tmp.dirs": str(tmp),
        "web.tmpdir": str(tmp),
        "blob.storage.directory": str(tmp),
        # The console (this process's log in the run dir) gets warnings only;
        # everything goes to Flink's own rolled log file beside it.
        "env.java.opts.all": f"{_distribution_java_opts(home)} -Dconsole.log.level=WARN",
        "env.java.opts.jobmanager": " ".join(artifacts.gc_flags(s.flink_jobmanager_gc)),
        "env.java.opts.taskmanager": " ".join(artifacts.gc_flags(s.flink_taskmanager_gc)),
        # Prometheus reporter (the distribution's plugins/metrics-prometheus): the
        # JobManager's port here, each TaskManager's given on its command line.
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": str(s.flink_metrics_port_of(None)),
    }
    return config


def write_cluster_config(settings: StackSettings, home: Path) -> Path:
    target = conf_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties"):
        (target / name).write_bytes((home / "conf" / name).read_bytes())
    # JSON is YAML: one flat key per line, values quoted.
    lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in cluster_config(settings, home).items()]
    (target / "config.yaml").write_text("\n".join(lines) + "\n")
    for sub in ("tmp", "checkpoints", "savepoints"):
        (settings.run_dir / "flink" / sub).mkdir(parents=True, exist_ok=True)
    return target


def rest(settings: StackSettings, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
    """Call the JobManager's REST API; raises StackError unless it answers 2xx with JSON (or nothing)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{rest_url(settings)}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raise StackError(f"Flink REST {method} {path}: {exc.code} {exc.read()[:500]!r}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"Flink REST {method} {path}: {exc} (is the JobManager up? `make status`)") from exc


def rest_get(settings: StackSettings, path: str, timeout: float = 2.0) -> Any:
    return rest(settings, "GET", path, timeout=timeout)


def script_environment(settings: StackSettings, name: str) -> dict[str, str]:
    """What Flink's scripts read: where the configuration and the logs are."""
    env = {
        "FLINK_CONF_DIR": str(conf_dir(settings)),
        "FLINK_LOG_DIR": str(settings.run_dir / "logs"),
        "FLINK_PID_DIR": str(settings.run_dir / "flink" / "pids"),
        "FLINK_IDENT_STRING": name,
        "MAX_LOG_FILE_NUMBER": str(LOG_FILES_KEPT),
    }
    if settings.java_home is not None:
        env["JAVA_HOME"] = str(settings.java_home)
    return env


class _FlinkProcess(Component):
    def __init__(self, settings: StackSettings, name: str, argv: list[str], cmdline_suffix: list[str]) -> None:
        self.settings = settings
        self.name = name
        self.home = flink_home()
        self.ready_timeout_s = settings.start_timeout_s
        self.stop_timeout_s = min(settings.stop_timeout_s, 30.0)
        # The script execs the JVM: the pid stays, the command line becomes java's.
        self.process = ManagedProcess(name, argv, settings.run_dir, env=script_environment(settings, name),
                                      cmdline_suffix=cmdline_suffix)

    def prepare(self) -> None:
        write_cluster_config(self.settings, self.home)

    @property
    def log_files(self) -> list[Path]:
        return sorted((self.settings.run_dir / "logs").glob(f"flink-{self.name}-*.log"))


class FlinkJobManager(_FlinkProcess):
    """The cluster's JobManager: ready when its REST API answers."""

    def __init__(self, settings: StackSettings) -> None:
        home = flink_home()
        super().__init__(
            settings,
            "flink-jobmanager",
            [str(home / "bin" / "jobmanager.sh"), "start-foreground"],
            ["--configDir", str(conf_dir(settings)), "--executionMode", "cluster"],
        )

    @property
    def address(self) -> str:
        return rest_url(self.settings)

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.flink_metrics_port_of(None)}/metrics"

    def ports(self) -> list[tuple[str, int]]:
        s = self.settings
        return [(s.host, s.flink_rest_port), (s.host, s.flink_rpc_port), ("0.0.0.0", s.flink_metrics_port_of(None))]

    def ready(self) -> bool:
        return "taskmanagers" in rest_get(self.settings, "/overview")


class FlinkTaskManager(_FlinkProcess):
    """TaskManager `index` (1-based): ready once registered with the JobManager."""

    def __init__(self, settings: StackSettings, index: int) -> None:
        home = flink_home()
        self.resource_id = f"taskmanager-{index}"
        self.metrics_port = settings.flink_metrics_port_of(index)
        # Its own Prometheus reporter port (the reporter binds every address).
        dynamic = ["-D", f"taskmanager.resource-id={self.resource_id}",
                   "-D", f"metrics.reporter.prom.port={self.metrics_port}"]
        super().__init__(
            settings, f"flink-{self.resource_id}", [str(home / "bin" / "taskmanager.sh"), "start-foreground", *dynamic],
            dynamic,
        )

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.host}:{self.metrics_port}/metrics"

    def ports(self) -> list[tuple[str, int]]:
        return [("0.0.0.0", self.metrics_port)]

    def ready(self) -> bool:
        """Registered, as this process: a TaskManager killed a moment ago may still be listed
        under the same id, so its data port must be one this process listens on."""
        registered = rest_get(self.settings, "/taskmanagers").get("taskmanagers", [])
        ports = [tm.get("dataPort") for tm in registered if tm.get("id") == self.resource_id]
        proc = self.process.process()
        if not ports or proc is None:
            return False
        listening = {c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == "LISTEN"}
        return ports[0] in listening
