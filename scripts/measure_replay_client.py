"""CPU per tag of the replay tool's client process (allezon-replay), interleaved A/B.

Runs `python -m replay.cli` once per (rate, variant, repeat), variants
interleaved (A, B, A, B, ...), each on fresh ground (`--start now`, its own
namespace), and prints per run and as medians:

  phase_ms_per_tag   the tool's own psutil cpu_times (user+system) around the
                     phase, from its JSON report (`client.cpu_s / tags.sent`)
  process_ms_per_tag the whole child process (imports and set-up included),
                     from wait4()'s resource usage
  load               the 1-minute load average at the end of the run

A variant is a directory holding a `replay/` (and `common/`) package to run
instead of the work tree's, e.g. a `git archive` of an older commit:

    mkdir -p /tmp/replay-baseline && git archive HEAD replay common | tar -x -C /tmp/replay-baseline
    .venv/bin/python scripts/measure_replay_client.py --base-url http://127.0.0.1:21080 \\
        --variant before=/tmp/replay-baseline --variant after=. --rates 1000,300 --tags 30000 --repeats 2

Extra options after `--` go to allezon-replay (e.g. `-- --no-probes --profile-every 0`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent


def run_once(directory: Path, python: str, base_url: str, rate: float, tags: int, namespace: str,
             extra: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report_path = f.name
    cmd = [python, "-m", "replay.cli", "--base-url", base_url, "--rate", str(rate), "--tags", str(tags),
           "--start", "now", "--namespace", namespace, "--quiet", "--report", report_path, *extra]
    env = dict(os.environ, PYTHONPATH=str(directory))
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=directory, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    report = orjson.loads(Path(report_path).read_bytes())
    os.unlink(report_path)
    phase = report["phases"][0]
    sent = phase["tags"]["sent"]
    return {
        "exit": proc.returncode, "wall_s": round(wall, 1), "sent": sent, "accepted": phase["tags"]["accepted"],
        "achieved_rate": phase["tags"]["achieved_rate"],
        "phase_ms_per_tag": round(phase["client"]["cpu_s"] * 1000 / sent, 4) if sent else None,
        "process_ms_per_tag": round((usage.ru_utime + usage.ru_stime) * 1000 / sent, 4) if sent else None,
        "cpu_pct": phase["client"]["cpu_pct"],
        "tag_p50_ms": phase["latency_ms"]["user_tags"]["p50"], "tag_p99_ms": phase["latency_ms"]["user_tags"]["p99"],
        "profiles_ok": phase["profiles"]["correct"], "profiles_wrong": phase["profiles"]["wrong"],
        "profile_p50_ms": phase["latency_ms"]["user_profiles"]["p50"],
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default="http://127.0.0.1:8080")
    p.add_argument("--variant", action="append", required=True, help="NAME=DIR (a dir holding replay/)")
    p.add_argument("--rates", default="1000,300")
    p.add_argument("--tags", type=int, default=30_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    p.add_argument("--out", help="write every run as JSON here")
    p.add_argument("extra", nargs="*", help="more allezon-replay options (after --)")
    args = p.parse_args()
    variants = [(v.split("=", 1)[0], Path(v.split("=", 1)[1]).resolve()) for v in args.variant]
    rates = [float(r) for r in args.rates.split(",")]
    stamp = time.strftime("%H%M%S")
    runs = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} load {os.getloadavg()}", flush=True)
    for rate in rates:
        for rep in range(args.repeats):
            for name, directory in variants:
                result = run_once(directory, args.python, args.base_url, rate, args.tags,
                                  f"cpu-{stamp}-{name}-{rate:g}-{rep}", args.extra)
                result.update(variant=name, rate=rate, repeat=rep)
                runs.append(result)
                print(orjson.dumps(result).decode(), flush=True)
    print("# medians")
    for rate in rates:
        for name, _ in variants:
            mine = [r for r in runs if r["rate"] == rate and r["variant"] == name]
            med = {k: statistics.median(r[k] for r in mine)
                   for k in ("phase_ms_per_tag", "process_ms_per_tag", "cpu_pct", "tag_p50_ms", "load")}
            print(f"rate {rate:g} {name}: " + " ".join(f"{k}={v:.4g}" for k, v in med.items())
                  + f" runs={len(mine)}", flush=True)
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(runs, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
