"""The job refuses to start without state unless START_WITHOUT_STATE is set,
and sees the restore path `flink run --fromSavepoint` gives it. Runs in the
job's own virtualenv (PyFlink); builds no graph."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyflink")

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment

from flink_jobs.config import JobSettings
from flink_jobs.user_tags_job import NoStateError, build, restore_path


def test_without_a_restore_path_the_job_refuses(tmp_path: Path) -> None:
    (tmp_path / "connector.jar").write_bytes(b"")
    (tmp_path / "operators.jar").write_bytes(b"")
    settings = JobSettings(flink_connector_dir=tmp_path, flink_sinks_jar=tmp_path / "operators.jar")
    assert not settings.start_without_state
    with pytest.raises(NoStateError, match="refusing to start the stream job without state"):
        build(settings)


def test_the_restore_path_of_the_submission_is_seen() -> None:
    config = Configuration()
    config.set_string("execution.state-recovery.path", "file:/checkpoints/job/chk-7")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    assert restore_path(env) == "file:/checkpoints/job/chk-7"
