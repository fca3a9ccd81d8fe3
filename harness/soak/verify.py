"""The end-of-soak check: answers about the retained window of event time against an oracle.

The window is every whole 1-minute bucket from (newest tag - retention) to the
newest tag's bucket; older buckets may legitimately be gone, and a bucket
partly outside the window is not asked about. The oracle is rebuilt from the
workload (deterministic by seed) over the window's tags only: the replay tool's
AggregateIndex for the buckets, and its Oracle for the sampled cookies only,
so memory follows the window, not the run.

A profile asked over the window is exact from window tags alone: they are the
cookie's newest, so the 200 newest in range never depend on older ones.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import httpx
import orjson

from common.cube import BUCKET_MS, bucket_of
from common.limits import MAX_AGGREGATE_RANGE_MS, PROFILE_CAP
from harness.replay.aggregate_index import AggregateIndex
from harness.replay.oracle import Oracle
from harness.replay.queries import range_text
from harness.replay.scoring import clip, same_json
from harness.replay.workload import Workload

AGGREGATES = ["COUNT", "SUM_PRICE"]
_FILTERS = (("origin", 5), ("brand_id", 7), ("category_id", 8))  # name, index in a workload record


@dataclass
class Check:
    label: str
    url: str
    expected: bytes
    # Explains a difference (which buckets); only called for a wrong answer.
    explain: Callable[[bytes], str]


@dataclass
class Verdict:
    window: str = ""
    buckets: int = 0
    checks: int = 0
    exact: int = 0
    undetermined_profiles: int = 0
    wrong: int = 0
    examples: list[str] = field(default_factory=list)  # the first few wrong answers, explained

    @property
    def passed(self) -> bool:
        return self.checks > 0 and self.wrong == 0


def window_of(workload: Workload, produced: int, retention_ms: int) -> tuple[int, int, int]:
    """(first bucket, end of the last bucket, first tag index) of the retained window."""
    newest = workload.time_ms(produced - 1)
    cutoff = newest - retention_ms
    first = max(-(-cutoff // BUCKET_MS) * BUCKET_MS, bucket_of(workload.time_ms(0)))
    first_index = max(0, -(-(first - workload.start_ms) // workload.step_ms))
    return first, bucket_of(newest) + BUCKET_MS, first_index


def _explain_rows(expected: bytes) -> Callable[[bytes], str]:
    def explain(body: bytes) -> str:
        try:
            got = {row[0]: row for row in orjson.loads(body)["rows"]}
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            return f"answer {clip(body, 300)}"
        wrong = [(row, got.get(row[0])) for row in orjson.loads(expected)["rows"] if got.get(row[0]) != row]
        examples = "; ".join(f"{want[0]}: expected {want[2:]}, got {have[2:] if have else None}"
                             for want, have in wrong[:3])
        return f"{len(wrong)} bucket(s) wrong, e.g. {examples}"
    return explain


def _explain_profile(expected: bytes) -> Callable[[bytes], str]:
    def explain(body: bytes) -> str:
        try:
            got = orjson.loads(body)
            want = orjson.loads(expected)
            return (f"views {len(got['views'])} (expected {len(want['views'])}), "
                    f"buys {len(got['buys'])} (expected {len(want['buys'])}); answer {clip(body, 300)}")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return f"answer {clip(body, 300)}"
    return explain


def build_checks(workload: Workload, produced: int, retention_ms: int, *, profiles: int, filtered: int,
                 seed: int) -> tuple[list[Check], Verdict]:
    """Every bucket of the window for both actions, `filtered` filtered queries, `profiles` profiles."""
    first, end, first_index = window_of(workload, produced, retention_ms)
    verdict = Verdict(window=f"{range_text(first, end, False)} ({(end - first) // BUCKET_MS} buckets, "
                      f"tags {first_index:,}..{produced - 1:,})", buckets=2 * (end - first) // BUCKET_MS)
    rng = random.Random(seed)
    cookies: set[str] = set()
    for _ in range(20 * profiles):  # the Zipf head repeats: draw until enough distinct cookies
        if len(cookies) >= profiles:
            break
        cookies.add(workload.record(rng.randrange(first_index, produced))[1])
    aggregates = AggregateIndex()
    oracle = Oracle(tag_of=workload.tag, tag_bytes_of=workload.tag_bytes)
    for i in range(first_index, produced):
        r = workload.record(i)
        aggregates.add(1 if r[4] == "BUY" else 0, r[0], r[5], r[7], r[8], r[9])
        if r[1] in cookies:
            oracle.add_record(i, r)

    checks: list[Check] = []
    # Ranges of at most MAX_AGGREGATE_RANGE_MS, the longest one query may ask.
    spans = [(s, min(s + MAX_AGGREGATE_RANGE_MS, end)) for s in range(first, end, MAX_AGGREGATE_RANGE_MS)]
    for action in ("VIEW", "BUY"):
        for s, e in spans:
            expected = orjson.dumps(aggregates.aggregates(s, e, action, AGGREGATES))
            params = [("time_range", range_text(s, e, False)), ("action", action),
                      *(("aggregates", a) for a in AGGREGATES)]
            checks.append(Check(f"aggregates {action} {range_text(s, e, False)}", "/aggregates?" + urlencode(params),
                                expected, _explain_rows(expected)))
    for _ in range(filtered):
        s, e = rng.choice(spans)
        record = workload.record(rng.randrange(first_index, produced))
        mask = rng.randrange(1, 8)
        values = {name: record[index] for bit, (name, index) in enumerate(_FILTERS) if mask >> bit & 1}
        action = rng.choice(("VIEW", "BUY"))
        expected = orjson.dumps(aggregates.aggregates(s, e, action, AGGREGATES, values.get("origin"),
                                                      values.get("brand_id"), values.get("category_id")))
        params = [("time_range", range_text(s, e, False)), ("action", action),
                  *(("aggregates", a) for a in AGGREGATES), *values.items()]
        checks.append(Check(f"aggregates {action} {values}", "/aggregates?" + urlencode(params), expected,
                            _explain_rows(expected)))
    # Profiles over the window up to just after the newest tag, at millisecond precision.
    p_start, p_end = first, workload.time_ms(produced - 1) + 1
    for cookie in sorted(cookies):
        refs = oracle.profile_refs(cookie, p_start, p_end, PROFILE_CAP)
        if refs is None:
            verdict.undetermined_profiles += 1
            continue
        expected = oracle.profile_bytes(cookie, refs)
        url = f"/user_profiles/{quote(cookie, safe='')}?" + urlencode(
            [("time_range", range_text(p_start, p_end, True)), ("limit", str(PROFILE_CAP))])
        checks.append(Check(f"profile {cookie}", url, expected, _explain_profile(expected)))
    verdict.checks = len(checks)
    return checks, verdict


def run_checks(base_url: str, checks: list[Check], verdict: Verdict, deadline_s: float,
               examples: int = 10) -> Verdict:
    """Ask every check; ask the wrong ones again until exact or `deadline_s` passed, then record them."""
    pending = list(checks)
    last: dict[str, tuple[int, bytes]] = {}
    deadline = time.monotonic() + deadline_s
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while True:
            still = []
            for check in pending:
                try:
                    response = client.get(check.url)
                    status, body = response.status_code, response.content
                except httpx.HTTPError as exc:
                    status, body = 0, repr(exc).encode()
                if status == 200 and (body == check.expected or same_json(body, check.expected)):
                    verdict.exact += 1
                else:
                    last[check.label] = (status, body)
                    still.append(check)
            pending = still
            if not pending or time.monotonic() >= deadline:
                break
            print(f"verify: {len(pending)} answer(s) not exact yet, asking again", flush=True)
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    verdict.wrong = len(pending)
    for check in pending[:examples]:
        status, body = last[check.label]
        detail = check.explain(body) if status == 200 else f"status {status}: {clip(body, 300)}"
        verdict.examples.append(f"{check.label}: {detail}")
    return verdict
