"""CPU per 1,000 tags and latency of the ingest API alone, on the running `make up` stack.

Sends a seeded stream straight to the ingest API (no proxy, no queries, no
probes) with the replay tool at a fixed rate and samples the CPU time of the
ingest API, Kafka and the load generator around it.

    .venv/bin/python -m harness.measure.ingest --rate 500 --tags 30000

`--url U --pid P` measures another ingest process instead (e.g. an older
checkout's, started by hand on another port against the same Kafka).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict

import psutil

from harness.local_stack.stack import Stack
from harness.replay.report import RunReport


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--tags", type=int, default=30_000)
    parser.add_argument("--url", default=None, help="default: the stack's ingest API")
    parser.add_argument("--pid", type=int, default=None, help="the process behind --url")
    args = parser.parse_args()
    stack = Stack()
    s = stack.settings
    pids: dict[str, int] = {}
    for name in ("ingest-api", "kafka"):
        pid = stack.get(name).process.pid
        if pid is None:
            raise SystemExit(f"{name} does not run (make up)")
        pids[name] = pid
    if args.pid:
        pids["ingest-api"] = args.pid
    url = args.url or f"http://{s.host}:{s.ingest_port}"
    never = str(10**12)
    argv = [sys.executable, "-m", "harness.replay.cli", "--base-url", url, "--rate", str(args.rate),
            "--tags", str(args.tags), "--namespace", f"ingest{int(time.time())}",
            "--profile-every", never, "--aggregate-every", never, "--no-probes", "--quiet", "--json"]
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    client = psutil.Popen(argv, stdout=subprocess.PIPE)
    client_cpu = 0.0
    while client.poll() is None:  # the client's own CPU, sampled until it exits
        client_cpu = cpu_seconds(client.pid)
        time.sleep(0.2)
    out = client.stdout.read()
    wall = time.monotonic() - started
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    phase = RunReport.from_dict(json.loads(out)).phases[0]
    cpu_ms_per_tag = {name: round(1000 * (after[name] - before[name]) / args.tags, 3) for name in pids}
    print(json.dumps({
        "rate": args.rate, "tags": asdict(phase.tags), "wall_s": round(wall, 1),
        "cpu_ms_per_tag": {**cpu_ms_per_tag, "client": round(1000 * client_cpu / args.tags, 3)},
        "latency_ms": asdict(phase.latency_ms.user_tags),
    }, indent=1))


if __name__ == "__main__":
    main()
