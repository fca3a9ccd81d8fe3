"""What a submit restores (the stack's ledger), the `flink run` command line,
and the cluster's configuration; no processes started."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_jobs.launch import ENTRY_MODULE, submit_command, submitted_job_id
from harness.local_stack.config import StackSettings
from harness.local_stack.flink import cluster_config, flink_home
from harness.local_stack.stream_job import JobStateError, StreamJob, newest_checkpoint

JOB = "0123456789abcdef0123456789abcdef"


class OfflineJob(StreamJob):
    """A StreamJob whose cluster knows no job and whose cube holds what the test says."""

    def __init__(self, settings: StackSettings, cube_empty: bool) -> None:
        super().__init__(settings)
        self.cube_empty = cube_empty

    def state(self) -> str | None:
        return None

    def cube_is_empty(self) -> bool:
        return self.cube_empty


def checkpoint(settings: StackSettings, job: str, n: int, complete: bool = True) -> Path:
    path = settings.run_dir / "flink" / "checkpoints" / job / f"chk-{n}"
    path.mkdir(parents=True)
    if complete:
        (path / "_metadata").write_bytes(b"x")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(run_dir=tmp_path)


def test_newest_checkpoint_is_the_highest_completed_id(settings: StackSettings) -> None:
    checkpoint(settings, JOB, 9)
    newest = checkpoint(settings, JOB, 10)
    checkpoint(settings, JOB, 11, complete=False)  # in progress: no _metadata
    assert newest_checkpoint(settings.run_dir / "flink" / "checkpoints" / JOB) == newest


def test_a_new_deployment_restores_nothing(settings: StackSettings) -> None:
    assert OfflineJob(settings, cube_empty=True).restore_point() is None


def test_the_stop_savepoint_wins_over_the_checkpoints(settings: StackSettings) -> None:
    job = OfflineJob(settings, cube_empty=False)
    checkpoint(settings, JOB, 3)
    job._record(job_id=JOB, restored_from=None, stopped_with="file:/sp/savepoint-1")
    point = job.restore_point()
    assert point is not None and point.path == "file:/sp/savepoint-1" and not point.claim


def test_after_a_crash_the_newest_checkpoint_is_claimed(settings: StackSettings) -> None:
    job = OfflineJob(settings, cube_empty=False)
    newest = checkpoint(settings, JOB, 7)
    job._record(job_id=JOB, restored_from="file:/sp/savepoint-1", stopped_with=None)
    point = job.restore_point()
    assert point is not None and point.path == str(newest) and point.claim


def test_a_job_without_checkpoints_falls_back_to_what_it_was_restored_from(settings: StackSettings) -> None:
    job = OfflineJob(settings, cube_empty=False)
    job._record(job_id=JOB, restored_from="file:/sp/savepoint-1", claimed=False, stopped_with=None)
    point = job.restore_point()
    assert point is not None and point.path == "file:/sp/savepoint-1" and not point.claim


def test_no_state_over_a_cube_with_buckets_is_refused(settings: StackSettings) -> None:
    with pytest.raises(JobStateError, match="refusing to start the stream job empty"):
        OfflineJob(settings, cube_empty=False).submit()


def test_submit_command_is_flink_run_of_the_entry_module() -> None:
    home, python = Path("/opt/flink"), Path("/venv/bin/python")
    argv = submit_command(home, python, jobmanager="127.0.0.1:8091")
    assert argv[:3] == ["/opt/flink/bin/flink", "run", "--detached"]
    assert argv[argv.index("--pyModule") + 1] == ENTRY_MODULE
    assert argv[argv.index("--pyExecutable") + 1] == argv[argv.index("--pyClientExecutable") + 1] == str(python)
    assert "--fromSavepoint" not in argv
    restored = submit_command(home, python, jobmanager="h:1", restore_from="file:/c/chk-3", claim=True, parallelism=2)
    assert restored[restored.index("--fromSavepoint") + 1 :] == ["file:/c/chk-3", "--claimMode", "claim",
                                                                   "--parallelism", "2"]


def test_the_job_id_is_read_from_flink_runs_output() -> None:
    assert submitted_job_id(f"noise\nJob has been submitted with JobID {JOB}\n") == JOB
    assert submitted_job_id("org.apache.flink.client.program.ProgramAbortException") is None


def test_the_cluster_runs_the_adaptive_scheduler_with_one_parallelism(settings: StackSettings) -> None:
    config = cluster_config(settings, flink_home())
    assert config["jobmanager.scheduler"] == "adaptive"
    assert config["parallelism.default"] == str(settings.kafka_topic_partitions)
    assert config["jobmanager.memory.heap.size"] == settings.flink_jobmanager_heap
    assert config["taskmanager.memory.task.heap.size"] == settings.flink_taskmanager_heap
    assert config["execution.checkpointing.dir"] == (settings.run_dir / "flink" / "checkpoints").as_uri()
    shifted = settings.shifted(10_000)
    assert cluster_config(shifted, flink_home())["rest.port"] == str(settings.flink_rest_port + 10_000)
    assert cluster_config(shifted, flink_home())["jobmanager.rpc.port"] == str(settings.flink_rpc_port + 10_000)


@pytest.mark.parametrize(("taskmanagers", "slots", "bound", "expected"), [
    (1, 1, None, 1),  # the default: one TaskManager, one slot
    (3, 1, None, 3),
    (8, 1, None, 4),  # never more than the topic's partitions
    (0, 1, None, 1),  # at least 1 (it waits for a slot)
    (3, 2, 3, 3),  # FLINK_PARALLELISM caps it
])
def test_the_job_runs_on_the_slots_there_are(taskmanagers: int, slots: int, bound: int | None, expected: int) -> None:
    settings = StackSettings(flink_task_slots=slots, flink_parallelism=bound)
    assert settings.job_slots(taskmanagers) == expected
