"""Processes of the platform itself: the stream job and the two API services.

`Service` is a generic component: a command, extra environment and a readiness
check. The API services are `ApiService`s whose readiness is
GET /health/ready answering 200. `stream_job_launch` runs the stream job on
PyFlink's in-process mini cluster, for measurements of the job alone
(harness/measure/job.py); the stack submits it to its Flink cluster
(flink.py, stream_job.py).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common import server
from harness.local_stack.config import REPO_ROOT, StackSettings
from harness.local_stack.process import Component, ManagedProcess

log = logging.getLogger(__name__)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


class Service(Component):
    """A process given by its argv, environment and readiness check."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        settings: StackSettings,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        listen: Sequence[tuple[str, int]] = (),
        address: str = "",
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.settings = settings
        self.ready_timeout_s = settings.start_timeout_s
        self.stop_timeout_s = min(settings.stop_timeout_s, 30.0)
        self._ready = ready
        self._listen = list(listen)
        self._address = address
        self.process = ManagedProcess(name, list(argv), settings.run_dir, env=dict(env or {}), cwd=cwd)

    @property
    def address(self) -> str:
        return self._address

    def ports(self) -> list[tuple[str, int]]:
        return self._listen

    def ready(self) -> bool:
        return self._ready()


class ApiService(Service):
    """One API served by its own launch definition (common/server.py) on
    host:port; ready when /health/ready answers 200."""

    def __init__(self, name: str, package: str, port: int, settings: StackSettings,
                 extra_env: Mapping[str, str] | None = None) -> None:
        host = settings.host
        env = {**settings.service_env(), **(extra_env or {}), **server.address_environment(host, port),
               "PYTHONUNBUFFERED": "1"}
        self.base_url = f"http://{host}:{port}"
        super().__init__(
            name,
            server.command(package),
            settings,
            ready=lambda: http_ok(f"{self.base_url}/health/ready"),
            env=env,
            listen=[(host, port)],
            address=self.base_url,
        )


def ingest_api(settings: StackSettings) -> ApiService:
    return ApiService("ingest-api", "ingest_api", settings.ingest_port, settings)


def query_api(settings: StackSettings) -> ApiService:
    # GET /pipeline reads the ingest API's metrics and the Flink REST API (query_api/pipeline.py).
    flink = f"http://{settings.host}:{settings.flink_rest_port}" if settings.flink_job_enabled else ""
    return ApiService("query-api", "query_api", settings.query_port, settings, extra_env={
        "QUERY_INGEST_METRICS_URL": f"http://{settings.host}:{settings.ingest_port}/metrics",
        "QUERY_FLINK_REST_URL": flink,
    })


@dataclass(frozen=True)
class JobLaunch:
    """How to start the stream job: argv, working directory and the environment it needs."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


def stream_job_launch(
    *,
    connector_dir: Path,
    sinks_jar: Path | None,
    checkpoint_dir: Path,
    rest_port: int,
    parallelism: int | None = None,
    heap: str = "1g",
    repo: Path = REPO_ROOT,
) -> JobLaunch:
    """The stream job alone on PyFlink's in-process mini cluster, from `repo` in
    its own virtualenv, over a fresh topic (it starts without state).

    For measurements of the job by itself (harness.measure.job); the platform
    submits it to its Flink cluster instead (stream_job.py). `env` holds the
    job's own variables; the caller adds where Kafka and Cassandra are, and any
    other setting. sinks_jar=None leaves FLINK_SINKS_JAR unset (for a checkout
    that builds its own).
    """
    from harness.local_stack.artifacts import heap_mib

    env = {
        "PYTHONUNBUFFERED": "1",
        # PyFlink starts the job's JVM with these (else its heap is a quarter of RAM).
        "JVM_ARGS": f"-Xms{min(256, heap_mib(heap))}m -Xmx{heap_mib(heap)}m",
        "FLINK_CONNECTOR_DIR": str(connector_dir),
        "FLINK_CHECKPOINT_DIR": str(checkpoint_dir),
        "FLINK_REST_PORT": str(rest_port),
        "START_WITHOUT_STATE": "true",
        **({"FLINK_SINKS_JAR": str(sinks_jar)} if sinks_jar is not None else {}),
        **({"FLINK_PARALLELISM": str(parallelism)} if parallelism else {}),
    }
    return JobLaunch([str(repo / ".venv-flink" / "bin" / "python"), "-m", "flink_jobs.user_tags_job"], repo, env)
