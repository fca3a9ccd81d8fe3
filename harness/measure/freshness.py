"""Profile freshness over time: how long a new tag takes to show in its profile.

One probe tag at a time goes through the front door; its profile is polled
until the tag is in it, and the next probe follows. A stall of the pipeline (a
rescale, a killed TaskManager) shows as one probe whose latency is the stall.

    python -m harness.measure.freshness --duration 180 --csv freshness.csv

Each line printed: the wall-clock time the probe was posted, and its latency.
Probe tags are dated 2001-01-01 (outside any workload's buckets), under the
cookie "freshness-probe <run id>".
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from urllib.parse import quote, urlencode

import httpx
import orjson

from harness.replay.workload import format_tag_time

PROBE_EPOCH_MS = 978_307_200_000  # 2001-01-01T00:00:00Z


def probe_once(client: httpx.Client, base_url: str, cookie: str, time_ms: int, timeout_s: float) -> float | None:
    """Seconds from the 204 of one tag until its profile shows it (None: not within timeout_s)."""
    tag = {"time": format_tag_time(time_ms), "cookie": cookie, "country": "PL", "device": "PC", "action": "VIEW",
           "origin": "freshness", "product_info": {"product_id": 1, "brand_id": "probe", "category_id": "probe",
                                                   "price": 1}}
    posted = time.monotonic()
    response = client.post(f"{base_url}/user_tags", content=orjson.dumps(tag))
    if response.status_code != 204:
        return None
    acked = time.monotonic()
    window = f"{format_tag_time(time_ms)[:-1]}_{format_tag_time(time_ms + 1)[:-1]}"
    url = f"{base_url}/user_profiles/{quote(cookie, safe='')}?" + urlencode({"time_range": window})
    while time.monotonic() - posted < timeout_s:
        answer = client.post(url)
        if answer.status_code == 200 and answer.json()["views"]:
            return time.monotonic() - acked
        time.sleep(0.1)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.measure.freshness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--timeout", type=float, default=120.0, help="a probe not visible by then counts as lost")
    parser.add_argument("--csv", help="write wall_time,latency_s rows here")
    args = parser.parse_args(argv)

    cookie = f"freshness-probe {uuid.uuid4().hex[:8]}"
    rows: list[tuple[float, float | None]] = []
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        n = 0
        while time.monotonic() - started < args.duration:
            wall = time.time()
            try:
                latency = probe_once(client, args.base_url, cookie, PROBE_EPOCH_MS + n, args.timeout)
            except httpx.TransportError:
                latency = None
            n += 1
            rows.append((wall, latency))
            stamp = time.strftime("%H:%M:%S", time.localtime(wall))
            print(f"{stamp} {'lost' if latency is None else f'{latency:.2f} s'}", flush=True)
            time.sleep(0.5)
    if args.csv:
        with open(args.csv, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["wall_time", "latency_s"])
            writer.writerows((f"{w:.3f}", "" if s is None else f"{s:.3f}") for w, s in rows)
    seen = [s for _, s in rows if s is not None]
    if not seen:
        print("no probe was visible", file=sys.stderr)
        return 1
    print(f"probes {len(rows)}, lost {len(rows) - len(seen)}, latency median {statistics.median(seen):.2f} s, "
          f"max {max(seen):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
