"""`make bench`'s verdict per step and its last line (harness/replay/bench.py)."""

from __future__ import annotations

import re

from harness.replay.bench import event_start, judge, last_line, remember_end, resource_table, step_table


def step_report(**changes) -> dict:
    lat = {"count": 10, "p50": 5.0, "p95": 9.0, "p99": 12.5, "max": 20.0}
    fresh = {"count": 5, "p50": 1.0, "p95": 2.0, "p99": 2.5, "max": 3.0, "timeouts": 0}
    report = {
        "tags": {"sent": 1000, "accepted": 1000, "dropped": 0, "drop_reasons": {}, "achieved_rate": 498.0},
        "profiles": {"correct": 100, "wrong": 0}, "aggregates": {"correct": 1, "wrong": 0},
        "exact_pct": 100.0,
        "latency_ms": {"user_tags": dict(lat), "user_profiles": dict(lat), "aggregates": {**lat, "p99": 40.0}},
        "freshness_s": {"profile": dict(fresh), "bucket": dict(fresh)},
    }
    for key, value in changes.items():
        report[key] = value
    return report


def test_a_clean_step_passes():
    assert judge(step_report(), 500, p99_ms=200, min_rate_ratio=0.95) == []


def test_each_failure_is_named():
    bad = step_report(
        tags={"sent": 1000, "accepted": 999, "dropped": 1, "drop_reasons": {"503": 1}, "achieved_rate": 400.0},
        profiles={"correct": 99, "wrong": 1},
        freshness_s={"profile": {"count": 1, "p50": 1, "p95": 1, "p99": 11, "max": 11.0, "timeouts": 0},
                     "bucket": {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "timeouts": 1}},
        aborted="client backlog of 6000 tags",
    )
    bad["latency_ms"]["user_tags"]["p99"] = 250.0
    reasons = " | ".join(judge(bad, 500, p99_ms=200, min_rate_ratio=0.95))
    for expected in ("1 tag(s) without 204", "1 wrong profiles", "user_tags p99 250 ms", "achieved 400",
                     "profile freshness", "bucket freshness", "stopped early"):
        assert expected in reasons, (expected, reasons)


def test_last_line_reports_the_highest_passing_step():
    steps = [{"rate": 500.0, "passed": True, "reasons": [], "report": step_report(), "components": {}},
             {"rate": 1000.0, "passed": False, "reasons": ["x"], "report": step_report(), "components": {}}]
    line = last_line(steps)
    assert line == ("bench: max_sustained=500 ingest_p99_ms=12.5 profile_p99_ms=12.5 aggregates_p99_ms=40.0 "
                    "exact=100.00")
    assert re.fullmatch(r"bench: max_sustained=\d+ ingest_p99_ms=\S+ profile_p99_ms=\S+ aggregates_p99_ms=\S+ "
                        r"exact=\S+", line)
    assert last_line(steps[1:]).startswith("bench: max_sustained=0 ")
    assert "FAIL: x" in step_table(steps)


def test_resource_table_has_a_row_per_component():
    steps = [{"rate": 500.0, "components": {"kafka": {"cpu_pct": 12.0, "rss_mb": 300.0},
                                            "bench-client": {"cpu_pct": None, "rss_mb": None}}}]
    table = resource_table(steps)
    assert "kafka" in table and "12 / 300" in table and "- / -" in table


def test_event_time_never_goes_back_between_benches(tmp_path):
    state = tmp_path / "state.json"
    first = event_start(state)
    assert first % 60_000 == 0
    remember_end(state, first + 10 * 3_600_000 + 123)
    second = event_start(state)
    assert second >= first + 10 * 3_600_000 + 60_000 and second % 60_000 == 0
