"""How the stream job is submitted to a Flink cluster: the one definition of
its `flink run` command line.

The local stack (harness/local_stack/stream_job.py), the tests and
docs/OPERATIONS.md use it; the Kubernetes FlinkDeployment states the same
entry point in the operator's fields (k8s/flink-deployment.yaml). Everything
else the job reads comes from its environment (flink_jobs/config.py), which
the Python driver started by `flink run` inherits.
"""

from __future__ import annotations

import re
from pathlib import Path

JOB_NAME = "allezon-user-tags"
ENTRY_MODULE = "flink_jobs.user_tags_job"

_SUBMITTED = re.compile(r"JobID ([0-9a-f]{32})")


def submit_command(
    flink_home: Path,
    python: Path,
    *,
    jobmanager: str,
    restore_from: str | None = None,
    claim: bool = False,
    parallelism: int | None = None,
) -> list[str]:
    """`flink run` of the job, detached, against the JobManager at
    `jobmanager` (host:rest-port), with `python` (the job's virtualenv) as the
    driver's and the workers' interpreter.

    restore_from: a checkpoint or savepoint to restore; claim=True lets the
    job own it (and delete it once subsumed): for the job's own retained
    checkpoints, never for a savepoint someone keeps.
    """
    argv = [
        str(flink_home / "bin" / "flink"), "run", "--detached",
        "--jobmanager", jobmanager,
        "--pyModule", ENTRY_MODULE,
        "--pyClientExecutable", str(python),
        "--pyExecutable", str(python),
    ]
    if restore_from:
        argv += ["--fromSavepoint", restore_from, "--claimMode", "claim" if claim else "no_claim"]
    if parallelism is not None:
        argv += ["--parallelism", str(parallelism)]
    return argv


def submitted_job_id(output: str) -> str | None:
    """The job id `flink run --detached` printed ("Job has been submitted with JobID ...")."""
    found = _SUBMITTED.search(output)
    return found.group(1) if found else None
