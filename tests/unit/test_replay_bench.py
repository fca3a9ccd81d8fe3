"""`make bench`'s verdict per step and its last line (harness/replay/bench.py)."""

from __future__ import annotations

import re
from dataclasses import replace

from harness.replay.bench import (
    BenchSettings,
    Step,
    build_parser,
    event_start,
    judge,
    last_line,
    remember_end,
    resource_table,
    step_table,
)
from harness.replay.meter import Usage
from harness.replay.report import (
    AggregateCounts,
    ClientUsage,
    EndpointCounts,
    EndpointLatencies,
    Freshness,
    FreshnessReport,
    Percentiles,
    PhaseReport,
    ProfileCounts,
    TagCounts,
)


def step_report(**changes) -> PhaseReport:
    lat = Percentiles(count=10, p50=5.0, p95=9.0, p99=12.5, max=20.0)
    fresh = Freshness(count=5, p50=1.0, p95=2.0, p99=2.5, max=3.0, timeouts=0)
    report = PhaseReport(
        name="500/s", target_rate=500.0, elapsed_s=2.0,
        tags=TagCounts(sent=1000, accepted=1000, dropped=0, drop_reasons={}, achieved_rate=498.0),
        profiles=ProfileCounts(correct=100, wrong=0, indeterminate=0, not_asked_undetermined=0, skipped=0),
        aggregates=AggregateCounts(correct=1, wrong=0, skipped=0),
        exact_pct=100.0,
        latency_ms=EndpointLatencies(user_tags=replace(lat), user_profiles=replace(lat),
                                     aggregates=replace(lat, p99=40.0)),
        errors=EndpointCounts(),
        freshness_s=FreshnessReport(profile=replace(fresh), bucket=replace(fresh)),
        client=ClientUsage(cpu_pct=10.0, cpu_s=0.2, cpu_ms_per_1000_tags=200.0, rss_mb=80.0,
                           schedule_lag_ms=Percentiles(), tag_queue_max=3),
        wrong_examples=[], drop_examples=[],
    )
    return replace(report, **changes)


def step(rate: float, passed: bool, reasons: list[str] | None = None, **components: Usage) -> Step:
    return Step(rate=rate, passed=passed, reasons=reasons or [], seconds=2.0, components=components,
                report=step_report())


def test_a_clean_step_passes():
    assert judge(step_report(), 500, p99_ms=200, min_rate_ratio=0.95) == []


def test_each_failure_is_named():
    bad = step_report(
        tags=TagCounts(sent=1000, accepted=999, dropped=1, drop_reasons={"503": 1}, achieved_rate=400.0),
        profiles=ProfileCounts(correct=99, wrong=1, indeterminate=0, not_asked_undetermined=0, skipped=0),
        freshness_s=FreshnessReport(profile=Freshness(count=1, p50=1, p95=1, p99=11, max=11.0, timeouts=0),
                                    bucket=Freshness(count=0, timeouts=1)),
        aborted="client backlog of 6000 tags",
    )
    bad.latency_ms.user_tags.p99 = 250.0
    reasons = " | ".join(judge(bad, 500, p99_ms=200, min_rate_ratio=0.95))
    for expected in ("1 tag(s) without 204", "1 wrong profiles", "user_tags p99 250 ms", "achieved 400",
                     "profile freshness", "bucket freshness", "stopped early"):
        assert expected in reasons, (expected, reasons)


def test_last_line_reports_the_highest_passing_step():
    steps = [step(500.0, True), step(1000.0, False, ["x"])]
    line = last_line(steps)
    assert line == ("bench: max_sustained=500 ingest_p99_ms=12.5 profile_p99_ms=12.5 aggregates_p99_ms=40.0 "
                    "exact=100.00")
    assert re.fullmatch(r"bench: max_sustained=\d+ ingest_p99_ms=\S+ profile_p99_ms=\S+ aggregates_p99_ms=\S+ "
                        r"exact=\S+", line)
    assert last_line(steps[1:]).startswith("bench: max_sustained=0 ")
    assert "FAIL: x" in step_table(steps)
    assert steps[0].to_dict()["report"]["tags"]["achieved_rate"] == 498.0


def test_resource_table_has_a_row_per_component():
    steps = [step(500.0, True, kafka=Usage(cpu_pct=12.0, rss_mb=300.0), **{"bench-client": Usage(None, None)})]
    table = resource_table(steps)
    assert "kafka" in table and "12 / 300" in table and "- / -" in table


def test_bench_variables_are_the_option_defaults(monkeypatch):
    monkeypatch.setenv("BENCH_RATES", "200")
    monkeypatch.setenv("BENCH_STEP_TAGS", "3000")
    monkeypatch.setenv("BENCH_WARMUP_S", "")  # empty: the default, as `make bench` passes unset variables
    args = build_parser().parse_args([])
    assert (args.rates, args.step_tags, args.warmup_s, args.p99_ms) == ("200", 3000, 30.0, 200.0)
    assert build_parser(BenchSettings(seed=7)).parse_args(["--seed", "9"]).seed == 9


def test_event_time_never_goes_back_between_benches(tmp_path):
    state = tmp_path / "state.json"
    first = event_start(state)
    assert first % 60_000 == 0
    remember_end(state, first + 10 * 3_600_000 + 123)
    second = event_start(state)
    assert second >= first + 10 * 3_600_000 + 60_000 and second % 60_000 == 0
