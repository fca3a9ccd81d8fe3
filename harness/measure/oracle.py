"""Oracle memory and time per added tag, and the cookie skew, for 600,000 seeded tags.

    .venv/bin/python -m harness.measure.oracle
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter

from harness.replay.oracle import Oracle
from harness.replay.workload import Workload

TAGS = 600_000


def main() -> None:
    w = Workload(seed=1)
    n = TAGS
    records = [w.record(i) for i in range(n)]
    cookies = Counter(r[1] for r in records)
    tracemalloc.start()
    o = Oracle()
    t = time.perf_counter()
    for i, r in enumerate(records):
        o.add_record(i, r)
    dt = time.perf_counter() - t
    mem = tracemalloc.get_traced_memory()[0]
    print(f"oracle: {mem/n:.0f} bytes/tag ({mem/2**20:.0f} MB), {dt/n*1e6:.1f} us/tag (under tracemalloc)")
    t = time.perf_counter()
    o2 = Oracle()
    tracemalloc.stop()
    for i, r in enumerate(records):
        o2.add_record(i, r)
    print(f"without tracemalloc: {(time.perf_counter()-t)/n*1e6:.1f} us/tag")
    print(f"top cookie share {cookies.most_common(1)[0][1]/n:.1%}, distinct cookies {len(cookies)}")


if __name__ == "__main__":
    main()
