"""Freshness probes.

Profile freshness: about once a second (`profile_probe_every_s`) one
acknowledged tag is looked up in its cookie's profile (a GET, a 1 ms range
at its time) until it shows: 204 -> visible. Bucket freshness: each bucket,
once closed and its every tag answered (and none dropped), is polled until
both actions' unfiltered totals equal the oracle's: last 204 -> exact. A
probe that waits longer polls less often, and at most `max_profile_probes`
and `max_bucket_probes` run at once (others are not started, and counted):
probes load the platform too. Probes count in neither the latency
percentiles nor the exact figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from common.cube import BUCKET_MS
from common.timestamps import format_bucket
from harness.replay.config import RunnerConfig
from harness.replay.ledger import SentBucket
from harness.replay.oracle import Oracle
from harness.replay.phase import Phase
from harness.replay.queries import range_text
from harness.replay.transport import Transport
from harness.replay.workload import record_to_bytes


def backoff(base: float, waited: float) -> float:
    """Poll interval: `base` for the first 2 s, then 2.5x, then 5x after 10 s (less load when slow)."""
    return base if waited < 2.0 else base * 2.5 if waited < 10.0 else base * 5


class Probes:
    def __init__(self, config: RunnerConfig, transport: Transport, oracle: Oracle):
        self.config = config
        self.transport = transport
        self.oracle = oracle
        self._running = {"profile": 0, "bucket": 0}
        self._next_profile_probe = 0.0  # loop time

    def acknowledged(self, phase: Phase, record: tuple, acked: float) -> None:
        """A tag got its 204 at loop time `acked`: probe its profile if one is due."""
        every = self.config.profile_probe_every_s
        if every > 0 and acked >= self._next_profile_probe:
            self._next_profile_probe = acked + every
            self._start(phase, "profile", self._profile(phase, record, acked))

    def bucket_done(self, bucket: SentBucket) -> None:
        """Every tag of a closed bucket has its answer: probe its totals (unless one was dropped)."""
        if self.config.bucket_probes and not bucket.tainted:
            self._start(bucket.phase, "bucket", self._bucket(bucket))

    def _start(self, phase: Phase, kind: str, coroutine: Coroutine[Any, Any, None]) -> None:
        limit = self.config.max_profile_probes if kind == "profile" else self.config.max_bucket_probes
        if self._running[kind] >= limit:
            coroutine.close()
            phase.probes_not_started[kind] += 1
            return
        self._running[kind] += 1
        task = asyncio.create_task(coroutine)
        phase.probes.add(task)

        def finished(t: asyncio.Task) -> None:
            phase.probes.discard(t)
            self._running[kind] -= 1
        task.add_done_callback(finished)

    async def _profile(self, phase: Phase, record: tuple, acked: float) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        t, cookie = record[0], record[1]
        request = self.transport.query_request("GET", f"/user_profiles/{quote(cookie, safe='')}?"
                                               + urlencode({"time_range": range_text(t, t + 1, True)}))
        wanted = record_to_bytes(record)
        while True:
            status, body = await self.transport.request("user_profiles", request, None)
            now = loop.time()
            if status == 200 and wanted in body:
                phase.profile_freshness.add(now - acked)
                return
            if now - acked > c.profile_probe_deadline_s:
                phase.probe_timeouts["profile"] += 1
                return
            await asyncio.sleep(backoff(c.profile_probe_interval_s, now - acked))

    async def _bucket(self, bucket: SentBucket) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        phase = bucket.phase
        time_range = range_text(bucket.start, bucket.start + BUCKET_MS, False)
        checks = []
        for action in ("VIEW", "BUY"):
            count, total = self.oracle.bucket_figures(bucket.start, action)
            request = self.transport.query_request("GET", "/aggregates?" + urlencode(
                [("time_range", time_range), ("action", action), ("aggregates", "COUNT"), ("aggregates", "SUM_PRICE")]))
            checks.append((request, [format_bucket(bucket.start), action, str(count), str(total)]))
        while True:
            exact = True
            for request, row in checks:
                status, body = await self.transport.request("aggregates", request, None)
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
            await asyncio.sleep(backoff(c.bucket_probe_interval_s, now - bucket.last_ack))
