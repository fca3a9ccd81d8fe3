"""`python -m harness.local_stack up|down|status|logs|clean|topic-tail` (what the Makefile runs)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from harness.local_stack.config import StackSettings
from harness.local_stack.process import NotReadyError, StackError, tail_file
from harness.local_stack.stream_job import JobStateError

if TYPE_CHECKING:
    from harness.local_stack.stack import Stack
    from harness.local_stack.stream_job import StreamJob

log = logging.getLogger("local_stack")


def _stack(settings: StackSettings | None = None) -> Stack:
    from harness.local_stack.stack import Stack

    return Stack(settings or StackSettings())


def cmd_up(args: argparse.Namespace) -> int:
    stack = _stack()
    started = time.monotonic()
    try:
        stack.up(args.components or None)
    except NotReadyError as exc:
        print(f"\nERROR: {exc}\n\n{exc.log_tail}", file=sys.stderr)
        print("\nThe other components were left as they are; `make down` stops them.", file=sys.stderr)
        return 1
    s = stack.settings
    print(f"\nLocal stack is up ({time.monotonic() - started:.1f} s). Run dir: {s.run_dir}")
    selected = {c.name for c in stack._select(args.components or None)}
    rows = [
        ("front door", stack.proxy.name, f"{stack.proxy.base_url}  (POST /user_tags, /user_profiles/..., /aggregates)"),
        ("ingest API", stack.ingest_api.name, stack.ingest_api.address),
        ("query API", stack.query_api.name, stack.query_api.address),
    ]
    replication = (f"  rf {s.replication_factor}, min.insync {s.min_insync_replicas}" if s.replicated else "")
    for broker in stack.kafka_brokers:
        rows.append(("Kafka", broker.name, f"{broker.bootstrap}  topic {s.kafka_topic}{replication}"))
    consistency = f"  rf {s.replication_factor}, {s.service_consistency}" if s.replicated else ""
    for node in stack.cassandra_nodes:
        rows.append(("Cassandra", node.name, f"{node.address}  keyspace {s.cassandra_keyspace}{consistency}"))
    if stack.flink_jobmanager is not None and stack.stream_job is not None:
        rows.append(("Flink UI", stack.flink_jobmanager.name,
                     f"{stack.flink_jobmanager.address}  (job {stack.stream_job.job_id}, "
                     f"{len(stack.flink_taskmanagers[:stack.taskmanager_count()])} TaskManager(s))"))
    for label, name, address in rows:
        if name in selected:
            print(f"  {label:<11} {address}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = _stack().down(args.components or None)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    """Stop (if running) and start each named component, e.g. one node of a cluster."""
    stack = _stack()
    for name in args.components:
        started = time.monotonic()
        try:
            stack.restart(name)
        except NotReadyError as exc:
            print(f"\nERROR: {exc}\n\n{exc.log_tail}", file=sys.stderr)
            return 1
        print(f"{name}: restarted and ready in {time.monotonic() - started:.1f} s")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    stack = _stack()
    stack.clean()
    print(f"stopped everything and removed the data in {stack.settings.run_dir} (artifact cache kept)")
    return 0


def _job(stack: Stack) -> StreamJob:
    if stack.stream_job is None:
        raise ValueError("the Flink cluster is disabled (FLINK_JOB_ENABLED=false)")
    return stack.stream_job


def cmd_job(args: argparse.Namespace) -> int:
    """The stream job's lifecycle (docs/OPERATIONS.md)."""
    stack = _stack()
    job = _job(stack)
    started = time.monotonic()
    try:
        if args.action == "submit":
            job_id = job.submit(restore_from=args.from_path or None, start_empty=args.start_empty)
            job.wait_running()
            print(f"job {job_id} running ({time.monotonic() - started:.1f} s); restored from "
                  f"{job.ledger().get('restored_from') or 'nothing (started empty)'}")
        elif args.action == "status":
            ledger = job.ledger()
            print(f"job {ledger.get('job_id')}: {job.state() or 'unknown to the cluster'}")
            for key in ("restored_from", "stopped_with", "last_savepoint", "submitted_at"):
                print(f"  {key:<15} {ledger.get(key)}")
            point = job.restore_point()
            print(f"  next start      {f'{point.path} ({point.why})' if point else 'empty'}")
            if job.running():
                print(f"  parallelism     {job.parallelism_now()}")
        elif args.action == "savepoint":
            print(f"savepoint {job.savepoint()}")
        elif args.action == "stop":
            print(f"stopped with savepoint {job.stop()}; `make job-submit` resumes from it")
        elif args.action == "cancel":
            print(f"cancelled job {job.cancel()}; its checkpoints are kept, `make job-submit` resumes from the newest")
        elif args.action == "upgrade":
            savepoint, job_id = job.upgrade()
            print(f"upgraded: stopped with {savepoint}, job {job_id} runs the working tree's code from it "
                  f"({time.monotonic() - started:.1f} s)")
    except JobStateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    stack = _stack()
    started = time.monotonic()
    changed = stack.scale(args.taskmanagers)
    print(f"{args.taskmanagers} TaskManager(s) ({', '.join(changed) or 'no change'}; "
          f"{time.monotonic() - started:.1f} s); the job rescales to their slots")
    return 0


def cmd_status(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from harness.local_stack.health import health_lines

    stack = _stack()
    rows = stack.status()
    header = f"{'COMPONENT':<20} {'PID':>7} {'STATE':<6} {'READY':<6} {'RSS MB':>7}  ADDRESS"
    print(header, file=out)
    for r in rows:
        rss = f"{r.rss_mb:.0f}" if r.rss_mb is not None else "-"
        print(
            f"{r.name:<20} {r.pid or '-':>7} {'up' if r.running else 'down':<6} "
            f"{'yes' if r.ready else 'no':<6} {rss:>7}  {r.address}",
            file=out,
        )
    if any(r.running for r in rows):
        # Rates, lag and freshness from the components' own metrics (two samples, ~1 s).
        print("", *health_lines(stack.settings), sep="\n", file=out)
    return 0 if all(r.ready for r in rows) else 3


def cmd_logs(args: argparse.Namespace) -> int:
    stack = _stack()
    # "kafka" / "cassandra" also name every node of a cluster (kafka-1, kafka-2, ...).
    components = stack._select([args.component]) if args.component else stack.components()
    files = [p for c in components for p in (c.process.log_file, *c.log_files) if p.exists()]
    if not files:
        print("no log files yet", file=sys.stderr)
        return 1
    if args.follow:
        os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *map(str, files)])
    for path in files:
        print(f"==> {path} <==")
        print(tail_file(path, args.lines))
        print()
    return 0


def cmd_topic_tail(args: argparse.Namespace) -> int:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from harness.local_stack.kafka import _quiet_logger

    settings = StackSettings()
    topic = args.topic or settings.kafka_topic
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"local-stack-topic-tail-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "logger": _quiet_logger(),
        }
    )
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=5)
        except Exception as exc:
            print(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}", file=sys.stderr)
            return 1
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            print(f"topic {topic} not found ({meta.error if meta else 'no metadata'})", file=sys.stderr)
            return 1
        ends: dict[int, int] = {}
        assignment = []
        for partition in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            if high > low:
                start = low if args.last is None else max(low, high - args.last)
                assignment.append(TopicPartition(topic, partition, start))
                ends[partition] = high
        total = sum(ends[tp.partition] - tp.offset for tp in assignment)
        print(f"topic {topic}: {len(meta.partitions)} partitions, reading {total} message(s)")
        if not assignment:
            return 0
        consumer.assign(assignment)
        pending, seen = set(ends), 0
        deadline = time.monotonic() + args.timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error, partition, offset = msg.error(), msg.partition(), msg.offset()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition)
                else:
                    print(f"error: {error}", file=sys.stderr)
                continue
            assert partition is not None and offset is not None  # a message without an error has both
            seen += 1
            raw_key, raw_value = msg.key(), msg.value()
            key = raw_key.decode("utf-8", "replace") if raw_key is not None else None
            value = raw_value.decode("utf-8", "replace") if raw_value is not None else None
            print(f"key={key!r} partition={partition} offset={offset} value={value}")
            if offset >= ends[partition] - 1:
                pending.discard(partition)
        if pending:
            print(f"timed out after {args.timeout:.0f} s with {seen} message(s) read", file=sys.stderr)
            return 2
        return 0
    finally:
        consumer.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.local_stack", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start everything (or the named components) and wait until ready")
    up.add_argument("components", nargs="*", help="e.g. kafka cassandra (default: all)")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop what `up` started (data is kept)")
    down.add_argument("components", nargs="*")
    down.set_defaults(func=cmd_down)

    restart = sub.add_parser("restart", help="stop and start the named components (e.g. cassandra-2)")
    restart.add_argument("components", nargs="+")
    restart.set_defaults(func=cmd_restart)


    job = sub.add_parser("job", help="the stream job: submit, status, savepoint, stop, cancel, upgrade")
    job.add_argument("action", choices=["submit", "status", "savepoint", "stop", "cancel", "upgrade"])
    job.add_argument("--from", dest="from_path", default="",
                     help="submit: the checkpoint or savepoint to restore (default: the ledger's choice)")
    job.add_argument("--start-empty", action="store_true",
                     help="submit: start without state even over a cube that holds buckets")
    job.set_defaults(func=cmd_job)

    scale = sub.add_parser("scale", help="run this many TaskManagers; the job rescales to their slots")
    scale.add_argument("taskmanagers", type=int)
    scale.set_defaults(func=cmd_scale)

    sub.add_parser("status", help="components, pids, readiness, memory; rates, lag and freshness").set_defaults(
        func=cmd_status)
    sub.add_parser("clean", help="down + remove data and logs (keeps the jar cache)").set_defaults(func=cmd_clean)

    logs = sub.add_parser("logs", help="tail the log files")
    logs.add_argument("component", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)

    tail = sub.add_parser("topic-tail", help="print the messages in the topic (key, partition, offset, value)")
    tail.add_argument("--topic", help="default: KAFKA_TOPIC (user_tags)")
    tail.add_argument("--last", type=int, help="only the last N messages of each partition")
    tail.add_argument("--timeout", type=float, default=15.0, help="seconds (default 15)")
    tail.set_defaults(func=cmd_topic_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # The Cassandra driver is chatty about connection attempts while a node starts.
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    # httpx logs every request at INFO (`make status` makes a few).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (StackError, KeyError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
