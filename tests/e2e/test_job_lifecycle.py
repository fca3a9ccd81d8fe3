"""The stream job's lifecycle on the Flink cluster, each against the oracle of
the log (docs/OPERATIONS.md):

- a rescale from one TaskManager to two and back while tags arrive: the
  adaptive scheduler restarts the job at each new parallelism from its latest
  checkpoint, and nothing is lost or counted twice;
- an upgrade through a savepoint: stop with a savepoint, tags arrive while the
  job is stopped, a compatible change (another emit interval) resumes from it
  with every answer exact; an incompatible one (another maximum parallelism,
  so the keyed state cannot be mapped) fails loudly, and the savepoint stays
  the next submit's restore point.

TaskManager kills and JobManager kills are tests/e2e/test_job_crash.py and
tests/faults/test_process_kills.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.local_stack.flink import conf_dir
from harness.local_stack.stream_job import ALIVE, JobStateError
from tests.e2e.conftest import SubmittedJob, poll_until
from tests.e2e.test_pipeline import assert_answers_become_exact, post_all, seeded_stream

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.faults]


def parallelism(job: SubmittedJob) -> int:
    vertices = httpx.get(f"{job.rest_url}/jobs/{job.job_id}", timeout=5).json()["vertices"]
    return max(int(v["parallelism"]) for v in vertices)


def next_checkpoint(job: SubmittedJob) -> None:
    before = job.checkpoints_completed()
    poll_until(lambda: job.checkpoints_completed() > before, timeout_s=90)


def test_a_rescale_to_two_taskmanagers_and_back_loses_and_duplicates_nothing(
    flink_cluster, start_stream_job, ingest_client, query_client, fresh_topic, fresh_keyspace, kafka_bootstrap
):
    job = start_stream_job(fresh_topic, fresh_keyspace, FLINK_CHECKPOINT_INTERVAL_MS="1000")
    tags = seeded_stream()
    first, second, third = tags[:800], tags[800:1600], tags[1600:]
    try:
        acked = post_all(ingest_client, first)
        next_checkpoint(job)
        # Up: a second TaskManager, and the job's parallelism raised to 2.
        flink_cluster.scale(2)
        job.job.set_parallelism(2)
        acked += post_all(ingest_client, second[:400])  # while it rescales
        poll_until(lambda: parallelism(job) == 2 and job.job.running(), timeout_s=180, interval_s=0.5)
        acked += post_all(ingest_client, second[400:])
        next_checkpoint(job)
        # Down again: parallelism 1, the second TaskManager stopped.
        job.job.set_parallelism(1)
        flink_cluster.scale(1)
        acked += post_all(ingest_client, third[:300])
        poll_until(lambda: parallelism(job) == 1 and job.job.running(), timeout_s=180, interval_s=0.5)
        acked += post_all(ingest_client, third[300:])
    finally:
        flink_cluster.scale(1)
    assert_answers_become_exact(query_client, kafka_bootstrap, fresh_topic, tags, acked)


def conf_with_max_parallelism(flink_cluster, tmp_path: Path, max_parallelism: int) -> Path:
    """A copy of the cluster's client configuration that fixes the job's maximum parallelism."""
    source = conf_dir(flink_cluster.settings)
    target = tmp_path / "flink-conf-max-parallelism"
    target.mkdir()
    for f in source.iterdir():
        if f.is_file():
            (target / f.name).write_bytes(f.read_bytes())
    with (target / "config.yaml").open("a") as conf:
        conf.write(f'"pipeline.max-parallelism": "{max_parallelism}"\n')
    return target


def test_an_upgrade_through_a_savepoint_resumes_exactly_and_an_incompatible_one_is_refused(
    flink_cluster, start_stream_job, ingest_client, query_client, fresh_topic, fresh_keyspace, kafka_bootstrap,
    tmp_path,
):
    job = start_stream_job(fresh_topic, fresh_keyspace)
    tags = seeded_stream()
    first, second, third = tags[:800], tags[800:1600], tags[1600:]
    acked = post_all(ingest_client, first)
    savepoint = job.job.stop()
    acked += post_all(ingest_client, second)  # the log takes them while the job is stopped

    # Incompatible: the keyed state was written with the derived maximum
    # parallelism (128); a job that fixes another cannot map it.
    job.job.extra_env["FLINK_CONF_DIR"] = str(conf_with_max_parallelism(flink_cluster, tmp_path, 64))
    with pytest.raises(JobStateError) as refused:
        job.job.submit()
        job.job.wait_running(timeout=120)
    why = str(refused.value).lower()
    assert "rollback" in why or "maximum parallelism" in why, str(refused.value)[:3000]
    if job.job.state() in ALIVE:  # still restarting under its restart strategy
        job.job.cancel()
    point = job.job.restore_point()
    assert point is not None and point.path == savepoint, (point, savepoint)

    # Compatible: another emit interval, the same graph and state.
    del job.job.extra_env["FLINK_CONF_DIR"]
    job.job.extra_env["CUBE_EMIT_INTERVAL_MS"] = "2000"
    job.job.submit()
    job.job.wait_running()
    assert job.restored_from() == savepoint or Path(str(job.restored_from()).removeprefix("file:")) == Path(
        savepoint.removeprefix("file:")), (job.restored_from(), savepoint)
    acked += post_all(ingest_client, third)
    assert_answers_become_exact(query_client, kafka_bootstrap, fresh_topic, tags, acked)
