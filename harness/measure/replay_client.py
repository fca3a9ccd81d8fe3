"""CPU per tag of the replay tool's client process (allezon-replay), interleaved A/B.

Runs `python -m harness.replay.cli` once per (rate, variant, repeat), variants
interleaved (A, B, A, B, ...), each on fresh ground (`--start now`, its own
namespace), and prints per run and as medians:

  phase_ms_per_tag   the tool's own psutil cpu_times (user+system) around the
                     phase, from its report (`client.cpu_s / tags.sent`)
  process_ms_per_tag the whole child process (imports and set-up included),
                     from wait4()'s resource usage
  load               the 1-minute load average at the end of the run

A variant is a directory holding a `harness/replay/` (and `common/`) package to run
instead of the work tree's, e.g. a `git archive` of an older commit:

    mkdir -p /tmp/replay-baseline && git archive HEAD harness common | tar -x -C /tmp/replay-baseline
    .venv/bin/python -m harness.measure.replay_client --base-url http://127.0.0.1:21080 \\
        --variant before=/tmp/replay-baseline --variant after=. --rates 1000,300 --tags 30000 --repeats 2

Extra options after `--` go to allezon-replay (e.g. `-- --no-probes`).

`--echo-server` measures the client alone: instead of `--base-url`, a small
uvloop HTTP server in another process answers every tag 204 and every query
200 with its own body (the expected answer the tool sends along), so the
platform is never the limit and every answer is exact; freshness probes
make no sense there (their GETs carry no expected answer): add `-- --no-probes`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from harness.replay.report import RunReport

REPO = Path(__file__).resolve().parents[2]


class _Echo(asyncio.Protocol):
    """HTTP/1.1 keep-alive: POST /user_tags -> 204, anything else -> 200 echoing the body."""

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            if head.startswith(b"POST /user_tags "):
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def echo_server_main(port: int) -> None:
    import uvloop

    async def serve():
        server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", port)
        await server.serve_forever()
    uvloop.run(serve())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(directory: Path, python: str, base_url: str, rate: float, tags: int, namespace: str,
             extra: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report_path = f.name
    cmd = [python, "-m", "harness.replay.cli", "--base-url", base_url, "--rate", str(rate), "--tags", str(tags),
           "--start", "now", "--namespace", namespace, "--quiet", "--report", report_path, *extra]
    env = dict(os.environ, PYTHONPATH=str(directory))
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=directory, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    # The variant's report, in the JSON form that every version writes.
    report = RunReport.from_dict(orjson.loads(Path(report_path).read_bytes()))
    os.unlink(report_path)
    phase = report.phases[0]
    sent = phase.tags.sent
    return {
        "exit": proc.returncode, "wall_s": round(wall, 1), "sent": sent, "accepted": phase.tags.accepted,
        "achieved_rate": phase.tags.achieved_rate,
        "phase_ms_per_tag": round(phase.client.cpu_s * 1000 / sent, 4) if sent else None,
        "process_ms_per_tag": round((usage.ru_utime + usage.ru_stime) * 1000 / sent, 4) if sent else None,
        "cpu_pct": phase.client.cpu_pct,
        "tag_p50_ms": phase.latency_ms.user_tags.p50, "tag_p99_ms": phase.latency_ms.user_tags.p99,
        "profiles_ok": phase.profiles.correct, "profiles_wrong": phase.profiles.wrong,
        "profile_p50_ms": phase.latency_ms.user_profiles.p50,
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default="http://127.0.0.1:8080")
    p.add_argument("--echo-server", action="store_true", help="measure against an echo server (see above)")
    p.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)  # internal: be the echo server
    p.add_argument("--variant", action="append", required=True, help="NAME=DIR (a dir holding harness/replay/)")
    p.add_argument("--rates", default="1000,300")
    p.add_argument("--tags", type=int, default=30_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    p.add_argument("--out", help="write every run as JSON here")
    p.add_argument("extra", nargs="*", help="more allezon-replay options (after --)")
    args = p.parse_args()
    if args.serve_echo:
        echo_server_main(args.serve_echo)
        return 0
    echo = None
    if args.echo_server:
        port = free_port()
        echo = subprocess.Popen([sys.executable, "-m", "harness.measure.replay_client", "--variant=echo=.",
                                 f"--serve-echo={port}"], cwd=REPO)
        args.base_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    try:
        return measure(args)
    finally:
        if echo is not None:
            echo.terminate()
            echo.wait()


def measure(args: argparse.Namespace) -> int:
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
            med = {k: statistics.median(values) if (values := [r[k] for r in mine if r[k] is not None]) else None
                   for k in ("phase_ms_per_tag", "process_ms_per_tag", "cpu_pct", "tag_p50_ms", "load")}
            print(f"rate {rate:g} {name}: " + " ".join(f"{k}={v:.4g}" if v is not None else f"{k}=-"
                                                       for k, v in med.items())
                  + f" runs={len(mine)}", flush=True)
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(runs, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
