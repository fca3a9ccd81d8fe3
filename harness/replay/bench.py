"""`make bench`: step the tag rate up against the local stack, with the
reference query mix, until a step fails; report each step and the highest
rate the platform sustained.

A step sends BENCH_STEP_TAGS tags (default 180,000 = 3 minutes of event time
at 1 ms per tag, so several closed 1-minute buckets) at one rate of
BENCH_RATES (default 500,1000,2000,4000,8000 tags/s), continuing one seeded
stream and one oracle across steps. A step passes when every tag got 204,
every profile and aggregate answer was exact, every endpoint's p99 latency is
at most 200 ms, the achieved rate is at least 95% of the target, and the
freshness probes stayed within the SPEC (profile 10 s, bucket 60 s).

Per step: achieved rate, p50/p99 per endpoint, profile and bucket freshness,
CPU (% of one core, averaged over the step) and resident memory of each
component (process tree) and of the bench client. A table on stdout, the
whole report in .run/bench/bench-<UTC time>.json, and as the last line:

    bench: max_sustained=<tags/s> ingest_p99_ms=<x> profile_p99_ms=<x> aggregates_p99_ms=<x> exact=<pct>
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.cube import BUCKET_MS
from harness.replay.meter import ComponentMeter, Usage
from harness.replay.report import Percentiles, PhaseReport
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import Workload, format_tag_time

if TYPE_CHECKING:
    from harness.local_stack.stack import Stack


class BenchSettings(BaseSettings):
    """`make bench`'s variables (BENCH_RATES, ...): the defaults of the options of the same names."""

    model_config = SettingsConfigDict(env_prefix="BENCH_", env_file=None, extra="ignore", case_sensitive=False,
                                      env_ignore_empty=True)

    rates: str = "500,1000,2000,4000,8000"  # tags/s per step
    step_tags: int = 180_000  # 3 minutes of event time at 1 ms per tag
    p99_ms: float = 200.0
    concurrency: int = 256
    warmup_s: float = 30.0
    seed: int = 1


@dataclass
class Step:
    rate: float
    passed: bool
    reasons: list[str]  # why it failed
    seconds: float
    components: dict[str, Usage]
    report: PhaseReport

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "passed": self.passed, "reasons": self.reasons, "seconds": self.seconds,
                "components": {name: asdict(u) for name, u in self.components.items()},
                "report": self.report.to_dict()}


def judge(step: PhaseReport, rate: float, *, p99_ms: float, min_rate_ratio: float) -> list[str]:
    """Why a step does not count as sustained (empty: it does)."""
    reasons = []
    tags = step.tags
    if tags.dropped:
        reasons.append(f"{tags.dropped} tag(s) without 204 {tags.drop_reasons}")
    for kind, wrong in (("profiles", step.profiles.wrong), ("aggregates", step.aggregates.wrong)):
        if wrong:
            reasons.append(f"{wrong} wrong {kind} answer(s)")
    for endpoint, lat in step.latency_ms.items():
        if lat.p99 is not None and lat.p99 > p99_ms:
            reasons.append(f"{endpoint} p99 {lat.p99:.0f} ms > {p99_ms:.0f} ms")
    if step.aborted:
        reasons.append(f"stopped early: {step.aborted}")
    if tags.achieved_rate < min_rate_ratio * rate:
        reasons.append(f"achieved {tags.achieved_rate:.0f} tags/s < {min_rate_ratio:.0%} of {rate:.0f}")
    for kind, f, limit in (("profile", step.freshness_s.profile, 10.0), ("bucket", step.freshness_s.bucket, 60.0)):
        if f.timeouts or (f.max is not None and f.max > limit):
            reasons.append(f"{kind} freshness max {f.max} s, {f.timeouts} timeout(s) (SPEC {limit:.0f} s)")
    return reasons


def _fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pair(p: Percentiles, digits: int) -> str:
    return f"{_fmt(p.p50, digits)}/{_fmt(p.p99, digits)}"


def step_table(steps: list[Step]) -> str:
    head = (f"{'rate':>6} {'achieved':>8} {'tag p50/p99':>12} {'prof p50/p99':>13} {'agg p50/p99':>12} "
            f"{'fresh prof p50/p99':>18} {'fresh bucket p50/p99':>20} {'exact%':>7}  verdict")
    lines = [head]
    for s in steps:
        r = s.report
        lat, fr = r.latency_ms, r.freshness_s
        verdict = "ok" if s.passed else "FAIL: " + "; ".join(s.reasons)
        lines.append(
            f"{s.rate:>6.0f} {r.tags.achieved_rate:>8.0f} {_pair(lat.user_tags, 1):>12} "
            f"{_pair(lat.user_profiles, 1):>13} {_pair(lat.aggregates, 1):>12} "
            f"{_pair(fr.profile, 2):>18} {_pair(fr.bucket, 2):>20} {_fmt(r.exact_pct, 2):>7}  {verdict}")
    return "\n".join(lines)


def resource_table(steps: list[Step]) -> str:
    names = list(steps[0].components) if steps else []
    lines = [f"{'component':<13}" + "".join(f"{'cpu% / MB @' + format(s.rate, '.0f'):>20}" for s in steps)]
    for name in names:
        cells = []
        for s in steps:
            u = s.components[name]
            cells.append(f"{_fmt(u.cpu_pct)} / {_fmt(u.rss_mb)}")
        lines.append(f"{name:<13}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)


def last_line(steps: list[Step]) -> str:
    passed = [s for s in steps if s.passed]
    if not passed:
        return "bench: max_sustained=0 ingest_p99_ms=- profile_p99_ms=- aggregates_p99_ms=- exact=-"
    best = max(passed, key=lambda s: s.rate)
    lat = best.report.latency_ms
    return (f"bench: max_sustained={best.rate:.0f} ingest_p99_ms={_fmt(lat.user_tags.p99, 1)} "
            f"profile_p99_ms={_fmt(lat.user_profiles.p99, 1)} "
            f"aggregates_p99_ms={_fmt(lat.aggregates.p99, 1)} exact={_fmt(best.report.exact_pct, 2)}")


def event_start(state_file: Path) -> int:
    """A start of event time no earlier bench or replay of this run dir used:
    this minute, or after the last stream this file remembers."""
    now = int(time.time() * 1000)
    start = now - now % BUCKET_MS
    try:
        start = max(start, int(orjson.loads(state_file.read_bytes())["next_start_ms"]))
    except (OSError, ValueError, KeyError):
        pass
    return start


def remember_end(state_file: Path, last_ms: int) -> None:
    next_start = last_ms - last_ms % BUCKET_MS + 2 * BUCKET_MS
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_bytes(orjson.dumps({"next_start_ms": next_start, "next_start": format_tag_time(next_start)}))


async def bench(args: argparse.Namespace, stack: Stack, out_dir: Path) -> tuple[list[Step], dict[str, Any]]:
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    state_file = out_dir / "state.json"
    start_ms = event_start(state_file)
    workload = Workload(seed=args.seed, start_ms=start_ms, namespace=f"bench-{start_ms}")
    config = RunnerConfig(base_url=args.base_url, tag_concurrency=args.concurrency, seed=args.seed,
                          progress=not args.quiet)
    meter = ComponentMeter(stack)
    steps: list[Step] = []
    warmup: dict[str, Any] | None = None
    async with Runner(workload, config) as runner:
        try:
            if args.warmup_s > 0 and rates:
                # A stack that just started (JIT, Flink job deployment, caches)
                # answers slowly for a while; that is not the rate being measured.
                report = await runner.run_phase(rates[0], tags=max(1, int(rates[0] * args.warmup_s)), name="warm-up",
                                                max_backlog_s=args.max_backlog)
                warmup = {"rate": rates[0], "tags": asdict(report.tags), "latency_ms": asdict(report.latency_ms)}
            for rate in rates:
                meter.refresh()
                before, t0 = meter.sample(), time.monotonic()
                report = await runner.run_phase(rate, tags=args.step_tags, name=f"{rate:.0f}/s",
                                                max_backlog_s=args.max_backlog)
                seconds = time.monotonic() - t0
                components = meter.usage(before, meter.sample(), seconds)
                reasons = judge(report, rate, p99_ms=args.p99_ms, min_rate_ratio=args.min_rate_ratio)
                steps.append(Step(rate=rate, passed=not reasons, reasons=reasons, seconds=round(seconds, 1),
                                  components=components, report=report))
                print(step_table(steps[-1:]).splitlines()[1], file=sys.stderr, flush=True)
                if reasons:
                    break
        finally:
            remember_end(state_file, workload.time_ms(max(0, runner.next_index - 1)))
        info = {"event_start": format_tag_time(start_ms), "tags_sent": runner.next_index, "warmup": warmup,
                "oracle_tags": runner.oracle.tags_added, "source": workload.describe()}
    return steps, info


def build_parser(settings: BenchSettings | None = None) -> argparse.ArgumentParser:
    env = settings or BenchSettings()
    p = argparse.ArgumentParser(prog="allezon-bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default=env.rates,
                   help="tags/s per step, comma-separated (env BENCH_RATES, default %(default)s)")
    p.add_argument("--step-tags", type=int, default=env.step_tags,
                   help="tags per step (env BENCH_STEP_TAGS, default %(default)s)")
    p.add_argument("--p99-ms", type=float, default=env.p99_ms,
                   help="a step fails when an endpoint's p99 exceeds this (env BENCH_P99_MS, default %(default)g)")
    p.add_argument("--min-rate-ratio", type=float, default=0.95, help="achieved/target rate needed (default 0.95)")
    p.add_argument("--concurrency", type=int, default=env.concurrency,
                   help="tag requests in flight at most (env BENCH_CONCURRENCY, default %(default)s)")
    p.add_argument("--max-backlog", type=float, default=10.0,
                   help="end a step early when this many seconds of tags wait in the client (default 10)")
    p.add_argument("--warmup-s", type=float, default=env.warmup_s,
                   help="seconds at the first rate before the first step, not judged "
                        "(env BENCH_WARMUP_S, default %(default)g)")
    p.add_argument("--seed", type=int, default=env.seed, help="env BENCH_SEED, default %(default)s")
    p.add_argument("--base-url", help="default: the local stack's front door")
    p.add_argument("--no-up", action="store_true", help="do not start the local stack (it must be up)")
    p.add_argument("--out-dir", help="default: <run dir>/bench (.run/bench)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from harness.local_stack.stack import Stack
    from harness.replay.cli import run_async

    stack = Stack()
    if not args.no_up and not all(row.ready for row in stack.status()):
        print("bench: starting the local stack (python -m harness.local_stack up)", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, "-m", "harness.local_stack", "up"], check=False)
        if done.returncode:
            print("bench: the local stack did not start", file=sys.stderr)
            return done.returncode
    args.base_url = args.base_url or stack.proxy.base_url
    out_dir = Path(args.out_dir) if args.out_dir else stack.settings.run_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    steps, info = run_async(bench(args, stack, out_dir))
    print()
    print(f"bench {started:%Y-%m-%d %H:%M} UTC, {args.step_tags} tags per step, base URL {args.base_url}")
    print(step_table(steps))
    print()
    print(resource_table(steps))
    path = out_dir / f"bench-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps({
        "started_at": started.isoformat(timespec="seconds"), "command": " ".join(sys.argv),
        "settings": {"rates": args.rates, "step_tags": args.step_tags, "p99_ms": args.p99_ms,
                     "min_rate_ratio": args.min_rate_ratio, "concurrency": args.concurrency, "seed": args.seed,
                     "base_url": args.base_url},
        **info, "steps": [s.to_dict() for s in steps], "result": last_line(steps),
    }, option=orjson.OPT_INDENT_2))
    print(f"\nreport: {path}")
    print(last_line(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
