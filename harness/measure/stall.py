"""What an operation on the Flink cluster costs: seconds of stalled processing, under load.

Against a running `make up` stack: streams synthetic tags with the replay tool
at --rate, probes profile freshness without pause (freshness.py), and runs
each step in turn, --gap seconds apart. A step's cost is the worst probe
latency from the step's start until --gap seconds later (the baseline is the
median latency before the first step).

    python -m harness.measure.stall --rate 300 --steps adaptive
    python -m harness.measure.stall --rate 300 --steps savepoint
    python -m harness.measure.stall --rate 300 --steps kill-taskmanager

adaptive: `make scale TASKMANAGERS=2`, then 1 (the adaptive scheduler rescales
the running job). savepoint: `make job-stop`, `make scale`, `make job-submit`
(stop with a savepoint, resubmit at the new size), up and then down.
kill-taskmanager: three times, kill -9 the TaskManager that runs the job
(one without a free slot), then `make up` (which starts it again).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence

import httpx

from harness.local_stack.config import REPO_ROOT
from harness.measure.freshness import PROBE_EPOCH_MS, probe_once

KILL_BUSY_TASKMANAGER = f"{sys.executable} -m harness.measure.stall --kill-busy-taskmanager"
STEPS = {
    "adaptive": [["make scale TASKMANAGERS=2"], ["make scale TASKMANAGERS=1"]],
    "savepoint": [["make job-stop", "make scale TASKMANAGERS=2", "make job-submit"],
                  ["make job-stop", "make scale TASKMANAGERS=1", "make job-submit"]],
    "kill-taskmanager": [[KILL_BUSY_TASKMANAGER, "make up"]] * 3,
}


def kill_busy_taskmanager() -> int:
    """kill -9 a TaskManager of the local stack that has no free slot (it runs the job)."""
    from harness.local_stack.flink import rest_get
    from harness.local_stack.stack import Stack

    stack = Stack()
    busy = [tm["id"] for tm in rest_get(stack.settings, "/taskmanagers")["taskmanagers"] if tm["freeSlots"] == 0]
    if not busy:
        print("no TaskManager runs the job", file=sys.stderr)
        return 1
    stack.kill(f"flink-{busy[0]}")
    return 0


class Prober(threading.Thread):
    """Posts a probe tag every `interval` s, each awaited in its own thread, so that
    a stall shows as every probe posted during it waiting until it ends."""

    def __init__(self, base_url: str, interval: float = 1.0, timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.base_url, self.interval, self.timeout, self.running = base_url, interval, timeout, True
        self.samples: list[tuple[float, float | None]] = []
        self.in_flight: dict[int, float] = {}
        self.lock = threading.Lock()

    def _probe(self, n: int, cookie: str) -> None:
        posted = time.monotonic()
        with self.lock:
            self.in_flight[n] = posted
        try:
            with httpx.Client(timeout=10) as client:
                latency = probe_once(client, self.base_url, cookie, PROBE_EPOCH_MS + n, self.timeout)
        except httpx.TransportError:
            latency = None
        with self.lock:
            del self.in_flight[n]
            self.samples.append((posted, latency))

    def run(self) -> None:
        cookie, n = f"stall-probe {uuid.uuid4().hex[:8]}", 0
        while self.running:
            threading.Thread(target=self._probe, args=(n, cookie), daemon=True).start()
            n += 1
            time.sleep(self.interval)

    def worst_between(self, start: float, end: float) -> float:
        """The longest a probe posted in [start, end) waited (one still waiting: until now;
        one never visible: the timeout)."""
        now = time.monotonic()
        with self.lock:
            done = [(p, s if s is not None else self.timeout) for p, s in self.samples]
            waiting = [(p, now - p) for p in self.in_flight.values()]
        return max([s for p, s in done + waiting if start <= p < end], default=0.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.measure.rescale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", choices=sorted(STEPS))
    parser.add_argument("--kill-busy-taskmanager", action="store_true", help="only that, then exit")
    parser.add_argument("--rate", type=int, default=300, help="tags/s streamed meanwhile (default 300)")
    parser.add_argument("--gap", type=float, default=90.0, help="seconds between steps (default 90)")
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    args = parser.parse_args(argv)
    if args.kill_busy_taskmanager:
        return kill_busy_taskmanager()
    if args.steps is None:
        parser.error("--steps is required")

    duration = int(args.gap * (len(STEPS[args.steps]) + 1) + 30)
    replay = subprocess.Popen(
        [sys.executable, "-m", "harness.replay.cli", "--rate", str(args.rate), "--duration", str(duration),
         "--quiet", "--namespace", f"rescale-{uuid.uuid4().hex[:6]}"], cwd=REPO_ROOT)
    prober = Prober(args.base_url)
    prober.start()
    time.sleep(args.gap)
    with prober.lock:
        baseline = [s for _, s in prober.samples if s is not None]
    results = []
    for step in STEPS[args.steps]:
        began = time.monotonic()
        for command in step:
            subprocess.run(command, shell=True, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        took = time.monotonic() - began
        time.sleep(max(0.0, args.gap - took))
        results.append((" && ".join(step), took, prober.worst_between(began, began + args.gap)))
    prober.running = False
    replay.wait()
    time.sleep(5)  # the last probes land
    print(f"baseline probe latency median {statistics.median(baseline):.2f} s, max {max(baseline):.2f} s "
          f"({len(baseline)} probes)")
    for name, took, worst in results:
        print(f"{name}: commands {took:.1f} s, worst probe latency {worst:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
