"""The sending and scoring core of `allezon-replay` and `make bench`.

    async with Runner(Workload(seed=1), RunnerConfig(base_url="http://127.0.0.1:8080")) as runner:
        step1 = await runner.run_phase(rate=500, tags=180_000)
        step2 = await runner.run_phase(rate=1000, tags=180_000)   # the same stream and oracle go on
        final = await runner.verify()
        everything = runner.report()

Tags are sent open loop (harness/replay/schedule.py): a bounded pool of
workers sends the due tags over keep-alive connections
(harness/replay/transport.py, harness/replay/http.py). Every 204 goes into
the oracle (harness/replay/oracle.py) and the ledger (harness/replay/ledger.py).

The reference query mix (harness/replay/queries.py) rides on the tag
schedule: one profile query per `profile_every` (10) tags, one aggregate
query per `aggregate_every` (1,000), each scored against the oracle's answer
(harness/replay/scoring.py). A profile query only asks about tags
acknowledged at least `profile_age_s` (10 s) ago, an aggregate query only
about buckets whose every tag was acknowledged at least `aggregate_age_s`
(60 s) ago; a tag that did not get a 204 may or may not be in the log, so its
cookie and bucket are never asked about. Freshness probes:
harness/replay/probes.py. What is measured: harness/replay/report.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from functools import partial

import psutil

from common.cube import BUCKET_MS
from harness.replay.config import RunnerConfig
from harness.replay.ledger import FAR, Ledger, SentBucket
from harness.replay.oracle import Oracle
from harness.replay.phase import Phase, show_progress, total_of
from harness.replay.probes import Probes
from harness.replay.queries import Query, QueryMix
from harness.replay.report import DroppedTag, OracleFigures, PhaseReport, RunReport
from harness.replay.schedule import Pace, send_on_schedule
from harness.replay.scoring import Scorer
from harness.replay.transport import Transport
from harness.replay.workload import TagSource, record_to_bytes

__all__ = ["Runner", "RunnerConfig"]

QueryBuilder = Callable[[float, Phase], Query | None]


class Runner:
    def __init__(self, source: TagSource, config: RunnerConfig | None = None):
        self.source = source
        self.config = c = config or RunnerConfig()
        self.oracle = Oracle(tag_of=source.tag, tag_bytes_of=source.tag_bytes)
        self.transport = Transport(c)
        self.probes = Probes(c, self.transport, self.oracle)
        self.ledger = Ledger(source, profile_age_s=c.profile_age_s, aggregate_age_s=c.aggregate_age_s,
                             on_bucket_done=self.probes.bucket_done)
        self.mix = QueryMix(source, self.oracle, self.ledger, random.Random(c.seed * 7919 + 17))
        self.scorer = Scorer(self.transport, self.oracle, self.ledger, c.examples)
        self.phases: list[Phase] = []
        # (index, loop time of the 204) of every acknowledged tag, in answer order:
        # crash tests check the log against it.
        self.acknowledged: list[tuple[int, float]] = []
        self._stop_sending = False
        self._chain: dict[str, tuple[int, asyncio.Future]] = {}  # same cookie+ms: send one after the other
        self._process = psutil.Process()
        self._tag_q: asyncio.Queue = asyncio.Queue()
        self._profile_q: asyncio.Queue = asyncio.Queue()
        self._aggregate_q: asyncio.Queue = asyncio.Queue()
        self._workers: list[asyncio.Task] = []

    @property
    def next_index(self) -> int:
        """The next tag of the stream to send (= tags handed to the workers so far)."""
        return self.ledger.next_index

    # --- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Runner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        c = self.config
        self.transport.open()
        self._workers = [asyncio.create_task(self._tag_worker()) for _ in range(c.tag_concurrency)]
        self._workers += [asyncio.create_task(self._query_worker(self._profile_q, self.mix.profile))
                          for _ in range(c.profile_concurrency)]
        self._workers += [asyncio.create_task(self._query_worker(self._aggregate_q, self.mix.aggregate))
                          for _ in range(c.aggregate_concurrency)]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for phase in self.phases:
            for task in list(phase.probes):
                task.cancel()
        await self.transport.close()

    # --- sending tags ---------------------------------------------------------------------
    def _dispatch(self, phase: Phase, i: int, due: float) -> None:
        record = self.source.record(i)
        entry, bucket = self.ledger.sent(i, record, phase)
        self._tag_q.put_nowait((i, record, due, phase, entry, bucket))
        phase.sent += 1
        n = i + 1
        if n % self.config.profile_every == 0:
            self._profile_q.put_nowait(phase)
        if n % self.config.aggregate_every == 0:
            self._aggregate_q.put_nowait(phase)

    async def _tag_worker(self) -> None:
        loop = asyncio.get_running_loop()
        may_tie = self.source.may_tie
        while True:
            item = await self._tag_q.get()
            try:
                await self._send_tag(loop, may_tie, *item)
            finally:
                self._tag_q.task_done()

    async def _send_tag(self, loop: asyncio.AbstractEventLoop, may_tie: bool, i: int, record: tuple, due: float,
                        phase: Phase, entry: list, bucket: SentBucket) -> None:
        cookie = record[1]
        mine = None
        if may_tie:  # two tags of a cookie in one ms: the second only after the first's answer
            before = self._chain.get(cookie)
            mine = loop.create_future()
            self._chain[cookie] = (record[0], mine)
            if before is not None and before[0] == record[0] and not before[1].done():
                await before[1]
        phase.lag.add((loop.time() - due) * 1000.0)
        status, payload = await self.transport.request(
            "user_tags", self.transport.tag_request(record_to_bytes(record)), phase)
        acked = loop.time()
        phase.last_tag_response = time.monotonic()
        if status == 204:
            self.oracle.add_record(i, record)
            self.acknowledged.append((i, acked))
            phase.accepted += 1
            self.probes.acknowledged(phase, record, acked)
        else:
            phase.dropped += 1
            reason = str(status) if status is not None else payload.decode(errors="replace").split(":")[0]
            phase.drop_reasons[reason] = phase.drop_reasons.get(reason, 0) + 1
            if len(phase.drop_examples) < self.config.examples:
                phase.drop_examples.append(DroppedTag(index=i, status=status,
                                                      body=payload[:300].decode(errors="replace")))
        self.ledger.answered(cookie, entry, bucket, acked if status == 204 else None)
        if mine is not None:
            mine.set_result(None)
            if self._chain.get(cookie, (None, None))[1] is mine:
                del self._chain[cookie]

    # --- the query mix -----------------------------------------------------------------------
    async def _query_worker(self, queue: asyncio.Queue, build: QueryBuilder) -> None:
        loop = asyncio.get_running_loop()
        while True:
            phase = await queue.get()
            try:
                query = build(loop.time(), phase)
                if query is not None:
                    await self.scorer.ask(query)
            finally:
                queue.task_done()

    # --- phases ------------------------------------------------------------------------------
    async def run_phase(self, rate: float, *, tags: int | None = None, duration: float | None = None,
                        speed: float | None = None, name: str | None = None, settle: bool = True,
                        max_backlog_s: float | None = None) -> PhaseReport:
        """Send `tags` tags (or `duration` s worth) at `rate` tags/s, continuing the stream.

        `speed`: pace by event time instead (event seconds per real second),
        never faster than `rate`. With `settle`, wait at the end until every
        request of the phase is answered and its freshness probes are done.
        `max_backlog_s`: stop the phase early (report `aborted`) when more
        than this many seconds of tags wait in the client queue.
        """
        if self.transport.tag_origin is None:
            raise RuntimeError("start() the runner first")
        count = tags if tags is not None else int(rate * (duration or 0))
        if self.source.total is not None:
            count = min(count, self.source.total - self.next_index)
        phase = Phase(name or f"phase-{len(self.phases) + 1}", rate, count)
        self.phases.append(phase)
        loop = asyncio.get_running_loop()
        cpu0 = self._cpu()
        progress = (asyncio.create_task(show_progress(phase, self._tag_q.qsize, self._cpu))
                    if self.config.progress else None)
        first = self.next_index
        pace = Pace(loop.time(), rate, first, speed=speed, event_ms=self.source.time_ms if count else None)
        try:
            await send_on_schedule(pace, first + count, phase, partial(self._dispatch, phase),
                                   queued=self._tag_q.qsize, stopped=lambda: self._stop_sending,
                                   max_backlog_s=max_backlog_s)
            phase.send_done = time.monotonic()
            self.ledger.close_passed_bucket()
            await self._drain()
            if settle and phase.probes:
                await asyncio.gather(*list(phase.probes), return_exceptions=True)
        finally:
            if progress is not None:
                progress.cancel()  # it ends its line itself
                await asyncio.gather(progress, return_exceptions=True)
            self._finish(phase, cpu0)
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
        self.ledger.close_stream()

    async def verify(self, *, profiles: int = 300, aggregates: int = 100, concurrency: int = 16,
                     poll_s: float = 0.5, name: str = "verify") -> PhaseReport:
        """After the stream: ask `profiles` profile and `aggregates` aggregate
        queries about everything sent (whole-stream ranges included), each
        polled until exact or until its SPEC deadline (10 s after the last
        204 for profiles, 60 s for buckets); only then is a difference wrong."""
        self.close_stream()
        await self._drain()
        phase = Phase(name, None, 0)
        self.phases.append(phase)
        cpu0 = self._cpu()
        ledger, mix = self.ledger, self.mix
        profile_deadline = ledger.last_ack + self.config.profile_age_s
        aggregate_deadline = ledger.last_ack + self.config.aggregate_age_s
        queries: list[tuple[Query, float]] = []
        if ledger.next_index and ledger.first_time is not None and ledger.last_time is not None:
            now = asyncio.get_running_loop().time()
            for _ in range(profiles):
                q = mix.profile(now, phase, frontier=FAR)
                if q is not None:
                    queries.append((q, profile_deadline))
            first_bucket = ledger.first_time - ledger.first_time % BUCKET_MS
            end_bucket = ledger.last_time - ledger.last_time % BUCKET_MS + BUCKET_MS
            # Every bucket, both actions, unfiltered and per filter subset.
            for start, end in ledger.untainted_ranges(first_bucket, end_bucket):
                for action in ("VIEW", "BUY"):
                    for mask in range(8):
                        q = mix.aggregate_query(start, end, phase, mask=mask, action=action,
                                                aggregates=["COUNT", "SUM_PRICE"])
                        if q is not None:
                            queries.append((q, aggregate_deadline))
            for _ in range(aggregates):
                q = mix.aggregate(now, phase, frontier=end_bucket + BUCKET_MS)
                if q is not None:
                    queries.append((q, aggregate_deadline))
        first_try, waited = await self.scorer.check_until_exact(queries, concurrency=concurrency, poll_s=poll_s)
        self._finish(phase, cpu0)
        phase.last_response = phase.ended or time.monotonic()
        phase.queries = len(queries)
        phase.exact_at_first_try = first_try
        phase.seconds_until_exact = waited.summary(2)
        return phase.report()

    # --- reporting ------------------------------------------------------------------------------
    def _cpu(self) -> float:
        t = self._process.cpu_times()
        return t.user + t.system

    def _finish(self, phase: Phase, cpu0: float) -> None:
        phase.ended = time.monotonic()
        phase.cpu_s = self._cpu() - cpu0
        phase.rss_mb = self._process.memory_info().rss / 2**20

    def report(self) -> RunReport:
        """Every phase, and the totals over them."""
        phases = [p.report() for p in self.phases]
        return RunReport(source=self.source.describe(), phases=phases,
                         total=total_of(self.phases, self.config.examples).report(),
                         oracle=OracleFigures(tags=self.oracle.tags_added))
