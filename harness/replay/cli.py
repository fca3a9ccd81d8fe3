"""`allezon-replay`: stream a seeded (or a real) workload at a chosen rate, with
the reference query mix, and score the platform like the reference test does.

Per 10 tags one profile query, per 1,000 tags one aggregate query; each query
carries the oracle's expected answer in its body (debug mode) and is scored by
comparing the answer with it. Profile queries only ask about tags whose 204 is
at least 10 s old, aggregate queries only about buckets whose every tag got
its 204 at least 60 s ago (the SPEC's deadlines). See docs/REPLAY.md.

    allezon-replay --rate 1000 --duration 600 --report replay.json
    allezon-replay --source rees46 --file tests/data/rees46-2019-10-head.csv --speed 600 --rate 800 --verify
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from common.cube import BUCKET_MS
from harness.replay.report import RunInfo, RunReport
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import REFERENCE_START_MS, TagSource, Workload

T = TypeVar("T")


def parse_start(text: str) -> int:
    """`now` (this minute), or an ISO UTC time like 2022-03-01T00:00:00 -> epoch ms."""
    if text == "now":
        now = int(time.time() * 1000)
        return now - now % BUCKET_MS
    moment = datetime.fromisoformat(text.removesuffix("Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def build_source(args: argparse.Namespace) -> TagSource:
    if args.source == "rees46":
        from harness.replay.rees46 import Rees46Source

        if not args.file:
            raise SystemExit("--source rees46 needs --file PATH")
        rebase = int(time.time() * 1000) if args.rebase_now else None
        return Rees46Source(args.file, rebase_to_ms=rebase, limit=args.tags)
    start = parse_start(args.start) if args.start else REFERENCE_START_MS
    return Workload(seed=args.seed, start_ms=start, step_ms=args.step_ms, cookies=args.cookies,
                    cookie_skew=args.cookie_skew, namespace=args.namespace)


def runner_config(args: argparse.Namespace) -> RunnerConfig:
    return RunnerConfig(
        base_url=args.base_url, query_url=args.query_url, tag_concurrency=args.concurrency,
        profile_concurrency=args.profile_concurrency, aggregate_concurrency=args.aggregate_concurrency,
        profile_every=args.profile_every, aggregate_every=args.aggregate_every,
        profile_age_s=args.profile_age, aggregate_age_s=args.aggregate_age,
        profile_probe_every_s=0.0 if args.no_probes else args.probe_every,
        bucket_probes=not args.no_probes, seed=args.seed, progress=not args.quiet,
    )


async def run(args: argparse.Namespace) -> RunReport:
    source = build_source(args)
    if args.source == "rees46":
        count = source.total
    else:
        count = args.tags if args.tags is not None else int(args.rate * args.duration)
    started = time.time()
    async with Runner(source, runner_config(args)) as runner:
        try:
            await runner.run_phase(args.rate, tags=count, speed=args.speed, name="replay",
                                   max_backlog_s=args.max_backlog or None)
            if args.verify:
                await runner.verify(profiles=args.verify_profiles, aggregates=args.verify_aggregates)
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("\ninterrupted: reporting what was measured", file=sys.stderr)
        report = runner.report()
    report.run = RunInfo(started_at=datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
                         command=" ".join(["allezon-replay", *sys.argv[1:]]), base_url=args.base_url,
                         query_url=args.query_url or args.base_url, rate=args.rate, speed=args.speed)
    return report


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_lines(report: RunReport) -> list[str]:
    lines = []
    for p in report.phases:
        lat, fr, tags = p.latency_ms, p.freshness_s, p.tags
        lines.append(
            f"{p.name}: tags {tags.accepted}/{tags.sent} accepted ({tags.dropped} dropped) "
            f"at {tags.achieved_rate}/s; profiles {p.profiles.correct} exact {p.profiles.wrong} wrong "
            f"({p.profiles.indeterminate} indeterminate); aggregates {p.aggregates.correct} exact "
            f"{p.aggregates.wrong} wrong; exact {p.exact_pct}%")
        lines.append(
            f"  latency p50/p99 ms: tags {_f(lat.user_tags.p50, 1)}/{_f(lat.user_tags.p99, 1)} "
            f"profiles {_f(lat.user_profiles.p50, 1)}/{_f(lat.user_profiles.p99, 1)} "
            f"aggregates {_f(lat.aggregates.p50, 1)}/{_f(lat.aggregates.p99, 1)}; freshness p50/p99/max s: "
            f"profile {_f(fr.profile.p50, 2)}/{_f(fr.profile.p99, 2)}/{_f(fr.profile.max, 2)} "
            f"bucket {_f(fr.bucket.p50, 2)}/{_f(fr.bucket.p99, 2)}/{_f(fr.bucket.max, 2)}; "
            f"client cpu {p.client.cpu_pct}% ({p.client.cpu_ms_per_1000_tags} ms per 1000 tags), "
            f"rss {p.client.rss_mb} MB")
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="allezon-replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("where")
    g.add_argument("--base-url", default="http://127.0.0.1:8080", help="the front door (default %(default)s)")
    g.add_argument("--query-url", help="queries go here instead of --base-url (e.g. the query API itself)")
    g = p.add_argument_group("what")
    g.add_argument("--source", choices=("synthetic", "rees46"), default="synthetic")
    g.add_argument("--file", help="the REES46 CSV (--source rees46)")
    g.add_argument("--rebase-now", action="store_true", help="rees46: shift times so the first event is now")
    g.add_argument("--seed", type=int, default=1, help="stream and query choices (default %(default)s)")
    g.add_argument("--namespace", default="", help="synthetic: mixed into cookie names (fresh cookies per run)")
    g.add_argument("--start", help="synthetic: event time of tag 0, ISO UTC or 'now' (default 2022-03-01T00:00:00)")
    g.add_argument("--step-ms", type=int, default=1, help="synthetic: event time between tags (default 1)")
    g.add_argument("--cookies", type=int, default=1_000_000, help="synthetic: cookie ranks (default 1,000,000)")
    g.add_argument("--cookie-skew", type=float, default=1.1, help="synthetic: Zipf exponent (default 1.1)")
    g = p.add_argument_group("how fast, how much")
    g.add_argument("--rate", type=float, default=1000.0, help="tags per second (at most, with --speed)")
    g.add_argument("--duration", type=float, default=60.0, help="seconds of sending (synthetic; --tags wins)")
    g.add_argument("--tags", type=int, help="send exactly this many tags (rees46: the first N)")
    g.add_argument("--speed", type=float, help="pace by event time: event seconds per real second (capped by --rate)")
    g.add_argument("--concurrency", type=int, default=64, help="tag requests in flight at most (default 64)")
    g.add_argument("--max-backlog", type=float, default=30.0,
                   help="stop early when this many seconds of tags wait in the client (default 30; 0 = never)")
    g.add_argument("--profile-concurrency", type=int, default=32)
    g.add_argument("--aggregate-concurrency", type=int, default=4)
    g = p.add_argument_group("queries and scoring")
    g.add_argument("--profile-every", type=int, default=10, help="one profile query per N tags (default 10)")
    g.add_argument("--aggregate-every", type=int, default=1000, help="one aggregate query per N tags (default 1000)")
    g.add_argument("--profile-age", type=float, default=10.0, help="s after a 204 before a tag is asked about")
    g.add_argument("--aggregate-age", type=float, default=60.0, help="s after a bucket's last 204 before it is asked")
    g.add_argument("--probe-every", type=float, default=1.0, help="s between profile freshness probes (default 1)")
    g.add_argument("--no-probes", action="store_true", help="no freshness probes")
    g.add_argument("--verify", action="store_true",
                   help="after the stream, check profiles and every bucket until exact or the SPEC deadline")
    g.add_argument("--verify-profiles", type=int, default=300)
    g.add_argument("--verify-aggregates", type=int, default=100)
    g = p.add_argument_group("output")
    g.add_argument("--report", help="write the JSON report here")
    g.add_argument("--json", action="store_true", help="print the JSON report on stdout instead of a summary")
    g.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_async(run(args))
    text = orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode()
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print("\n".join(summary_lines(report)))
        if args.report:
            print(f"report: {args.report}")
    total = report.total
    bad = total.tags.dropped or total.profiles.wrong or total.aggregates.wrong
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

