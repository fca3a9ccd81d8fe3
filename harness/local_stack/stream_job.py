"""The stream job's lifecycle on the local Flink cluster: submit, status,
savepoint, stop with a savepoint, cancel and upgrade (docs/OPERATIONS.md).

Submission is Flink's own CLI, `flink run` with the command line of
flink_jobs/launch.py. What to restore is decided here, from a small ledger in
<run_dir>/flink/job.json that records the job this stack submitted and how it
last stopped:

1. the savepoint it was stopped with (`job-stop`, `job-upgrade`), else
2. its newest retained checkpoint (after a crash, a cancel or `make down`),
   which the new job claims, else
3. what it was itself restored from, if it never completed a checkpoint.

Without any of these the job starts empty only when the cube holds no bucket
yet (a new deployment); otherwise the submission is refused, since replaying
a partly retained topic would write partial totals over complete ones. An
explicit FROM path or --start-empty overrides the choice.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_jobs.launch import JOB_NAME, submit_command, submitted_job_id
from harness.local_stack import artifacts, flink
from harness.local_stack.config import REPO_ROOT, StackSettings
from harness.local_stack.flink import checkpoint_dir, conf_dir, flink_home, rest_url, savepoint_dir
from harness.local_stack.process import StackError, tail_file

log = logging.getLogger(__name__)

# States in which a job holds (or is about to hold) its slots.
ALIVE = ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING", "FAILING", "CANCELLING")
SUBMIT_TIMEOUT_S = 180.0


class JobStateError(StackError):
    """The job cannot be submitted, restored or stopped as asked."""


@dataclass(frozen=True)
class RestorePoint:
    path: str
    claim: bool  # the job's own retained checkpoint: the new job takes it over
    why: str


def newest_checkpoint(job_checkpoints: Path) -> Path | None:
    """The completed checkpoint with the highest id (chk-N with its _metadata) of one job."""
    done = [p.parent for p in job_checkpoints.glob("chk-*/_metadata")]
    return max(done, key=lambda p: int(p.name.removeprefix("chk-")), default=None)


class StreamJob:
    """The job as this stack submitted it: `ledger` remembers its id and how it stopped."""

    def __init__(self, settings: StackSettings, env: Mapping[str, str] | None = None,
                 ledger: Path | None = None, parallelism: int | None = None) -> None:
        self.settings = settings
        self.extra_env = dict(env or {})
        self.ledger_path = ledger or settings.run_dir / "flink" / "job.json"
        self.parallelism = parallelism
        self.rest_url = rest_url(settings)

    # --- the ledger ----------------------------------------------------------------
    def ledger(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.ledger_path.read_text()))
        except FileNotFoundError:
            return {}

    def _record(self, **changes: Any) -> None:
        record = {**self.ledger(), **changes}
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.ledger_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(self.ledger_path)

    @property
    def job_id(self) -> str | None:
        return self.ledger().get("job_id")

    # --- the cluster's view ------------------------------------------------------------
    def _rest(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        return flink.rest(self.settings, method, path, body, timeout)

    def state(self) -> str | None:
        """The recorded job's state on the cluster (None: none recorded, or the cluster does not know it)."""
        job_id = self.job_id
        if job_id is None:
            return None
        try:
            return str(self._rest("GET", f"/jobs/{job_id}", timeout=3)["state"])
        except StackError:
            return None

    def running(self) -> bool:
        """True when the recorded job runs with every task RUNNING."""
        job_id = self.job_id
        if job_id is None:
            return False
        try:
            jobs = self._rest("GET", "/jobs/overview", timeout=3).get("jobs", [])
        except StackError:
            return False
        for job in jobs:
            tasks = job.get("tasks", {})
            if job.get("jid") == job_id and job.get("state") == "RUNNING" and tasks.get("total", 0) > 0 \
                    and tasks.get("running") == tasks.get("total"):
                return True
        return False

    def parallelism_now(self) -> int:
        """The highest parallelism among the running job's vertices."""
        plan = self._rest("GET", f"/jobs/{self.job_id}")
        return max(int(v["parallelism"]) for v in plan["vertices"])

    def set_parallelism(self, parallelism: int) -> bool:
        """Set the running job's parallelism (every vertex's upper bound; the adaptive
        scheduler rescales it when the slots are there). True if it changed."""
        job_id = self._alive_job()
        requirements = self._rest("GET", f"/jobs/{job_id}/resource-requirements")
        wanted = {vertex: {"parallelism": {"lowerBound": 1, "upperBound": parallelism}} for vertex in requirements}
        if requirements == wanted:
            return False
        self._rest("PUT", f"/jobs/{job_id}/resource-requirements", wanted)
        return True

    def failure(self) -> str:
        """The root exception the cluster reports for the recorded job ('' if none)."""
        try:
            exceptions = self._rest("GET", f"/jobs/{self.job_id}/exceptions?maxExceptions=1")
        except StackError as exc:
            return str(exc)
        history = exceptions.get("exceptionHistory", {}).get("entries", [])
        text = history[0].get("stacktrace", "") if history else exceptions.get("root-exception") or ""
        return "\n".join(str(text).splitlines()[:12])

    # --- what to restore -----------------------------------------------------------------
    def restore_point(self) -> RestorePoint | None:
        ledger = self.ledger()
        if ledger.get("stopped_with"):
            return RestorePoint(ledger["stopped_with"], False, f"the savepoint job {ledger.get('job_id')} stopped with")
        if ledger.get("job_id"):
            newest = newest_checkpoint(checkpoint_dir(self.settings) / ledger["job_id"])
            if newest is not None:
                return RestorePoint(str(newest), True, f"the newest checkpoint of job {ledger['job_id']}")
        if ledger.get("restored_from"):
            return RestorePoint(ledger["restored_from"], bool(ledger.get("claimed")),
                                f"what job {ledger.get('job_id')} was restored from (it completed no checkpoint)")
        return None

    def cube_is_empty(self) -> bool:
        from cql import apply as schema

        s = self.settings
        keyspace = self.extra_env.get("CASSANDRA_KEYSPACE", s.cassandra_keyspace)
        with schema.session_for(s.cassandra_contact_points, s.cassandra_port, keyspace) as session:
            return session.execute("SELECT bucket_ms FROM aggregate_cells LIMIT 1").one() is None

    # --- lifecycle -------------------------------------------------------------------
    def ensure_running(self, timeout: float = SUBMIT_TIMEOUT_S) -> None:
        """Submit the job unless the recorded one is alive on the cluster; wait until it runs."""
        if self.state() in ALIVE:
            log.info("flink-job: job %s is %s", self.job_id, self.state())
        else:
            self.submit()
        self.wait_running(timeout)

    def submit(self, restore_from: str | None = None, start_empty: bool = False) -> str:
        """`flink run` the job; returns its id. restore_from overrides the ledger's choice."""
        if self.state() in ALIVE:
            raise JobStateError(f"job {self.job_id} is {self.state()}: stop or cancel it first (`make job-stop`)")
        point = RestorePoint(restore_from, False, "given") if restore_from else self.restore_point()
        if point is None and not start_empty and not self.cube_is_empty():
            raise JobStateError(
                "refusing to start the stream job empty: the cube already holds buckets, and this stack has no "
                f"checkpoint or savepoint of the job (ledger {self.ledger_path}). Replaying the topic would write "
                "partial totals over complete ones for every minute whose tags Kafka no longer retains. "
                "Submit from a savepoint (`make job-submit FROM=<path>`), or, knowing that, `make job-submit "
                "ARGS=--start-empty`."
            )
        s = self.settings
        argv = submit_command(
            flink_home(), REPO_ROOT / ".venv-flink" / "bin" / "python",
            jobmanager=f"{s.host}:{s.flink_rest_port}",
            restore_from=point.path if point else None,
            claim=point.claim if point else False,
            parallelism=self.parallelism,
        )
        env = {
            **os.environ,
            **s.service_env(),
            "PYTHONPATH": str(REPO_ROOT),
            "FLINK_CONF_DIR": str(conf_dir(s)),
            "FLINK_LOG_DIR": str(s.run_dir / "logs"),
            "FLINK_IDENT_STRING": "flink-job-client",
            "FLINK_CONNECTOR_DIR": str(artifacts.resolve("flink-connectors", s)),
            "FLINK_SINKS_JAR": str(artifacts.build_sinks(s)),
            "START_WITHOUT_STATE": "true" if point is None else "false",
            **self.extra_env,
        }
        log.info("flink-job: submitting %s (restore: %s)", JOB_NAME, f"{point.path}, {point.why}" if point else "none")
        log_file = s.run_dir / "logs" / "flink-job-submit.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            done = subprocess.run(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=SUBMIT_TIMEOUT_S, check=False)
        output = tail_file(log_file, 60)
        output = output[output.rfind("\n=== "):]
        job_id = submitted_job_id(output)
        if done.returncode != 0 or job_id is None:
            reason = next((line for line in output.splitlines() if "refusing" in line), "")
            raise JobStateError(f"flink run failed (exit {done.returncode}){': ' + reason if reason else ''}\n"
                                f"{output[-3000:]}")
        from flink_jobs.config import JobSettings

        job_variables = {name.upper() for name in JobSettings.model_fields}
        self._record(job_id=job_id, restored_from=point.path if point else None,
                     environment={k: v for k, v in env.items() if k in job_variables},
                     claimed=point.claim if point else False, stopped_with=None,
                     submitted_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        log.info("flink-job: submitted job %s", job_id)
        return job_id

    def wait_running(self, timeout: float = SUBMIT_TIMEOUT_S) -> float:
        """Seconds until every task of the recorded job runs; raises JobStateError when it fails."""
        started = time.monotonic()
        while not self.running():
            state = self.state()
            if state in ("FAILED", "CANCELED", "FINISHED", "SUSPENDED"):
                raise JobStateError(f"job {self.job_id} is {state}:\n{self.failure()}")
            if time.monotonic() - started > timeout:
                raise JobStateError(f"job {self.job_id} not running after {timeout:.0f} s (state {state}):\n"
                                    f"{self.failure()}")
            time.sleep(0.5)
        return time.monotonic() - started

    def _alive_job(self) -> str:
        job_id, state = self.job_id, self.state()
        if job_id is None or state not in ALIVE:
            raise JobStateError(f"no running job to act on (recorded: {job_id}, state {state})")
        return job_id

    def _await_savepoint(self, job_id: str, trigger: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._rest("GET", f"/jobs/{job_id}/savepoints/{trigger}")
            if status.get("status", {}).get("id") == "COMPLETED":
                operation = status.get("operation", {})
                if "location" in operation:
                    return str(operation["location"])
                raise JobStateError(f"savepoint of job {job_id} failed: {str(operation)[:2000]}")
            time.sleep(0.5)
        raise JobStateError(f"savepoint of job {job_id} not done after {timeout:.0f} s")

    def savepoint(self, timeout: float = 120.0) -> str:
        """A savepoint of the running job (it keeps running); returns its path."""
        job_id = self._alive_job()
        trigger = self._rest("POST", f"/jobs/{job_id}/savepoints",
                             {"target-directory": savepoint_dir(self.settings).as_uri(), "cancel-job": False})
        path = self._await_savepoint(job_id, trigger["request-id"], timeout)
        self._record(last_savepoint=path)
        return path

    def stop(self, timeout: float = 120.0) -> str:
        """Stop the job with a savepoint (sources first, then a final snapshot); returns its path."""
        job_id = self._alive_job()
        trigger = self._rest("POST", f"/jobs/{job_id}/stop",
                             {"targetDirectory": savepoint_dir(self.settings).as_uri(), "drain": False})
        path = self._await_savepoint(job_id, trigger["request-id"], timeout)
        self._record(stopped_with=path, last_savepoint=path)
        return path

    def cancel(self) -> str:
        """Cancel the job; its retained checkpoints stay, and the next submit resumes from the newest."""
        job_id = self._alive_job()
        self._rest("PATCH", f"/jobs/{job_id}?mode=cancel")
        deadline = time.monotonic() + 60
        while self.state() in ALIVE and time.monotonic() < deadline:
            time.sleep(0.3)
        return job_id

    def upgrade(self) -> tuple[str, str]:
        """Stop with a savepoint, then submit the working tree's job from it; returns (savepoint, new id).

        A change that cannot map the savepoint's state fails the new job, and the
        error says which operator; the old job stays stopped and its savepoint is kept.
        """
        savepoint = self.stop()
        try:
            job_id = self.submit()
            self.wait_running()
        except StackError as exc:
            raise JobStateError(f"{exc}\n\nThe old job stopped with savepoint {savepoint} (kept); fix the job and "
                                "`make job-submit` resumes from it.") from exc
        return savepoint, job_id
