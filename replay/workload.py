"""A seeded stream of user tags shaped like the reference workload.

Times advance `step_ms` per tag from a fixed start; cookies follow a skewed
(Zipf-like) distribution; the other fields are drawn uniformly from the SPEC's
cardinalities. The same seed gives the same stream, tag for tag.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

REFERENCE_START = datetime(2022, 3, 1, tzinfo=timezone.utc)
DEVICES = ("PC", "MOBILE", "TV")


def format_tag_time(time_ms: int) -> str:
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=time_ms)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{time_ms % 1000:03d}Z"


@dataclass(frozen=True)
class Workload:
    seed: int = 1
    start_ms: int = int(REFERENCE_START.timestamp() * 1000)
    step_ms: int = 1
    cookies: int = 1_000_000
    countries: int = 100
    origins: int = 1_000
    brands: int = 250
    categories: int = 67
    buy_ratio: float = 0.1
    cookie_skew: float = 1.1  # Zipf exponent; higher = a few cookies dominate

    def tags(self, count: int | None = None) -> Iterator[dict]:
        rng = random.Random(self.seed)
        # Zipf-like cookie popularity via an inverse CDF over ranks.
        weights = [1.0 / (rank ** self.cookie_skew) for rank in range(1, self.cookies + 1)]
        cdf = list(itertools.accumulate(weights))
        total = cdf[-1]
        # A cookie's name is a stable function of its rank and the seed.
        salt = rng.getrandbits(32)
        counter = range(count) if count is not None else itertools.count()
        for i in counter:
            rank = bisect.bisect_left(cdf, rng.random() * total)
            product = rng.randrange(100_000)
            yield {
                "time": format_tag_time(self.start_ms + i * self.step_ms),
                "cookie": f"cookie-{salt:08x}-{rank}",
                "country": f"C{rng.randrange(self.countries):02d}",
                "device": DEVICES[rng.randrange(3)],
                "action": "BUY" if rng.random() < self.buy_ratio else "VIEW",
                "origin": f"origin-{rng.randrange(self.origins)}",
                "product_info": {
                    # product_id keeps its JSON type: half integers, half strings.
                    "product_id": product if product % 2 else f"p{product}",
                    "brand_id": f"brand-{rng.randrange(self.brands)}",
                    "category_id": f"category-{rng.randrange(self.categories)}",
                    "price": rng.randrange(1, 100_000),
                },
            }
