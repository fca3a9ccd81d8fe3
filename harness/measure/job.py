"""Stream-job drain benchmark: how fast the job turns a backlog into exact Cassandra rows.

Preloads a fresh topic with N seeded reference-shaped tags (1 ms apart), then
starts the job (from `--repo`, so an older checkout can be measured in the
same session) on a fresh keyspace and measures, from the moment every task
runs until every tag is visible in its profile and every (action, minute)
total is exact:

- drain rate (tags/s) and job CPU-seconds per 1,000 tags (psutil, whole tree),
  and Cassandra's CPU-seconds per 1,000 tags over the same time;
- Cassandra writes per 1,000 tags (nodetool tablestats);
- after the drain: the job's idle CPU (%) over 20 s, its RSS and the size of
  its checkpoint directory;
- Flink's busy / back-pressured ms per second of each task (the bottleneck).

Uses the Kafka and Cassandra of the running local stack (`make up`, or the
stack named by the ALLEZON_*/port variables):

    .venv/bin/python -m harness.measure.job --tags 120000 [--repo /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import psutil
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common.cube import bucket_of
from common.tag import UserTag
from cql import apply as schema
from harness.local_stack import artifacts
from harness.local_stack.services import stream_job_launch
from harness.local_stack.stack import Stack
from harness.replay.workload import Workload

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu_s(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss_mb(proc: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def sample_busy(rest: str, job_id: str, busy: dict) -> None:
    """Where the job spends its time: Flink's busy and back-pressured ms/s per vertex (max over subtasks)."""
    try:
        for v in httpx.get(f"{rest}/jobs/{job_id}", timeout=2).json()["vertices"]:
            metrics = httpx.get(f"{rest}/jobs/{job_id}/vertices/{v['id']}/subtasks/metrics",
                                params={"get": "busyTimeMsPerSecond,backPressuredTimeMsPerSecond", "agg": "max"},
                                timeout=2).json()
            # A vertex not yet measured reports "NaN" (a string): counted as 0.
            values = {m["id"]: m["max"] if isinstance(m.get("max"), (int, float)) else 0.0 for m in metrics}
            busy.setdefault(v["name"][:60], []).append(
                (values.get("busyTimeMsPerSecond", 0.0), values.get("backPressuredTimeMsPerSecond", 0.0)))
    except (httpx.HTTPError, KeyError, ValueError) as e:
        print(f"metrics sample failed: {e!r}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=120_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose flink_jobs/ is measured")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--label", default="")
    args = parser.parse_args()

    stack = Stack()
    s = stack.settings
    run_id = uuid.uuid4().hex[:8]
    topic, keyspace = f"bench_job_{run_id}", f"bench_job_{run_id}"
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(timeout=30)
    schema.apply_schema(list(s.cassandra_contact_points), keyspace, 1, port=s.cassandra_port)

    # Preload the backlog and remember what must be visible at the end.
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap_servers, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 20})
    buckets: Counter = Counter()
    tags: list[UserTag] = []
    for tag in Workload(seed=args.seed, step_ms=1, start_ms=1_700_000_000_000).tags(args.tags):
        accepted = UserTag.model_validate(tag)
        key, value = accepted.kafka_record()
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        buckets[(accepted.action, bucket_of(accepted.time_ms))] += 1
        tags.append(accepted)
    assert producer.flush(60) == 0, "backlog not fully acknowledged"
    # Probe only tags that cannot have been trimmed by the profile cap.
    per_profile = Counter((t.cookie, t.action) for t in tags)
    rng = random.Random(args.seed)
    probes = [t for t in tags[-50:] + rng.sample(tags, 300) if per_profile[(t.cookie, t.action)] <= 200]
    del tags
    before = Counter(stack.cassandra.table_write_counts(keyspace))

    port = free_port()
    checkpoints = Path(tempfile.mkdtemp(prefix="bench-job-chk-"))
    log_path = Path(tempfile.mkstemp(prefix="bench-job-", suffix=".log")[1])
    # A checkout from before the sinks' Maven module builds its own sinks.
    has_sinks_module = (args.repo / artifacts.SINKS_MODULE / "pom.xml").is_file()
    launch = stream_job_launch(
        connector_dir=artifacts.resolve("flink-connectors", s),
        sinks_jar=artifacts.build_sinks(s, args.repo) if has_sinks_module else None,
        checkpoint_dir=checkpoints,
        rest_port=port,
        repo=args.repo,
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"bench-{run_id}", "CASSANDRA_CONTACT_POINTS": ",".join(s.cassandra_contact_points),
        "CASSANDRA_PORT": str(s.cassandra_port), "CASSANDRA_KEYSPACE": keyspace,
        **launch.env,
    }
    with open(log_path, "wb") as log_file:
        job = subprocess.Popen(launch.argv, cwd=launch.cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True)
    proc = psutil.Process(job.pid)
    result: dict = {"label": args.label, "repo": str(args.repo), "tags": args.tags, "log": str(log_path)}
    try:
        deadline = time.monotonic() + args.timeout
        rest = f"http://127.0.0.1:{port}"
        while True:  # every task RUNNING
            if job.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"job did not start; see {log_path}")
            try:
                jobs = httpx.get(f"{rest}/jobs/overview", timeout=2).json()["jobs"]
                if jobs and all(j["state"] == "RUNNING" for j in jobs):
                    detail = httpx.get(f"{rest}/jobs/{jobs[0]['jid']}", timeout=2).json()
                    if all(v["status"] == "RUNNING" for v in detail["vertices"]):
                        break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        cassandra = psutil.Process(stack.get("cassandra").process.pid)
        running_at, cpu_at_start = time.monotonic(), tree_cpu_s(proc)
        cassandra_at_start = tree_cpu_s(cassandra)
        job_id = jobs[0]["jid"]
        busy: dict[str, list[tuple[float, float]]] = {}
        last_sample = 0.0

        with stack.cassandra_session(keyspace) as session:
            total = session.prepare("SELECT count FROM aggregate_cells WHERE action=? AND dims=0 AND bucket_ms=? "
                                    "AND origin='' AND brand_id='' AND category_id=''"
                                    " AND late_partition=-1 AND late_offset=-1")
            visible = session.prepare("SELECT time_ms FROM user_profiles WHERE cookie=? AND action=? AND time_ms=?")
            pending_buckets, pending_probes = dict(buckets), list(probes)
            while pending_buckets or pending_probes:
                if job.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"not drained: {len(pending_buckets)} buckets, {len(pending_probes)} "
                                     f"profiles left; see {log_path}")
                if time.monotonic() - last_sample > 5:
                    last_sample = time.monotonic()
                    sample_busy(rest, job_id, busy)
                pending_probes = [t for t in pending_probes if not session.execute(
                    visible, (t.cookie, t.action, t.time_ms)).one()]
                for (action, bucket), n in list(pending_buckets.items()):
                    row = session.execute(total, (action, bucket)).one()
                    if row is not None and row.count == n:
                        del pending_buckets[(action, bucket)]
                time.sleep(0.5)
        drained_s = time.monotonic() - running_at
        cpu_s = tree_cpu_s(proc) - cpu_at_start
        cassandra_cpu_s = tree_cpu_s(cassandra) - cassandra_at_start
        cpu_idle_0 = tree_cpu_s(proc)
        time.sleep(args.idle_s)
        idle_pct = 100 * (tree_cpu_s(proc) - cpu_idle_0) / args.idle_s
        writes = Counter(stack.cassandra.table_write_counts(keyspace)) - before
        result.update({
            "drain_s": round(drained_s, 1),
            "drain_tags_per_s": round(args.tags / drained_s),
            "job_cpu_s_per_1000_tags": round(1000 * cpu_s / args.tags, 3),
            # Includes this script's own checking reads (the same for every job version).
            "cassandra_cpu_s_per_1000_tags": round(1000 * cassandra_cpu_s / args.tags, 3),
            "writes_per_1000_tags": {t: round(1000 * n / args.tags) for t, n in writes.items()},
            "idle_cpu_pct": round(idle_pct, 1),
            # Mean over the drain of Flink's per-task busy / back-pressured ms per second.
            "busy_backpressured_ms_per_s": {
                name: [round(sum(b for b, _ in v) / len(v)), round(sum(p for _, p in v) / len(v))]
                for name, v in busy.items() if v},
            "job_rss_mb": round(tree_rss_mb(proc)),
            # Everything the retained checkpoints need (with the changelog
            # backend: its log files plus the materialized copies).
            "checkpoint_dir_mb": round(sum(f.stat().st_size for f in checkpoints.rglob("*") if f.is_file()) / 2**20, 1),
        })
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
        schema.drop_keyspace(list(s.cassandra_contact_points), keyspace, port=s.cassandra_port)
        admin.delete_topics([topic])[topic].result(timeout=30)
    print(orjson.dumps(result).decode())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
