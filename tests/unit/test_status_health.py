"""`make status`'s rates, lag and freshness lines (harness/local_stack/health.py)
from two fake GET /pipeline answers and query API /metrics readings."""

from __future__ import annotations

import pytest

from harness.local_stack import health
from harness.local_stack.config import StackSettings


def answer(sampled_at_ms: int, accepted: int, refused: int, lag: int | None) -> dict:
    return {
        "sampled_at_ms": sampled_at_ms,
        "ingest": {"tags_total": {"204": accepted, "400": refused, "503": 0}, "in_flight": 2,
                   "newest_tag_time_ms": 1647951300000},
        "job": {"name": "j", "state": "RUNNING", "restarts": 1, "checkpoints_completed": 12, "checkpoints_failed": 0,
                "last_checkpoint_age_s": 3.2, "kafka_lag_records": lag},
        "freshness": {"newest_bucket_ms": 1647951180000, "bucket_lag_s": 60.0, "profile_lag_s": 0.5},
    }


def test_rates_lag_and_freshness(monkeypatch: pytest.MonkeyPatch) -> None:
    async def two_samples(settings: StackSettings) -> tuple:
        return ([answer(1_000, 100, 1, 40), answer(3_000, 2_100, 5, 500)],
                [{"2xx": 10.0, "4xx": 1.0}, {"2xx": 30.0, "4xx": 1.0}], 2.0)

    monkeypatch.setattr(health, "_two_samples", two_samples)
    lines = health.health_lines(StackSettings())
    assert lines[1] == ("  ingest     accepted 1000.0 tags/s, refused 2.0/s (400: 2.0); 2 in flight; "
                        "newest tag 2022-03-22T12:15:00")
    assert lines[2] == "  query      10.0 requests/s (2xx 10.0; probes left out)"
    assert lines[3] == ("  flink-job  RUNNING, restarts 1, checkpoints 12 completed / 0 failed, last 3 s ago; "
                        "Kafka lag 500 records")
    assert lines[4] == ("  freshness  newest bucket 2022-03-22T12:13:00, 60.0 s behind the newest tag (event time); "
                        "profiles ~0.50 s behind")


def test_components_that_do_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = {"sampled_at_ms": 1, "ingest": None, "job": None,
             "freshness": {"newest_bucket_ms": None, "bucket_lag_s": None, "profile_lag_s": None}}

    async def two_samples(settings: StackSettings) -> tuple:
        return [empty, {**empty, "sampled_at_ms": 1200}], [None, None], 1.1

    monkeypatch.setattr(health, "_two_samples", two_samples)
    lines = health.health_lines(StackSettings())
    assert "metrics not available" in lines[1] and "metrics not available" in lines[2]
    assert "not reported" in lines[3]
    assert lines[4] == "  freshness  newest bucket unknown; profiles lag unknown"
