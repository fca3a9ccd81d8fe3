"""The stream job as a real process (PyFlink local cluster) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from common import server
from ingest_api.app import create_app as create_ingest_app
from ingest_api.config import IngestSettings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> float:
    """Seconds until `check()` held; raises TimeoutError at the deadline."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


@dataclass
class StreamJob:
    process: subprocess.Popen
    rest_url: str
    log_file: Path
    env: dict

    def kill(self) -> None:
        """kill -9 the job's whole process group (Python driver and its JVM)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def connector_dir(backends) -> Path:
    from harness.local_stack import artifacts
    from harness.local_stack.config import StackSettings

    settings = backends.stack.settings if backends.stack is not None else StackSettings()
    return artifacts.resolve("flink-connectors", settings)


@pytest.fixture
def start_stream_job(backends, connector_dir, tmp_path) -> Iterator[Callable[..., StreamJob]]:
    """Factory: start the job on (topic, keyspace); waits until every task runs."""
    from harness.local_stack import artifacts
    from harness.local_stack.config import StackSettings
    from harness.local_stack.services import flink_job_running, stream_job_launch

    sinks_jar = artifacts.build_sinks(backends.stack.settings if backends.stack is not None else StackSettings())
    jobs: list[StreamJob] = []

    def start(topic: str, keyspace: str, checkpoint_dir: Path | None = None, **extra_env: str) -> StreamJob:
        port = free_port()
        log_file = tmp_path / f"stream-job-{len(jobs)}.log"
        launch = stream_job_launch(
            connector_dir=connector_dir,
            sinks_jar=sinks_jar,
            checkpoint_dir=checkpoint_dir or tmp_path / "checkpoints",
            rest_port=port,
        )
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": backends.kafka_bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": f"job-{topic}",
            "CASSANDRA_CONTACT_POINTS": ",".join(backends.cassandra_hosts),
            "CASSANDRA_PORT": str(backends.cassandra_port),
            "CASSANDRA_KEYSPACE": keyspace,
            **launch.env,
            **extra_env,
        }
        with log_file.open("w") as log:
            process = subprocess.Popen(
                launch.argv, cwd=launch.cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        job = StreamJob(process, f"http://127.0.0.1:{port}", log_file, env)
        jobs.append(job)
        try:
            poll_until(lambda: flink_job_running(job.rest_url) or process.poll() is not None, 180, 0.5)
        except TimeoutError:
            raise AssertionError("stream job not running after 180 s:\n" + job.log_tail()) from None
        assert process.poll() is None, "stream job exited:\n" + job.log_tail()
        return job

    yield start
    for job in jobs:
        job.kill()


@pytest.fixture
def ingest_client(backends, fresh_topic) -> Iterator[TestClient]:
    settings = IngestSettings(kafka_bootstrap_servers=backends.kafka_bootstrap, kafka_topic=fresh_topic)
    with TestClient(create_ingest_app(settings), raise_server_exceptions=False) as client:
        yield client


class ApiProcess:
    """One of our APIs as a real process (its own launch definition) on a fixed port, which crash
    tests kill -9 and start again (clients keep the same URL)."""

    def __init__(self, package: str, env: dict, log_file: Path, port: int | None = None):
        self.package, self.env, self.log_file = package, env, log_file
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, ready_timeout_s: float = 60) -> float:
        """Start and wait until /health/ready answers 200; returns the seconds that took."""
        with self.log_file.open("a") as log:
            self.process = subprocess.Popen(
                server.command(self.package, str(REPO / ".venv" / "bin" / "python")),
                cwd=REPO, env={**os.environ, **self.env, **server.address_environment("127.0.0.1", self.port)},
                stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return poll_until(self.ready, ready_timeout_s)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """kill -9, as a crash."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(30)


@contextmanager
def api_service(package: str, env: dict, log_file: Path) -> Iterator[str]:
    """One of our APIs as a real process; yields its base URL once /health/ready answers 200."""
    service = ApiProcess(package, env, log_file)
    try:
        service.start()
        yield service.url
    finally:
        service.stop()


@pytest.fixture
def query_client(backends, fresh_keyspace, tmp_path) -> Iterator[httpx.Client]:
    """The query API as a real uvicorn process (the path decoding of percent-encoded
    cookies is the server's, so it is tested through a real server)."""
    env = {
        "CASSANDRA_CONTACT_POINTS": ",".join(backends.cassandra_hosts),
        "CASSANDRA_PORT": str(backends.cassandra_port),
        "CASSANDRA_KEYSPACE": fresh_keyspace,
    }
    with api_service("query_api", env, tmp_path / "query-api.log") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
