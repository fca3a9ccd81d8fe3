"""The stream job on a real Flink cluster, and the APIs as real processes, for end-to-end tests."""

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
from harness.local_stack.stack import Stack
from harness.local_stack.stream_job import ALIVE, StreamJob
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
class SubmittedJob:
    """One test's stream job on the session's Flink cluster (harness/local_stack/stream_job.py)."""

    job: StreamJob
    stack: Stack

    @property
    def rest_url(self) -> str:
        return self.job.rest_url

    @property
    def job_id(self) -> str:
        job_id = self.job.job_id
        assert job_id is not None
        return job_id

    def checkpoints_completed(self) -> int:
        answer = httpx.get(f"{self.rest_url}/jobs/{self.job_id}/checkpoints", timeout=5).json()
        return int(answer["counts"]["completed"])

    def restored_from(self) -> str | None:
        """The checkpoint the job's current run restored (None: it started from scratch)."""
        latest = httpx.get(f"{self.rest_url}/jobs/{self.job_id}/checkpoints", timeout=5).json()["latest"]
        restored = latest.get("restored")
        return restored["external_path"] if restored else None

    def kill_taskmanager(self) -> None:
        """kill -9 the TaskManager that runs the job (the session cluster has one)."""
        assert self.stack.kill("flink-taskmanager-1")

    def start_taskmanager(self) -> None:
        """Start it again: the JobManager restarts the job on it from its latest checkpoint."""
        taskmanager = self.stack.get("flink-taskmanager-1")
        taskmanager.start()
        taskmanager.wait_ready(180)  # a loaded machine took 100 s to start one
        self.job.wait_running()

    def log_tail(self, lines: int = 60) -> str:
        return self.stack.get("flink-jobmanager").log_tail(lines) + "\n" + self.job.failure()


@pytest.fixture(scope="session")
def flink_cluster(backends) -> Stack:
    """The session's Flink cluster (a JobManager and a TaskManager) beside its Kafka and Cassandra."""
    if backends.stack is None:
        pytest.skip("the stream job runs on the local stack's Flink cluster")
    backends.stack.up(["flink"], submit_job=False)
    return backends.stack


@pytest.fixture
def start_stream_job(flink_cluster, tmp_path) -> Iterator[Callable[..., SubmittedJob]]:
    """Factory: submit the job on (topic, keyspace) at parallelism 1, as `make job-submit`
    does; waits until every task runs. Cancelled at the end of the test."""
    jobs: list[SubmittedJob] = []

    def start(topic: str, keyspace: str, **extra_env: str) -> SubmittedJob:
        env = {"KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": f"job-{topic}", "CASSANDRA_KEYSPACE": keyspace, **extra_env}
        job = StreamJob(flink_cluster.settings, env=env, ledger=tmp_path / f"job-{len(jobs)}.json", parallelism=1)
        job.submit()
        submitted = SubmittedJob(job, flink_cluster)
        jobs.append(submitted)
        try:
            job.wait_running()
        except Exception as exc:
            raise AssertionError(f"stream job not running: {exc}\n{submitted.log_tail()}") from None
        return submitted

    yield start
    for submitted in jobs:
        if submitted.job.state() in ALIVE:
            submitted.job.cancel()


@pytest.fixture
def ingest_client(backends, fresh_topic) -> Iterator[TestClient]:
    # These tests check what the pipeline makes of acknowledged tags, not the
    # SPEC's answer deadline (the replay tool and the benchmarks measure that):
    # the first tag to a new topic, on a loaded machine, took 2 s and more.
    settings = IngestSettings(kafka_bootstrap_servers=backends.kafka_bootstrap, kafka_topic=fresh_topic,
                              ingest_ack_timeout_ms=10_000)
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
def ingest_url(backends, fresh_topic, tmp_path) -> Iterator[str]:
    """The ingest API as a real uvicorn process on the test topic."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": backends.kafka_bootstrap, "KAFKA_TOPIC": fresh_topic}
    with api_service("ingest_api", env, tmp_path / "ingest-api.log") as url:
        yield url


@pytest.fixture
def query_client(backends, fresh_keyspace, tmp_path) -> Iterator[httpx.Client]:
    """The query API as a real uvicorn process (the path decoding of percent-encoded
    cookies is the server's, so it is tested through a real server)."""
    env = {
        "CASSANDRA_CONTACT_POINTS": ",".join(backends.cassandra_hosts),
        "CASSANDRA_PORT": str(backends.cassandra_port),
        "CASSANDRA_KEYSPACE": fresh_keyspace,
        # /pipeline reads nothing here: its defaults would read a `make up` stack beside the tests.
        "QUERY_INGEST_METRICS_URL": "",
        "QUERY_FLINK_REST_URL": "",
    }
    with api_service("query_api", env, tmp_path / "query-api.log") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
