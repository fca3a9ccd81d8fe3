"""A seeded stream of user tags shaped like the reference workload.

Times advance `step_ms` per tag from a fixed start; cookies follow a skewed
(Zipf-like) distribution over `cookies` ranks; the other fields are drawn
uniformly from the SPEC's cardinalities. The same seed (and namespace) gives
the same stream, tag for tag.

The stream is *random access*: tag `i` is a pure function of (seed, i) (a
keyed BLAKE2b hash of the index cut into the fields), so the replay tool's
oracle stores only indices and rebuilds a tag when an expected answer needs it.

A record is the tuple
    (time_ms, cookie, country, device, action, origin, product_id, brand_id, category_id, price)
(`RECORD_FIELDS`); `tag()` turns it into the SPEC's JSON object and
`tag_bytes()` into its canonical JSON text (the bytes the platform echoes).
"""

from __future__ import annotations

import hashlib
import itertools
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, Protocol

import orjson

from common.timestamps import format_second

REFERENCE_START = datetime(2022, 3, 1, tzinfo=UTC)
REFERENCE_START_MS = int(REFERENCE_START.timestamp() * 1000)
DEVICES = ("PC", "MOBILE", "TV")
RECORD_FIELDS = ("time_ms", "cookie", "country", "device", "action", "origin",
                 "product_id", "brand_id", "category_id", "price")
PRODUCTS = 100_000
MAX_PRICE = 100_000
_MASK53 = (1 << 53) - 1


class TagSource(Protocol):
    """A random-access, time-ordered stream of tags (Workload, rees46.Rees46Source)."""

    @property
    def total(self) -> int | None: ...  # None: endless
    @property
    def may_tie(self) -> bool: ...  # two tags of one cookie may share a millisecond

    def record(self, i: int) -> tuple: ...
    def time_ms(self, i: int) -> int: ...
    def tag_bytes(self, i: int) -> bytes: ...
    def tag(self, i: int) -> dict: ...
    def describe(self) -> dict[str, Any]: ...


def format_tag_time(time_ms: int) -> str:
    """`2022-03-01T00:00:00.000Z` (UTC, millisecond precision, Z suffix)."""
    return f"{format_second(time_ms // 1000)}.{time_ms % 1000:03d}Z"


def record_to_tag(record: tuple) -> dict:
    time_ms, cookie, country, device, action, origin, product_id, brand, category, price = record
    return {
        "time": format_tag_time(time_ms),
        "cookie": cookie,
        "country": country,
        "device": device,
        "action": action,
        "origin": origin,
        "product_info": {"product_id": product_id, "brand_id": brand, "category_id": category, "price": price},
    }


def record_to_bytes(record: tuple) -> bytes:
    """Canonical JSON text (fields in SPEC order, compact), as the platform stores it."""
    return orjson.dumps(record_to_tag(record))


@lru_cache(maxsize=4)
def _zipf_cdf(ranks: int, skew: float) -> array:
    """Cumulative weights 1/r^skew of ranks 1..ranks (8 bytes per rank)."""
    return array("d", itertools.accumulate(r ** -skew for r in range(1, ranks + 1)))


@dataclass(frozen=True)
class Workload:
    seed: int = 1
    start_ms: int = REFERENCE_START_MS
    step_ms: int = 1
    cookies: int = 1_000_000
    countries: int = 100
    origins: int = 1_000
    brands: int = 250
    categories: int = 67
    buy_ratio: float = 0.1
    cookie_skew: float = 1.1  # Zipf exponent; higher = a few cookies dominate
    # Mixed into cookie names: two runs with different namespaces share no cookie.
    namespace: str = ""

    # --- derived, computed once ------------------------------------------------
    @cached_property
    def _key(self) -> bytes:
        return hashlib.blake2b(f"allezon-workload/{self.seed}/{self.namespace}".encode(), digest_size=32).digest()

    @cached_property
    def _cookie_prefix(self) -> str:
        salt = int.from_bytes(hashlib.blake2b(self._key, digest_size=4).digest(), "big")
        return f"cookie-{salt:08x}-"

    @cached_property
    def _cdf(self) -> array:
        return _zipf_cdf(self.cookies, self.cookie_skew)

    @cached_property
    def _names(self) -> tuple[tuple[str, ...], ...]:
        return (
            tuple(f"C{n:02d}" for n in range(self.countries)),
            tuple(f"origin-{n}" for n in range(self.origins)),
            tuple(f"brand-{n}" for n in range(self.brands)),
            tuple(f"category-{n}" for n in range(self.categories)),
        )

    @cached_property
    def _buy_threshold(self) -> int:
        return round(self.buy_ratio * 1_000_000)

    # --- the stream (TagSource) ---------------------------------------------------------
    total = None  # endless
    may_tie = False  # no two tags share a millisecond

    def time_ms(self, i: int) -> int:
        return self.start_ms + i * self.step_ms

    def record(self, i: int) -> tuple:
        """Tag `i` as a record tuple (see the module doc)."""
        x = int.from_bytes(hashlib.blake2b(i.to_bytes(8, "little"), key=self._key, digest_size=32).digest(), "little")
        cdf = self._cdf
        rank = bisect_left(cdf, (x & _MASK53) * (cdf[-1] / (1 << 53))) + 1
        x >>= 53
        countries, origins, brands, categories = self._names
        x, country = divmod(x, len(countries))
        x, device = divmod(x, 3)
        x, buy = divmod(x, 1_000_000)
        x, origin = divmod(x, len(origins))
        x, product = divmod(x, PRODUCTS)
        x, brand = divmod(x, len(brands))
        x, category = divmod(x, len(categories))
        price = x % MAX_PRICE + 1
        return (
            self.start_ms + i * self.step_ms,
            f"{self._cookie_prefix}{min(rank, self.cookies)}",
            countries[country],
            DEVICES[device],
            "BUY" if buy < self._buy_threshold else "VIEW",
            origins[origin],
            # product_id keeps its JSON type: half integers, half strings.
            product if product % 2 else f"p{product}",
            brands[brand],
            categories[category],
            price,
        )

    def tag(self, i: int) -> dict:
        return record_to_tag(self.record(i))

    def tag_bytes(self, i: int) -> bytes:
        return record_to_bytes(self.record(i))

    def tags(self, count: int | None = None, first: int = 0) -> Iterator[dict]:
        """Tags first, first+1, ... (endless without `count`)."""
        indices = range(first, first + count) if count is not None else itertools.count(first)
        for i in indices:
            yield self.tag(i)

    def describe(self) -> dict[str, Any]:
        return {"kind": "synthetic", "seed": self.seed, "namespace": self.namespace,
                "start": format_tag_time(self.start_ms),
                "step_ms": self.step_ms, "cookies": self.cookies, "cookie_skew": self.cookie_skew,
                "countries": self.countries, "origins": self.origins, "brands": self.brands,
                "categories": self.categories, "buy_ratio": self.buy_ratio}
