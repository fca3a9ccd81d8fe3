"""Debug mode: a request body may carry the answer the client expects.

We compare it with ours, log the first differences and count mismatches in a
Prometheus counter; the client always gets our answer.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from prometheus_client import Counter

log = logging.getLogger(__name__)

ANSWERS_CHECKED = Counter(
    "allezon_debug_answers_checked_total", "Answers compared with a client's expectation", ["endpoint"])
ANSWERS_MISMATCHED = Counter(
    "allezon_debug_answers_mismatched_total", "Answers that differed from a client's expectation", ["endpoint"])


def compare_with_expected(endpoint: str, body: bytes, ours: bytes, context: str) -> None:
    if not body.strip():
        return
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError:
        log.warning("debug body is not JSON endpoint=%s %s", endpoint, context)
        return
    ANSWERS_CHECKED.labels(endpoint).inc()
    actual = orjson.loads(ours)
    if expected == actual:
        return
    ANSWERS_MISMATCHED.labels(endpoint).inc()
    log.warning("answer differs from expected endpoint=%s %s: %s", endpoint, context,
                describe_difference(expected, actual))


def describe_difference(expected: object, actual: object, path: str = "$", limit: int = 5) -> str:
    found: list[str] = []

    def walk(e: Any, a: Any, p: str) -> None:
        if len(found) >= limit:
            return
        if type(e) is not type(a):
            found.append(f"{p}: expected {e!r:.120} got {a!r:.120}")
        elif isinstance(e, dict):
            for key in dict.fromkeys([*e, *a]):
                walk(e.get(key), a.get(key), f"{p}.{key}")
        elif isinstance(e, list):
            if len(e) != len(a):
                found.append(f"{p}: expected {len(e)} items got {len(a)}")
            for i, (x, y) in enumerate(zip(e, a, strict=False)):
                walk(x, y, f"{p}[{i}]")
        elif e != a:
            found.append(f"{p}: expected {e!r:.120} got {a!r:.120}")

    walk(expected, actual, path)
    return "; ".join(found)
