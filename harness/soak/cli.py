"""`python -m harness.soak`: see harness/soak/__init__.py."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flink_jobs.config import JobSettings
from harness.local_stack.config import StackSettings
from harness.local_stack.kafka import log_cap_bytes
from harness.local_stack.stack import Stack
from harness.replay.workload import Workload, format_tag_time
from harness.soak.config import SoakSettings
from harness.soak.feed import Feeder
from harness.soak.probe import Probe
from harness.soak.report import CsvLog, columns, extrapolate, plot
from harness.soak.verify import build_checks, run_checks

# How often the lag is read while the producer waits for the job.
LAG_POLL_S = 0.5


def build_parser(settings: SoakSettings | None = None) -> argparse.ArgumentParser:
    env = settings or SoakSettings()
    p = argparse.ArgumentParser(prog="python -m harness.soak", description=sys.modules["harness.soak"].__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", type=int, default=env.tags, help="tags to feed (SOAK_TAGS)")
    p.add_argument("--sample-s", type=float, default=env.sample_s, help="seconds between samples (SOAK_SAMPLE_S)")
    p.add_argument("--seed", type=int, default=env.seed, help="the workload's seed (SOAK_SEED)")
    p.add_argument("--chunk", type=int, default=env.chunk, help="tags produced between lag checks (SOAK_CHUNK)")
    p.add_argument("--max-lag", type=int, default=env.max_lag,
                   help="no new chunk while the job's group lags more (SOAK_MAX_LAG)")
    p.add_argument("--out", type=Path, default=env.out, help="directory of the CSV and PNG (SOAK_OUT)")
    p.add_argument("--profiles", type=int, default=env.profiles, help="profiles verified (SOAK_PROFILES)")
    p.add_argument("--filtered", type=int, default=env.filtered,
                   help="filtered aggregate queries verified (SOAK_FILTERED)")
    p.add_argument("--verify-deadline-s", type=float, default=env.verify_deadline_s,
                   help="how long a wrong answer is asked again (SOAK_VERIFY_DEADLINE_S)")
    p.add_argument("--stall-s", type=float, default=env.stall_s,
                   help="abort when the job commits nothing for this long while it lags (SOAK_STALL_S)")
    p.add_argument("--retention-ms", type=int, default=None,
                   help="retained window verified; default: the job's EVENT_RETENTION_MS, else "
                        f"EVENT_RETENTION_MS here ({env.event_retention_ms})")
    p.add_argument("--port-shift", type=int, default=0,
                   help="use the stack whose ports are all moved by this (StackSettings.shifted)")
    p.add_argument("--run-dir", type=Path, default=None, help="that stack's run dir (with --port-shift)")
    p.add_argument("--no-verify", action="store_true", help="only feed and sample")
    return p


class Soak:
    def __init__(self, args: argparse.Namespace, stack: Stack, probe: Probe, feeder: Feeder, log: CsvLog) -> None:
        self.args, self.stack, self.probe, self.feeder, self.log = args, stack, probe, feeder, log
        self.components = [c.name for c in stack.components()]
        self.started = time.monotonic()
        self.next_sample = self.started

    def sample(self) -> None:
        """One CSV row and its summary line."""
        lag, _ = self.probe.lag()
        rss = self.probe.rss_mb()
        heap = self.probe.job_heap_after_gc_mb()
        disk = self.probe.disk()
        newest = self.feeder.newest_time_ms
        running = [v for v in rss.values() if v is not None]
        row: dict[str, Any] = {
            "elapsed_s": round(time.monotonic() - self.started, 1), "tags": self.feeder.produced, "lag": lag,
            "event_time": format_tag_time(newest) if newest is not None else None,
            **{f"rss_mb_{name}": round(v, 1) if v is not None else None for name, v in rss.items()},
            "rss_mb_total": round(sum(running), 1),
            "job_heap_after_gc_mb": round(heap, 1) if heap is not None else None,
            **{k: round(v, 1) for k, v in disk.items()},
        }
        self.log.add(row)
        heap_text = f"{heap:.0f}" if heap is not None else "-"
        flink_rss = sum(v or 0 for k, v in rss.items() if k.startswith("flink-"))
        print(f"[{row['elapsed_s']:>7.0f} s] tags {row['tags']:>11,}  lag {lag:>8,}  event {row['event_time']}  "
              f"RSS {row['rss_mb_total']:>6.0f} MB (Flink {flink_rss:.0f})  heap {heap_text} MB  "
              f"Cassandra {disk['cassandra_mb']:.0f} MB  Kafka {disk['kafka_mb']:.0f} MB  "
              f"checkpoints {disk['checkpoint_mb']:.0f} MB", flush=True)
        self.next_sample = max(self.next_sample + self.args.sample_s, time.monotonic() + 1.0)

    def check_alive(self) -> None:
        for name in ("kafka", "cassandra", "flink-job"):
            for component in self.stack._select([name]):
                if not component.is_running():
                    raise SystemExit(f"{component.name} stopped during the soak; see {component.process.log_file}")

    def feed(self) -> None:
        """Produce every tag, keeping the lag under the bound, then wait until the job committed them all."""
        args, feeder = self.args, self.feeder
        committed_at, last_committed = time.monotonic(), -1
        self.sample()
        while True:
            if time.monotonic() >= self.next_sample:
                self.check_alive()
                self.sample()
            lag, committed = self.probe.lag()
            if committed != last_committed:
                committed_at, last_committed = time.monotonic(), committed
            elif lag and time.monotonic() - committed_at > args.stall_s:
                raise SystemExit(f"the job committed nothing for {args.stall_s:.0f} s with {lag:,} tags to go")
            if feeder.produced < args.tags and (lag + args.chunk <= args.max_lag or lag == 0):
                feeder.produce(min(args.chunk, args.tags - feeder.produced))
                continue
            if feeder.produced >= args.tags and lag == 0:
                return
            # Waiting for the job: poll the lag again shortly (bounded by the stall deadline above).
            time.sleep(LAG_POLL_S)


def retention_ms(args: argparse.Namespace, probe: Probe, settings: SoakSettings) -> tuple[int, str]:
    if args.retention_ms is not None:
        return args.retention_ms, "--retention-ms"
    value = probe.job_environment("EVENT_RETENTION_MS")
    if value and value.isdigit():
        return int(value), "the job's EVENT_RETENTION_MS"
    return settings.event_retention_ms, "EVENT_RETENTION_MS (the job has none set)"


def main(argv: Sequence[str] | None = None) -> int:
    settings = SoakSettings()
    args = build_parser(settings).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    stack_settings = StackSettings()
    if args.port_shift or args.run_dir:
        stack_settings = stack_settings.shifted(args.port_shift, run_dir=args.run_dir)
    stack = Stack(stack_settings)
    for name in ("kafka", "cassandra", "flink-job", "query-api"):
        for component in stack._select([name]):
            if not component.is_running():
                raise SystemExit(f"{component.name} does not run: start the stack first "
                                 "(make clean && EVENT_RETENTION_MS=3600000 make up)")
    probe = Probe(stack, JobSettings().kafka_group_id)
    if sum(high for _, high in probe.end_offsets().values()):
        raise SystemExit(f"topic {probe.topic} already holds tags: the oracle assumes only the soak's "
                         "(make clean && EVENT_RETENTION_MS=3600000 make up)")
    retention, retention_source = retention_ms(args, probe, settings)
    workload = Workload(seed=args.seed)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M%S")
    csv_path = args.out / f"soak-{stamp}.csv"
    log = CsvLog(csv_path, columns([c.name for c in stack.components()]))
    feeder = Feeder(stack_settings.kafka_bootstrap_servers, probe.topic, workload)
    soak = Soak(args, stack, probe, feeder, log)
    print(f"soak: {args.tags:,} tags of seed {args.seed} into {probe.topic} ({stack_settings.kafka_bootstrap_servers}),"
          f" group {probe.group}, lag <= {args.max_lag:,}, a sample every {args.sample_s:.0f} s -> {csv_path}",
          flush=True)
    summary: dict[str, Any] = {"tags": args.tags, "seed": args.seed, "retention_ms": retention,
                               "retention_from": retention_source, "csv": str(csv_path)}
    code = 1
    try:
        soak.feed()
        soak.sample()
        summary["feed_s"] = round(time.monotonic() - soak.started, 1)
        print(f"fed {feeder.produced:,} tags in {summary['feed_s']:.0f} s; the job committed them all", flush=True)
        summary["tables"] = probe.table_stats()
        for table, stats in summary["tables"].items():
            print(f"  {table}: " + ", ".join(f"{k} {v}" for k, v in stats.items()), flush=True)
        if args.no_verify:
            code = 0
        else:
            checks, verdict = build_checks(workload, feeder.produced, retention, profiles=args.profiles,
                                           filtered=args.filtered, seed=args.seed)
            print(f"verify: window {verdict.window} from {retention_source} ({retention} ms): {len(checks)} "
                  f"queries ({verdict.undetermined_profiles} profile(s) undetermined, not asked)", flush=True)
            run_checks(stack.query_api.base_url, checks, verdict, args.verify_deadline_s)
            summary["verify"] = {"window": verdict.window, "buckets": verdict.buckets, "checks": verdict.checks,
                                 "exact": verdict.exact, "wrong": verdict.wrong, "examples": verdict.examples}
            print(f"verify: {verdict.exact} of {verdict.checks} answers exact, {verdict.wrong} wrong", flush=True)
            for example in verdict.examples:
                print(f"  WRONG {example}", flush=True)
            code = 0 if verdict.passed else 1
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
        code = 130
    finally:
        log.close()
        probe.close()
        png = csv_path.with_suffix(".png")
        if log.rows:
            plot(log.rows, soak.components, png,
                 f"make soak: {feeder.produced:,} tags (seed {args.seed}), retained window {retention / 60_000:g} min")
        cap = log_cap_bytes(stack_settings)
        lines = extrapolate(log.rows, soak.components, retention // workload.step_ms,
                            kafka_cap_mb=None if cap is None else cap / 2**20)
        print("\n".join(lines))
        summary["extrapolation"] = lines
        summary["png"] = str(png)
        csv_path.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"wrote {csv_path}, {png.name} and {csv_path.with_suffix('.json').name}")
    return code
