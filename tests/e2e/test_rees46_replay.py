"""End to end with real shopper events: the REES46 head file (tests/data,
17,269 views and purchases) replayed by the replay runner through a real
ingest API -> Kafka -> the Flink job -> Cassandra -> a real query API, with
the reference query mix (debug mode, expected answer in the body) while it
streams, then every bucket of the file (both actions, every filter subset)
and a sample of profiles checked until exact or the SPEC deadline.

Also a short smoke run of the synthetic reference workload through the same
pipeline.

The queries wait longer than the SPEC's deadlines before asking (30 s after a
tag's 204 instead of 10 s, 90 s after a bucket's last 204 instead of 60 s):
this test is about exact answers, and the test machine is a shared 2-core box
where the stream job sometimes lags more than 10 s. The SPEC's deadlines are
what `allezon-replay` and `make bench` hold the platform to; the freshness the
run measured is printed (pytest -s).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.replay.rees46 import Rees46Source
from harness.replay.report import RunReport
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "rees46-2019-10-head.csv"
# A 503 is within the SPEC when the broker cannot acknowledge in time, and on
# a busy 2-core machine it does happen at a few hundred tags/s. A dropped
# tag's cookie and bucket are never asked about; everything else must be exact.
MAX_DROPS = 0.25


PROFILE_AGE_S = 30.0
AGGREGATE_AGE_S = 90.0


def replay(source, ingest: str, query: str, rate: float, tags: int | None = None, **verify) -> RunReport:
    async def go() -> RunReport:
        config = RunnerConfig(base_url=ingest, query_url=query, progress=False, seed=46,
                              profile_age_s=PROFILE_AGE_S, aggregate_age_s=AGGREGATE_AGE_S)
        async with Runner(source, config) as runner:
            await runner.run_phase(rate, tags=tags or source.total, name="stream")
            await runner.verify(**verify)
            return runner.report()
    return asyncio.run(go())


def assert_exact(report: RunReport, *, max_drop_ratio: float) -> None:
    stream, final = report.phases
    for phase in (stream, final):
        assert phase.profiles.wrong == 0, phase.wrong_examples
        assert phase.aggregates.wrong == 0, phase.wrong_examples
    dropped, sent = stream.tags.dropped, stream.tags.sent
    assert dropped <= max_drop_ratio * sent, stream.tags.drop_reasons


def test_rees46_replay_every_answer_exact(start_stream_job, ingest_url, query_client, fresh_topic, fresh_keyspace):
    start_stream_job(fresh_topic, fresh_keyspace)
    source = Rees46Source(DATA)
    report = replay(source, ingest_url, str(query_client.base_url), rate=300, profiles=400, aggregates=60)
    stream, final = report.phases
    print(f"\nrees46 replay: {stream.tags} {stream.latency_ms} freshness {stream.freshness_s}\n"
          f"final checks: {final.profiles} {final.aggregates} {final.seconds_until_exact}")
    assert_exact(report, max_drop_ratio=MAX_DROPS)
    assert stream.tags.sent == 17_269
    # The reference mix ran while streaming (profiles of tags >= 30 s old)...
    assert stream.profiles.correct >= 200
    # ...and afterwards every bucket of the file, both actions, all 8 filter subsets, plus samples.
    assert final.aggregates.correct >= 16 + 40
    assert final.profiles.correct >= 300
    assert stream.freshness_s.profile.count >= 10


def test_synthetic_smoke_run_is_exact(start_stream_job, ingest_url, query_client, fresh_topic, fresh_keyspace):
    """3,000 reference-shaped tags at 300/s (event time 40 ms per tag: 2 minutes, 2 closed buckets),
    then every bucket and 150 profiles checked."""
    start_stream_job(fresh_topic, fresh_keyspace)
    workload = Workload(seed=12, step_ms=40)
    report = replay(workload, ingest_url, str(query_client.base_url), rate=300, tags=3000, profiles=150,
                    aggregates=20)
    assert_exact(report, max_drop_ratio=MAX_DROPS)
    stream, final = report.phases
    assert stream.tags.accepted >= 0.75 * 3000
    assert final.profiles.correct >= 100
    if stream.tags.dropped == 0:  # a bucket with a 503'd tag is never asked about
        assert final.aggregates.correct >= 16
