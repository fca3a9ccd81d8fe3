"""Exactly-once effect of the stream job: kill -9 the TaskManager that runs it
mid-stream, keep posting while it is down, start it again: the JobManager
restarts the job on it from its newest checkpoint, Kafka is replayed from the
checkpointed offsets, and every profile and aggregate answer equals the
oracle: nothing lost, nothing counted twice (the replayed tags had already
been written before the crash).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import poll_until
from tests.e2e.test_pipeline import assert_answers_become_exact, post_all, seeded_stream

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.faults]


def test_killed_taskmanager_resumes_the_job_from_its_checkpoint_exactly_once(
    start_stream_job, ingest_client, query_client, fresh_topic, fresh_keyspace, kafka_bootstrap
):
    job = start_stream_job(fresh_topic, fresh_keyspace, FLINK_CHECKPOINT_INTERVAL_MS="1000")
    tags = seeded_stream()
    first, second, third = tags[:1000], tags[1000:1800], tags[1800:]

    acked = post_all(ingest_client, first)
    # Let a checkpoint complete that covers part of the stream...
    before = job.checkpoints_completed()
    poll_until(lambda: job.checkpoints_completed() > before, timeout_s=60)
    # ...then crash in the middle of the next part, with writes in flight.
    acked += post_all(ingest_client, second[:400])
    job.kill_taskmanager()
    acked += post_all(ingest_client, second[400:] + third)  # the log takes them while the job is down

    restarted = time.monotonic()
    job.start_taskmanager()
    assert job.restored_from(), "the job did not restore a checkpoint"
    # The restored job checkpoints again.
    before_restart = job.checkpoints_completed()
    poll_until(lambda: job.checkpoints_completed() > before_restart, timeout_s=90)

    assert_answers_become_exact(query_client, kafka_bootstrap, fresh_topic, tags, acked)
    print(f"\nstream job recovery: every answer exact {time.monotonic() - restarted:.1f} s after the restart began")
