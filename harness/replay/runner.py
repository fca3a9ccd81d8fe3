"""The sending and scoring core of `allezon-replay` and `make bench`.

    async with Runner(Workload(seed=1), RunnerConfig(base_url="http://127.0.0.1:8080")) as runner:
        step1 = await runner.run_phase(rate=500, tags=180_000)
        step2 = await runner.run_phase(rate=1000, tags=180_000)   # the same stream and oracle go on
        final = await runner.verify()

Tags are sent open loop: tag i is due at a time fixed by the clock (phase start
+ i / rate, or by event time / speed), whatever the platform answers; a bounded
pool of workers sends them over keep-alive connections (harness/replay/http.py), so when the
platform is slow the tags wait in the client queue and the schedule lag shows it.

The reference query mix rides on the tag schedule: one profile query per
`profile_every` (10) tags, one aggregate query per `aggregate_every` (1,000).
Each carries its expected answer as the body (the query API's debug mode) and
is judged against it. A profile query only asks about tags acknowledged at
least `profile_age_s` (10 s) ago, with a time range that ends before the first
tag that is not that old; an aggregate query only about buckets whose every tag
was acknowledged at least `aggregate_age_s` (60 s) ago. A tag that did not get
a 204 may or may not be in the log: its cookie and bucket are never asked about.

Freshness probes: about once a second one acknowledged tag is looked up in its
cookie's profile until it shows (profile freshness: 204 -> visible); each
bucket, once its last tag is acknowledged, is polled every 0.5 s until both
actions' totals equal the oracle (bucket freshness: last 204 -> exact).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import orjson
import psutil

from common.cube import BUCKET_MS
from common.time_range import format_bucket, format_second
from harness.replay.http import ClientError, ClientOSError, Origin, ServerDisconnectedError
from harness.replay.oracle import PROFILE_CAP, Oracle
from harness.replay.stats import Samples
from harness.replay.workload import record_to_bytes

ENDPOINTS = ("user_tags", "user_profiles", "aggregates")
_INF = float("inf")
_TICK = 0.001  # scheduler granularity (s): tags due within it are sent together
_FAR = 1 << 60  # "no tag will ever be sent at or after this time"
# Profile time-range lengths the mix draws from (ms); None = a random length up to 2 h.
PROFILE_RANGES_MS = (1_000, 10_000, 60_000, 300_000, 600_000, 3_600_000, 6 * 3_600_000, 86_400_000, None)
AGGREGATE_LISTS = (["COUNT"], ["SUM_PRICE"], ["COUNT", "SUM_PRICE"], ["SUM_PRICE", "COUNT"])


class TagSource(Protocol):
    total: int | None  # None: endless
    may_tie: bool  # two tags of one cookie may share a millisecond

    def record(self, i: int) -> tuple: ...
    def time_ms(self, i: int) -> int: ...
    def tag_bytes(self, i: int) -> bytes: ...
    def tag(self, i: int) -> dict: ...
    def describe(self) -> dict: ...


@dataclass
class RunnerConfig:
    base_url: str = "http://127.0.0.1:8080"  # where tags go (and queries, unless query_url)
    query_url: str | None = None
    tag_concurrency: int = 64
    profile_concurrency: int = 32
    aggregate_concurrency: int = 4
    profile_every: int = 10
    aggregate_every: int = 1_000
    profile_age_s: float = 10.0
    aggregate_age_s: float = 60.0
    tag_timeout_s: float = 5.0
    profile_timeout_s: float = 10.0
    aggregate_timeout_s: float = 60.0
    profile_probe_every_s: float = 1.0  # 0 = no profile freshness probes
    profile_probe_interval_s: float = 0.2
    profile_probe_deadline_s: float = 30.0
    bucket_probes: bool = True
    bucket_probe_interval_s: float = 0.5
    bucket_probe_deadline_s: float = 120.0
    # Probes load the platform too: at most this many run at once (more are not started, and counted).
    max_profile_probes: int = 8
    max_bucket_probes: int = 4
    seed: int = 1
    progress: bool = True
    examples: int = 5  # wrong answers / drops kept per phase


def _range_text(start_ms: int, end_ms: int, millis: bool) -> str:
    def one(ms: int) -> str:
        text = format_second(ms // 1000)
        return f"{text}.{ms % 1000:03d}" if millis else text
    return f"{one(start_ms)}_{one(end_ms)}"


class _Bucket:
    """Send-side bookkeeping of one 1-minute bucket of event time."""

    __slots__ = ("start", "pending", "last_ack", "closed", "tainted", "done", "phase")

    def __init__(self, start: int, phase: Phase):
        self.start = start
        self.pending = 0
        self.last_ack = -_INF
        self.closed = False
        self.tainted = False
        self.done = False
        self.phase = phase


class Phase:
    """Counters and samples of one phase (step) of a run."""

    def __init__(self, name: str, rate: float | None, target_tags: int):
        self.name = name
        self.rate = rate
        self.target_tags = target_tags
        self.sent = 0
        self.accepted = 0
        self.dropped = 0
        self.drop_reasons: dict[str, int] = {}
        self.correct = {"user_profiles": 0, "aggregates": 0}
        self.wrong = {"user_profiles": 0, "aggregates": 0}
        self.indeterminate = 0  # profile answers that differ, but the platform may now legitimately give
        self.undetermined = 0  # profile picks not asked: the answer would depend on what may be dropped
        self.skipped = {"user_profiles": 0, "aggregates": 0}  # mix slots with nothing askable
        self.latency = {e: Samples() for e in ENDPOINTS}
        self.errors = {e: 0 for e in ENDPOINTS}
        self.lag = Samples()  # ms from a tag's due time until it was sent
        self.profile_freshness = Samples()  # s
        self.bucket_freshness = Samples()  # s
        self.probe_timeouts = {"profile": 0, "bucket": 0}
        self.probes_not_started = {"profile": 0, "bucket": 0}
        self.probes: set[asyncio.Task] = set()
        self.examples: list[dict] = []
        self.drop_examples: list[dict] = []
        self.started = time.monotonic()
        self.send_done: float | None = None
        self.last_response = self.started
        self.last_tag_response = self.started
        self.ended: float | None = None
        self.cpu_s = 0.0
        self.rss_mb = 0.0
        self.queue_max = 0
        self.extra: dict[str, Any] = {}

    def exact_pct(self) -> float | None:
        answered = sum(self.correct.values()) + sum(self.wrong.values())
        return round(100.0 * sum(self.correct.values()) / answered, 3) if answered else None

    def report(self) -> dict:
        elapsed = (self.ended or time.monotonic()) - self.started
        busy = max(1e-9, self.last_tag_response - self.started)
        return {
            "name": self.name,
            "target_rate": self.rate,
            "elapsed_s": round(elapsed, 2),
            "tags": {
                "sent": self.sent, "accepted": self.accepted, "dropped": self.dropped,
                "drop_reasons": self.drop_reasons,
                "achieved_rate": round(self.sent / busy, 1) if self.sent else 0.0,
            },
            "profiles": {"correct": self.correct["user_profiles"], "wrong": self.wrong["user_profiles"],
                         "indeterminate": self.indeterminate, "not_asked_undetermined": self.undetermined,
                         "skipped": self.skipped["user_profiles"]},
            "aggregates": {"correct": self.correct["aggregates"], "wrong": self.wrong["aggregates"],
                           "skipped": self.skipped["aggregates"]},
            "exact_pct": self.exact_pct(),
            "latency_ms": {e: self.latency[e].summary() for e in ENDPOINTS},
            "errors": self.errors,
            "freshness_s": {
                "profile": {**self.profile_freshness.summary(3), "timeouts": self.probe_timeouts["profile"],
                            "not_started": self.probes_not_started["profile"]},
                "bucket": {**self.bucket_freshness.summary(3), "timeouts": self.probe_timeouts["bucket"],
                           "not_started": self.probes_not_started["bucket"]},
            },
            "client": {
                "cpu_pct": round(100.0 * self.cpu_s / elapsed, 1) if elapsed > 0 else None,
                "cpu_s": round(self.cpu_s, 2),
                "cpu_ms_per_1000_tags": round(1e6 * self.cpu_s / self.sent, 1) if self.sent else None,
                "rss_mb": round(self.rss_mb, 1),
                "schedule_lag_ms": self.lag.summary(),
                "tag_queue_max": self.queue_max,
            },
            "wrong_examples": self.examples,
            "drop_examples": self.drop_examples,
            **self.extra,
        }


@dataclass
class _Query:
    endpoint: str
    url: str
    expected: bytes
    phase: Phase
    context: dict = field(default_factory=dict)


class Runner:
    def __init__(self, source: TagSource, config: RunnerConfig | None = None):
        self.source = source
        self.config = c = config or RunnerConfig()
        self.oracle = Oracle(tag_of=source.tag, tag_bytes_of=source.tag_bytes)
        self.rng = random.Random(c.seed * 7919 + 17)
        self.phases: list[Phase] = []
        self.next_index = 0
        self.stream_closed = False
        # (index, loop time of the 204) of every acknowledged tag, in answer order:
        # crash tests check the log against it.
        self.acknowledged: list[tuple[int, float]] = []
        self._stop_sending = False
        # Send order = index order = time order (sources are time-ordered).
        self._pending: deque[list] = deque()  # [time_ms, ack] per tag not yet old enough; ack None/-1 (dropped)/t
        self._safe_n = 0  # tags 0.._safe_n-1 were acknowledged >= profile_age_s ago (or dropped)
        self._inflight: dict[str, int] = {}  # cookie -> tags sent, not answered
        self._chain: dict[str, tuple[int, asyncio.Future]] = {}  # same cookie+ms: send one after the other
        self._tainted_cookies: set[str] = set()
        self._tainted_buckets: set[int] = set()
        self._buckets: deque[_Bucket] = deque()  # not yet old enough for aggregate queries
        self._current_bucket: _Bucket | None = None
        self._bucket_spans: dict[int, list[int]] = {}  # bucket -> [first index, last index]
        self._agg_frontier: int | None = None  # every bucket before it is final and old enough
        self._first_time: int | None = None
        self._last_time: int | None = None
        self._last_ack = -_INF
        self._next_probe = 0.0
        self._running_probes = {"profile": 0, "bucket": 0}
        self._process = psutil.Process()
        self._tag_origin: Origin | None = None  # set by start()
        self._query_origin: Origin | None = None
        self._tag_q: asyncio.Queue = asyncio.Queue()
        self._profile_q: asyncio.Queue = asyncio.Queue()
        self._aggregate_q: asyncio.Queue = asyncio.Queue()
        self._workers: list[asyncio.Task] = []
        self._tag_head = b""  # POST /user_tags up to the Content-Length value (start())
        self._timeouts = {"user_tags": c.tag_timeout_s, "user_profiles": c.profile_timeout_s,
                          "aggregates": c.aggregate_timeout_s}

    # --- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Runner:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        c = self.config
        # Idle connections are dropped after 3 s, before a server would (uvicorn closes them after 5 s
        # by default). Tags and queries share the connections when they go to the same place.
        self._tag_origin = Origin(c.base_url, idle_timeout=3.0)
        query_url = c.query_url or c.base_url
        same = query_url.rstrip("/") == c.base_url.rstrip("/")
        self._query_origin = self._tag_origin if same else Origin(query_url, idle_timeout=3.0)
        self._tag_head = self._tag_origin.head_bytes("POST", "/user_tags")
        self._workers = [asyncio.create_task(self._tag_worker()) for _ in range(c.tag_concurrency)]
        self._workers += [asyncio.create_task(self._query_worker(self._profile_q, self._build_profile))
                          for _ in range(c.profile_concurrency)]
        self._workers += [asyncio.create_task(self._query_worker(self._aggregate_q, self._build_aggregate))
                          for _ in range(c.aggregate_concurrency)]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for phase in self.phases:
            for task in list(phase.probes):
                task.cancel()
        for origin in {self._tag_origin, self._query_origin} - {None}:
            await origin.close()

    # --- HTTP ------------------------------------------------------------------------------
    async def _request(self, endpoint: str, origin: Origin, data: bytes, phase: Phase | None
                       ) -> tuple[int | None, bytes]:
        """Send `data` (a whole request); (status, body), status None on a transport error or
        timeout (body = the error). The latency is measured from writing the request to the
        response's last byte.

        A query (read-only) whose kept-alive connection turns out closed by the
        server is sent once more on a new one; a tag never is (it could be stored twice).
        """
        retry = endpoint != "user_tags"
        timeout = self._timeouts[endpoint]
        while True:
            try:
                status, payload, seconds = await origin.request(data, timeout)
                break
            except (ServerDisconnectedError, ClientOSError) as exc:
                if retry:
                    retry = False
                    continue
                error = exc
            except (ClientError, TimeoutError, OSError) as exc:
                error = exc
            if phase is not None:
                phase.errors[endpoint] += 1
            return None, (type(error).__name__ + (f": {error}" if str(error) else "")).encode()
        if phase is not None:
            phase.latency[endpoint].add(seconds * 1000.0)
            phase.last_response = time.monotonic()
        return status, payload

    def _query_bytes(self, method: str, path_and_query: str, body: bytes | None = None) -> bytes:
        return self._query_origin.request_bytes(method, path_and_query, body)

    # --- sending tags ---------------------------------------------------------------------
    def _dispatch(self, i: int, due: float, phase: Phase) -> None:
        record = self.source.record(i)
        time_ms, cookie = record[0], record[1]
        if self._first_time is None:
            self._first_time = time_ms
        self._last_time = time_ms
        entry = [time_ms, None]
        self._pending.append(entry)
        bucket_start = time_ms - time_ms % BUCKET_MS
        bucket = self._current_bucket
        if bucket is None or bucket.start != bucket_start:
            if bucket is not None:
                self._close_bucket(bucket)
            bucket = self._current_bucket = _Bucket(bucket_start, phase)
            self._buckets.append(bucket)
            self._bucket_spans[bucket_start] = [i, i]
        else:
            self._bucket_spans[bucket_start][1] = i
        bucket.pending += 1
        self._inflight[cookie] = self._inflight.get(cookie, 0) + 1
        self._tag_q.put_nowait((i, record, due, phase, entry, bucket))
        phase.sent += 1
        n = i + 1
        if n % self.config.profile_every == 0:
            self._profile_q.put_nowait(phase)
        if n % self.config.aggregate_every == 0:
            self._aggregate_q.put_nowait(phase)

    def _close_bucket(self, bucket: _Bucket) -> None:
        bucket.closed = True
        if bucket.pending == 0:
            self._bucket_done(bucket)

    def _bucket_done(self, bucket: _Bucket) -> None:
        if bucket.done:
            return
        bucket.done = True
        if self.config.bucket_probes and not bucket.tainted:
            self._probe(bucket.phase, "bucket", self._bucket_probe(bucket))

    async def _tag_worker(self) -> None:
        loop = asyncio.get_running_loop()
        may_tie = self.source.may_tie
        while True:
            item = await self._tag_q.get()
            try:
                await self._send_tag(loop, may_tie, *item)
            finally:
                self._tag_q.task_done()

    async def _send_tag(self, loop, may_tie, i, record, due, phase, entry, bucket) -> None:
        cookie = record[1]
        mine = None
        if may_tie:  # two tags of a cookie in one ms: the second only after the first's answer
            before = self._chain.get(cookie)
            mine = loop.create_future()
            self._chain[cookie] = (record[0], mine)
            if before is not None and before[0] == record[0] and not before[1].done():
                await before[1]
        phase.lag.add((loop.time() - due) * 1000.0)
        body = record_to_bytes(record)
        status, payload = await self._request("user_tags", self._tag_origin,
                                              self._tag_head + b"%d\r\n\r\n" % len(body) + body, phase)
        acked = loop.time()
        phase.last_tag_response = time.monotonic()
        left = self._inflight[cookie] - 1
        if left:
            self._inflight[cookie] = left
        else:
            del self._inflight[cookie]
        bucket.pending -= 1
        if status == 204:
            self.oracle.add_record(i, record)
            self.acknowledged.append((i, acked))
            entry[1] = acked
            phase.accepted += 1
            if acked > bucket.last_ack:
                bucket.last_ack = acked
            if acked > self._last_ack:
                self._last_ack = acked
            every = self.config.profile_probe_every_s
            if every > 0 and acked >= self._next_probe:
                self._next_probe = acked + every
                self._probe(phase, "profile", self._profile_probe(phase, record, acked))
        else:
            entry[1] = -1.0
            phase.dropped += 1
            reason = str(status) if status is not None else payload.decode(errors="replace").split(":")[0]
            phase.drop_reasons[reason] = phase.drop_reasons.get(reason, 0) + 1
            if len(phase.drop_examples) < self.config.examples:
                phase.drop_examples.append({"index": i, "status": status,
                                            "body": payload[:300].decode(errors="replace")})
            self._tainted_cookies.add(cookie)
            bucket.tainted = True
            self._tainted_buckets.add(bucket.start)
        if bucket.closed and bucket.pending == 0:
            self._bucket_done(bucket)
        if mine is not None:
            mine.set_result(None)
            if self._chain.get(cookie, (None, None))[1] is mine:
                del self._chain[cookie]

    # --- what may be asked ------------------------------------------------------------------
    def _next_unsent_time(self) -> int:
        total = self.source.total
        if self.stream_closed or (total is not None and self.next_index >= total):
            return _FAR
        return self.source.time_ms(self.next_index)

    def _profile_frontier(self, now: float) -> int:
        """Every tag with time before the result was acknowledged >= profile_age_s ago (or dropped)."""
        age = self.config.profile_age_s
        pending = self._pending
        while pending:
            ack = pending[0][1]
            if ack is None or (ack >= 0 and now - ack < age):
                return pending[0][0]
            pending.popleft()
            self._safe_n += 1
        return self._next_unsent_time()

    def _aggregate_frontier(self, now: float) -> int | None:
        """Every bucket before the result is final and its last 204 >= aggregate_age_s old."""
        age = self.config.aggregate_age_s
        buckets = self._buckets
        while buckets and buckets[0].done and now - buckets[0].last_ack >= age:
            done = buckets.popleft()
            self._agg_frontier = done.start + BUCKET_MS
        # Buckets between the last final one and the oldest open one hold no tag and never will.
        return buckets[0].start if buckets else self._agg_frontier

    # --- the query mix -----------------------------------------------------------------------
    async def _query_worker(self, queue: asyncio.Queue, build) -> None:
        loop = asyncio.get_running_loop()
        while True:
            phase = await queue.get()
            try:
                query = build(loop.time(), phase)
                if query is not None:
                    await self._ask(query)
            finally:
                queue.task_done()

    def _pick_safe_index(self, n: int) -> int:
        lo = 0 if self.rng.random() < 0.2 else max(0, n - 100_000)
        return self.rng.randrange(lo, n)

    def _build_profile(self, now: float, phase: Phase, frontier: int | None = None) -> _Query | None:
        """A profile query about an old-enough tag (with `frontier`: about any sent tag, times before it)."""
        rng = self.rng
        if frontier is None:
            frontier, pool = self._profile_frontier(now), self._safe_n
        else:
            pool = self.next_index
        if pool == 0:
            phase.skipped["user_profiles"] += 1
            return None
        for _ in range(4):
            record = self.source.record(self._pick_safe_index(pool))
            t, cookie = record[0], record[1]
            if cookie in self._tainted_cookies:
                continue
            length = rng.choice(PROFILE_RANGES_MS) or rng.randint(1, 7_200_000)
            end = min(t + 1 + rng.randrange(length), frontier)
            start = end - length
            millis = True
            if rng.random() < 0.3:  # second precision, if it still covers only old-enough tags
                s2, e2 = start - start % 1000, end - end % 1000
                if e2 > s2:
                    start, end, millis = s2, e2, False
            r = rng.random()
            limit = None if r < 0.35 else 200 if r < 0.55 else rng.choice((0, 1)) if r < 0.62 else rng.randint(2, 199)
            effective = PROFILE_CAP if limit is None else limit
            refs = self.oracle.profile_refs(cookie, start, end, effective, self._inflight.get(cookie, 0))
            if refs is None:
                phase.undetermined += 1
                continue
            params = {"time_range": _range_text(start, end, millis)}
            if limit is not None:
                params["limit"] = limit
            url = f"/user_profiles/{quote(cookie, safe='')}?{urlencode(params)}"
            return _Query("user_profiles", url, self.oracle.profile_bytes(cookie, refs), phase,
                          {"cookie": cookie, "refs": refs, "start": start, "limit": effective})
        phase.skipped["user_profiles"] += 1
        return None

    def _build_aggregate(self, now: float, phase: Phase, frontier: int | None = None) -> _Query | None:
        rng = self.rng
        frontier = self._aggregate_frontier(now) if frontier is None else frontier
        first = self._first_time
        if frontier is None or first is None or frontier <= first - first % BUCKET_MS:
            phase.skipped["aggregates"] += 1
            return None
        first_bucket = first - first % BUCKET_MS
        for _ in range(4):
            r = rng.random()
            buckets = rng.randint(1, 10) if r < 0.9 else rng.randint(11, 120) if r < 0.97 else rng.randint(121, 1440)
            span = (frontier - first_bucket) // BUCKET_MS
            end = frontier - BUCKET_MS * rng.randrange(min(span, 5))
            start = end - buckets * BUCKET_MS
            if self._tainted_buckets and any(b in self._tainted_buckets for b in range(start, end, BUCKET_MS)):
                continue
            query = self.aggregate_query(start, end, phase, millis=rng.random() < 0.5)
            if query is not None:
                return query
        phase.skipped["aggregates"] += 1
        return None

    def aggregate_query(self, start: int, end: int, phase: Phase, *, millis: bool = False,
                        mask: int | None = None, action: str | None = None,
                        aggregates: list[str] | None = None) -> _Query | None:
        rng = self.rng
        mask = rng.randrange(8) if mask is None else mask
        values: dict[str, str] = {}
        if mask:
            spans = [self._bucket_spans[b] for b in range(max(start, end - 120 * BUCKET_MS), end, BUCKET_MS)
                     if b in self._bucket_spans]
            if spans:
                lo, hi = rng.choice(spans)
                record = self.source.record(rng.randint(lo, hi))
            elif self.next_index:
                record = self.source.record(rng.randrange(self.next_index))
            else:
                return None
            for bit, name, value in ((1, "origin", record[5]), (2, "brand_id", record[7]), (4, "category_id", record[8])):
                if mask & bit:
                    values[name] = value
        action = action or rng.choice(("VIEW", "BUY"))
        aggregates = aggregates or rng.choice(AGGREGATE_LISTS)
        expected = self.oracle.aggregates(start, end, action, aggregates, values.get("origin"),
                                          values.get("brand_id"), values.get("category_id"))
        params = [("time_range", _range_text(start, end, millis)), ("action", action),
                  *(("aggregates", a) for a in aggregates), *values.items()]
        return _Query("aggregates", "/aggregates?" + urlencode(params), orjson.dumps(expected), phase)

    async def _ask(self, query: _Query, *, score: bool = True) -> bool | None:
        """Send one query with its expected answer; True/False = exact or not, None = not judged."""
        phase = query.phase
        status, body = await self._request(query.endpoint, self._query_origin,
                                           self._query_bytes("POST", query.url, query.expected), phase)
        correct = status == 200 and (body == query.expected or _same_json(body, query.expected))
        if not correct and query.endpoint == "user_profiles":
            ctx = query.context
            if not self.oracle.profile_still_exact(ctx["cookie"], ctx["refs"], ctx["start"], ctx["limit"],
                                                   self._inflight.get(ctx["cookie"], 0)):
                phase.indeterminate += 1
                return None
        if not score:
            return correct
        if correct:
            phase.correct[query.endpoint] += 1
        else:
            phase.wrong[query.endpoint] += 1
            if len(phase.examples) < self.config.examples:
                phase.examples.append({"url": query.url, "status": status,
                                       "expected": _clip(query.expected), "got": _clip(body)})
        return correct

    # --- freshness probes ----------------------------------------------------------------------
    def _probe(self, phase: Phase, kind: str, coroutine) -> None:
        limit = self.config.max_profile_probes if kind == "profile" else self.config.max_bucket_probes
        if self._running_probes[kind] >= limit:
            coroutine.close()
            phase.probes_not_started[kind] += 1
            return
        self._running_probes[kind] += 1
        task = asyncio.create_task(coroutine)
        phase.probes.add(task)

        def finished(t: asyncio.Task) -> None:
            phase.probes.discard(t)
            self._running_probes[kind] -= 1
        task.add_done_callback(finished)

    @staticmethod
    def _backoff(base: float, waited: float) -> float:
        """Poll interval: `base` for the first 2 s, then 2.5x, then 5x after 10 s (less load when slow)."""
        return base if waited < 2.0 else base * 2.5 if waited < 10.0 else base * 5

    async def _profile_probe(self, phase: Phase, record: tuple, acked: float) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        t, cookie = record[0], record[1]
        request = self._query_bytes("GET", f"/user_profiles/{quote(cookie, safe='')}?"
                                    + urlencode({"time_range": _range_text(t, t + 1, True)}))
        wanted = record_to_bytes(record)
        while True:
            status, body = await self._request("user_profiles", self._query_origin, request, None)
            now = loop.time()
            if status == 200 and wanted in body:
                phase.profile_freshness.add(now - acked)
                return
            if now - acked > c.profile_probe_deadline_s:
                phase.probe_timeouts["profile"] += 1
                return
            await asyncio.sleep(self._backoff(c.profile_probe_interval_s, now - acked))

    async def _bucket_probe(self, bucket: _Bucket) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        phase = bucket.phase
        time_range = _range_text(bucket.start, bucket.start + BUCKET_MS, False)
        checks = []
        for action in ("VIEW", "BUY"):
            count, total = self.oracle.bucket_figures(bucket.start, action)
            request = self._query_bytes("GET", "/aggregates?" + urlencode(
                [("time_range", time_range), ("action", action), ("aggregates", "COUNT"), ("aggregates", "SUM_PRICE")]))
            checks.append((request, [format_bucket(bucket.start), action, str(count), str(total)]))
        while True:
            exact = True
            for request, row in checks:
                status, body = await self._request("aggregates", self._query_origin, request, None)
                if status != 200 or orjson.loads(body).get("rows") != [row]:
                    exact = False
                    break
            now = loop.time()
            if exact:
                phase.bucket_freshness.add(max(0.0, now - bucket.last_ack))
                return
            if now - bucket.last_ack > c.bucket_probe_deadline_s:
                phase.probe_timeouts["bucket"] += 1
                return
            await asyncio.sleep(self._backoff(c.bucket_probe_interval_s, now - bucket.last_ack))

    # --- phases ------------------------------------------------------------------------------
    async def run_phase(self, rate: float, *, tags: int | None = None, duration: float | None = None,
                        speed: float | None = None, name: str | None = None, settle: bool = True,
                        max_backlog_s: float | None = None) -> dict:
        """Send `tags` tags (or `duration` s worth) at `rate` tags/s, continuing the stream.

        `speed`: pace by event time instead (event seconds per real second),
        never faster than `rate`. With `settle`, wait at the end until every
        request of the phase is answered and its freshness probes are done.
        `max_backlog_s`: stop the phase early (report `aborted`) when more
        than this many seconds of tags wait in the client queue: the platform
        does not keep up, and an open-loop run would otherwise go on for ever.
        """
        if self._tag_origin is None:
            raise RuntimeError("start() the runner first")
        count = tags if tags is not None else int(rate * (duration or 0))
        if self.source.total is not None:
            count = min(count, self.source.total - self.next_index)
        phase = Phase(name or f"phase-{len(self.phases) + 1}", rate, count)
        self.phases.append(phase)
        loop = asyncio.get_running_loop()
        cpu0 = self._cpu()
        progress = asyncio.create_task(self._progress(phase)) if self.config.progress else None
        first, end = self.next_index, self.next_index + count
        t0 = loop.time()
        interval = 1.0 / rate
        ev0 = self.source.time_ms(first) if count and speed else 0
        due = t0 - interval
        try:
            while self.next_index < end and not self._stop_sending:
                now = loop.time()
                while self.next_index < end:
                    i = self.next_index
                    if speed:
                        nxt = max(due + interval, t0 + (self.source.time_ms(i) - ev0) / 1000.0 / speed)
                    else:
                        nxt = t0 + (i - first) * interval
                    if nxt > now + _TICK:
                        break
                    due = nxt
                    self._dispatch(i, due, phase)
                    self.next_index = i + 1
                backlog = self._tag_q.qsize()
                phase.queue_max = max(phase.queue_max, backlog)
                if max_backlog_s is not None and backlog > max_backlog_s * rate:
                    phase.extra["aborted"] = (f"client backlog of {backlog} tags (> {max_backlog_s:g} s at "
                                              f"{rate:g}/s) after {self.next_index - first} tags")
                    break
                if self.next_index < end:
                    # Timers have ~1 ms resolution: wake at most once per tick, send what is due by then.
                    await asyncio.sleep(max(nxt - now, _TICK))
            phase.send_done = time.monotonic()
            if self._current_bucket is not None and self._next_unsent_time() >= self._current_bucket.start + BUCKET_MS:
                self._close_bucket(self._current_bucket)  # the next tag (if any) is in a later bucket
            await self._drain()
            if settle and phase.probes:
                await asyncio.gather(*list(phase.probes), return_exceptions=True)
        finally:
            if progress is not None:
                progress.cancel()
                await asyncio.gather(progress, return_exceptions=True)
                print(file=sys.stderr, flush=True)
            phase.ended = time.monotonic()
            phase.cpu_s = self._cpu() - cpu0
            phase.rss_mb = self._process.memory_info().rss / 2**20
        return phase.report()

    async def _drain(self) -> None:
        await self._tag_q.join()
        await self._profile_q.join()
        await self._aggregate_q.join()

    def stop_sending(self) -> None:
        """End the running phase now (it still waits for the answers in flight)."""
        self._stop_sending = True

    def close_stream(self) -> None:
        """No more tags will be sent: the last bucket is closed."""
        self.stream_closed = True
        if self._current_bucket is not None:
            self._close_bucket(self._current_bucket)

    async def verify(self, *, profiles: int = 300, aggregates: int = 100, concurrency: int = 16,
                     poll_s: float = 0.5, name: str = "verify") -> dict:
        """After the stream: ask `profiles` profile and `aggregates` aggregate
        queries about everything sent (whole-stream ranges included), each
        polled until exact or until its SPEC deadline (10 s after the last
        204 for profiles, 60 s for buckets); only then is a difference wrong."""
        self.close_stream()
        await self._drain()
        phase = Phase(name, None, 0)
        self.phases.append(phase)
        cpu0 = self._cpu()
        loop = asyncio.get_running_loop()
        profile_deadline = self._last_ack + self.config.profile_age_s
        aggregate_deadline = self._last_ack + self.config.aggregate_age_s
        queries: list[tuple[_Query, float]] = []
        if self.next_index and self._first_time is not None:
            now = loop.time()
            for _ in range(profiles):
                q = self._build_profile(now, phase, frontier=_FAR)
                if q is not None:
                    queries.append((q, profile_deadline))
            first_bucket = self._first_time - self._first_time % BUCKET_MS
            end_bucket = self._last_time - self._last_time % BUCKET_MS + BUCKET_MS
            for start, end in self._untainted_ranges(first_bucket, end_bucket):  # every bucket, both actions, unfiltered and per filter subset
                for action in ("VIEW", "BUY"):
                    for mask in range(8):
                        q = self.aggregate_query(start, end, phase, mask=mask, action=action,
                                                 aggregates=["COUNT", "SUM_PRICE"])
                        if q is not None:
                            queries.append((q, aggregate_deadline))
            for _ in range(aggregates):
                q = self._build_aggregate(now, phase, frontier=end_bucket + BUCKET_MS)
                if q is not None:
                    queries.append((q, aggregate_deadline))
        semaphore = asyncio.Semaphore(concurrency)
        first_try = {"user_profiles": 0, "aggregates": 0}
        waited = Samples()

        async def check(query: _Query, deadline: float) -> None:
            async with semaphore:
                began = loop.time()
                attempt = 0
                while True:
                    attempt += 1
                    last = loop.time() >= deadline
                    result = await self._ask(query, score=last)
                    if result is None:  # indeterminate: not scored
                        return
                    if result:
                        if not last:
                            phase.correct[query.endpoint] += 1
                        if attempt == 1:
                            first_try[query.endpoint] += 1
                        waited.add(loop.time() - began)
                        return
                    if last:
                        return
                    await asyncio.sleep(min(poll_s, max(0.0, deadline - loop.time())))

        await asyncio.gather(*(check(q, d) for q, d in queries))
        phase.ended = time.monotonic()
        phase.last_response = phase.ended
        phase.cpu_s = self._cpu() - cpu0
        phase.rss_mb = self._process.memory_info().rss / 2**20
        phase.extra = {"queries": len(queries), "exact_at_first_try": first_try,
                       "seconds_until_exact": waited.summary(2)}
        return phase.report()

    def _untainted_ranges(self, start: int, end: int, most: int = 1440) -> list[tuple[int, int]]:
        """[start, end) cut into ranges of at most `most` buckets that hold no bucket with a dropped tag."""
        ranges, run = [], None
        for bucket in range(start, end + BUCKET_MS, BUCKET_MS):
            usable = bucket < end and bucket not in self._tainted_buckets
            if usable and run is None:
                run = bucket
            if run is not None and (not usable or bucket - run == most * BUCKET_MS):
                ranges.append((run, bucket))
                run = bucket if usable else None
        return ranges

    # --- reporting ------------------------------------------------------------------------------
    def _cpu(self) -> float:
        t = self._process.cpu_times()
        return t.user + t.system

    async def _progress(self, phase: Phase) -> None:
        marks = {e: 0 for e in ENDPOINTS}
        last_sent, last_t = phase.sent, time.monotonic()
        cpu_last = self._cpu()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            cpu = self._cpu()
            p99 = {}
            for e in ENDPOINTS:
                samples = phase.latency[e]
                p99[e] = samples.tail_p(marks[e], 0.99)
                marks[e] = len(samples)
            rate = (phase.sent - last_sent) / (now - last_t)
            cpu_pct = 100.0 * (cpu - cpu_last) / (now - last_t)
            last_sent, last_t, cpu_last = phase.sent, now, cpu

            def ms(v):
                return "-" if v is None else f"{v:.0f}"
            line = (f"{phase.name}: {phase.sent}/{phase.target_tags} tags {rate:.0f}/s "
                    f"204 {phase.accepted} drop {phase.dropped} | profiles {phase.correct['user_profiles']} ok "
                    f"{phase.wrong['user_profiles']} wrong | aggregates {phase.correct['aggregates']} ok "
                    f"{phase.wrong['aggregates']} wrong | p99 ms tag {ms(p99['user_tags'])} "
                    f"prof {ms(p99['user_profiles'])} agg {ms(p99['aggregates'])} | queue {self._tag_q.qsize()} "
                    f"| cpu {cpu_pct:.0f}%")
            print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)

    def report(self) -> dict:
        """Every phase, and the totals over them."""
        phases = [p.report() for p in self.phases]
        total = Phase("total", None, 0)
        for p in self.phases:
            total.sent += p.sent
            total.accepted += p.accepted
            total.dropped += p.dropped
            for reason, n in p.drop_reasons.items():
                total.drop_reasons[reason] = total.drop_reasons.get(reason, 0) + n
            total.indeterminate += p.indeterminate
            total.undetermined += p.undetermined
            for e in ("user_profiles", "aggregates"):
                total.correct[e] += p.correct[e]
                total.wrong[e] += p.wrong[e]
                total.skipped[e] += p.skipped[e]
            for e in ENDPOINTS:
                total.latency[e].values.extend(p.latency[e].values)
                total.errors[e] += p.errors[e]
            total.lag.values.extend(p.lag.values)
            total.profile_freshness.values.extend(p.profile_freshness.values)
            total.bucket_freshness.values.extend(p.bucket_freshness.values)
            for k in total.probe_timeouts:
                total.probe_timeouts[k] += p.probe_timeouts[k]
                total.probes_not_started[k] += p.probes_not_started[k]
            total.examples.extend(p.examples)
            total.drop_examples.extend(p.drop_examples)
            total.cpu_s += p.cpu_s
            total.queue_max = max(total.queue_max, p.queue_max)
        if self.phases:
            total.started = self.phases[0].started
            total.ended = self.phases[-1].ended or time.monotonic()
            total.last_response = max(p.last_response for p in self.phases)
            total.last_tag_response = max(p.last_tag_response for p in self.phases)
            total.rss_mb = self.phases[-1].rss_mb
        total.examples = total.examples[: self.config.examples]
        total.drop_examples = total.drop_examples[: self.config.examples]
        return {"source": self.source.describe(), "phases": phases, "total": total.report(),
                "oracle": {"tags": self.oracle.tags_added}}


def _same_json(a: bytes, b: bytes) -> bool:
    try:
        return orjson.loads(a) == orjson.loads(b)
    except orjson.JSONDecodeError:
        return False


def _clip(body: bytes, limit: int = 600) -> str:
    text = body.decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
