"""The replay runner (scheduling, scoring, freshness) against a fake platform
served by aiohttp in this process. The fake answers from a brute-force store,
so it is independent of the oracle; it can also drop tags, lag or lie."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import unquote

import orjson
from aiohttp import web

from common.timestamps import parse_time_range
from harness.replay.report import Percentiles, PhaseReport, RunReport
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.stats import percentile, summary
from harness.replay.workload import Workload
from tests.unit.replay_reference import BruteForce

T0 = 1_647_950_400_000


class FakePlatform:
    def __init__(self, *, reject_every: int = 0, tag_delay_s: float = 0.0, visible_after_s: float = 0.0,
                 wrong_counts: bool = False):
        self.store = BruteForce()
        self.reject_every = reject_every
        self.tag_delay_s = tag_delay_s
        self.visible_after_s = visible_after_s
        self.wrong_counts = wrong_counts
        self.received = 0
        self.pending: list[tuple[float, dict]] = []
        self.debug_bodies = 0

    def _publish(self) -> None:
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            self.store.add(self.pending.pop(0)[1])

    async def user_tags(self, request: web.Request) -> web.Response:
        tag = orjson.loads(await request.read())
        self.received += 1
        if self.tag_delay_s:
            await asyncio.sleep(self.tag_delay_s)
        self.pending.append((time.monotonic() + self.visible_after_s, tag))
        if self.reject_every and self.received % self.reject_every == 0:
            # Like a broker that acknowledges after the deadline: 503, yet the tag is stored.
            return web.Response(status=503, headers={"Retry-After": "1"})
        return web.Response(status=204)

    async def profile(self, request: web.Request) -> web.Response:
        self._publish()
        self.debug_bodies += bool(await request.read())
        cookie = unquote(request.match_info["cookie"])
        tr = parse_time_range(request.query["time_range"])
        answer, _ = self.store.profile(cookie, tr.start_ms, tr.end_ms, int(request.query.get("limit", 200)))
        return web.json_response(answer, dumps=lambda o: orjson.dumps(o).decode())

    async def aggregates(self, request: web.Request) -> web.Response:
        self._publish()
        q = request.query
        tr = parse_time_range(q["time_range"])
        answer = self.store.aggregates(tr.start_ms, tr.end_ms, q["action"], q.getall("aggregates"),
                                       q.get("origin"), q.get("brand_id"), q.get("category_id"))
        if self.wrong_counts and answer["rows"] and answer["rows"][0][-1] != "0":
            answer["rows"][0][-1] = str(int(answer["rows"][0][-1]) + 1)
        return web.json_response(answer)


async def serve(fake: FakePlatform) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/user_tags", fake.user_tags)
    app.router.add_route("*", "/user_profiles/{cookie:.*}", fake.profile)
    app.router.add_route("*", "/aggregates", fake.aggregates)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def small_workload() -> Workload:
    # 50 ms of event time per tag: 1,200 tags per bucket, so a short run spans several buckets.
    return Workload(seed=4, start_ms=T0, step_ms=50, cookies=300, origins=5, brands=4, categories=3)


def fast_config(url: str, **changes) -> RunnerConfig:
    values = dict(base_url=url, profile_age_s=0.3, aggregate_age_s=0.6, profile_probe_interval_s=0.02,
                  bucket_probe_interval_s=0.05, profile_probe_every_s=0.1, aggregate_every=50,
                  profile_probe_deadline_s=5, bucket_probe_deadline_s=5, progress=False,
                  # A loaded machine can starve the one event loop of client and fake server (a run
                  # beside a stopping stack timed 23 tags out at 5 s); these tests score drops by status.
                  tag_timeout_s=30)
    values.update(changes)
    return RunnerConfig(**values)


async def run(fake: FakePlatform, phases, verify: bool = False, **config) -> RunReport:
    server, url = await serve(fake)
    try:
        async with Runner(small_workload(), fast_config(url, **config)) as runner:
            for rate, tags in phases:
                await runner.run_phase(rate, tags=tags)
            if verify:
                await runner.verify(profiles=50, aggregates=20, poll_s=0.05)
            return runner.report()
    finally:
        await server.cleanup()


def test_an_exact_platform_scores_everything_exact():
    fake = FakePlatform()
    report = asyncio.run(run(fake, [(800, 1600), (1600, 1600)], verify=True))
    total = report.total
    assert (total.tags.sent, total.tags.accepted, total.tags.dropped) == (3200, 3200, 0), total.drop_examples
    assert total.profiles.wrong == 0 and total.aggregates.wrong == 0
    assert total.profiles.correct > 100 and total.aggregates.correct > 10
    assert total.exact_pct == 100.0
    assert fake.debug_bodies > 100  # the expected answers went along
    assert [p.name for p in report.phases] == ["phase-1", "phase-2", "verify"]
    # One stream across phases: the second phase went on where the first stopped.
    assert report.oracle.tags == 3200
    first = report.phases[0]
    assert first.freshness_s.profile.count >= 5
    assert first.freshness_s.bucket.count >= 1
    final = report.phases[2]
    assert final.aggregates.correct >= 16  # every bucket x action x filter subset
    assert final.queries is not None and final.exact_at_first_try is not None
    # The JSON form reads back as the same report.
    assert RunReport.from_dict(report.to_dict()) == report
    assert "aborted" not in report.to_dict()["phases"][0] and "queries" in report.to_dict()["phases"][2]


def test_drops_are_counted_and_never_asked_about():
    fake = FakePlatform(reject_every=1700)  # tags 1700 and 3400: buckets 1 and 2 of 0-3 are tainted
    report = asyncio.run(run(fake, [(2000, 4800)], verify=True))
    total = report.total
    assert total.tags.dropped == 2
    assert total.tags.drop_reasons == {"503": 2}
    assert total.drop_examples[0].status == 503
    # The dropped tags were stored all the same; their cookies and buckets are
    # not asked about, so nothing is wrong, and the rest is still checked.
    assert total.profiles.wrong == 0 and total.aggregates.wrong == 0
    assert total.profiles.correct > 50 and total.aggregates.correct > 5


def test_wrong_answers_are_caught_with_examples():
    fake = FakePlatform(wrong_counts=True)
    report = asyncio.run(run(fake, [(1000, 2400)], verify=True))
    total = report.total
    assert total.aggregates.wrong > 0
    example = total.wrong_examples[0]
    assert example.url.startswith("/aggregates?") and example.status == 200
    assert example.expected != example.got


def test_late_visibility_is_not_wrong_and_shows_as_freshness():
    """Tags become visible 0.15 s after their 204: within the ages, so never
    wrong, and the profile freshness probes measure about that delay."""
    fake = FakePlatform(visible_after_s=0.15)
    report = asyncio.run(run(fake, [(800, 1600)]))
    phase = report.phases[0]
    assert phase.profiles.wrong == 0 and phase.aggregates.wrong == 0
    fresh = phase.freshness_s.profile
    assert fresh.count >= 5 and fresh.p50 is not None and 0.12 <= fresh.p50 <= 1.0, fresh


def test_open_loop_schedule_keeps_the_clock_and_measures_the_backlog():
    """A slow platform (20 ms per tag) and 4 connections carry 200 tags/s;
    asked for 400/s, the tags are still due on the clock: they queue in the
    client, the schedule lag grows, and the achieved rate shows the limit."""
    fake = FakePlatform(tag_delay_s=0.02)
    report = asyncio.run(run(fake, [(400, 400)], tag_concurrency=4, profile_probe_every_s=0, bucket_probes=False))
    phase = report.phases[0]
    assert phase.client.tag_queue_max > 50
    lag = phase.client.schedule_lag_ms.max
    assert lag is not None and lag > 300
    assert phase.tags.achieved_rate < 300


def test_the_schedule_is_never_ahead_of_the_clock():
    fake = FakePlatform()
    started = time.monotonic()
    report = asyncio.run(run(fake, [(500, 500)], profile_probe_every_s=0, bucket_probes=False))
    assert time.monotonic() - started >= 0.99 * (499 / 500)
    assert report.phases[0].tags.accepted == 500


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99 and percentile(values, 1.0) == 100
    assert summary([]) == Percentiles(count=0, p50=None, p95=None, p99=None, max=None)
    assert summary([3.0, 1.0, 2.0]).p50 == 2.0


def test_profile_queries_vary_limits_and_ranges():
    """The mix draws several limits (the default omitted too) and both range precisions."""
    fake = FakePlatform()
    seen: list[str] = []
    original = FakePlatform.profile

    async def spy(self, request):
        seen.append(str(request.rel_url))
        return await original(self, request)

    fake.profile = spy.__get__(fake)
    asyncio.run(run(fake, [(1000, 1500)], profile_probe_every_s=0, bucket_probes=False))
    ranges = [u.split("time_range=")[1].split("&")[0] for u in seen]
    limits = {u.split("limit=")[1] for u in seen if "limit=" in u}
    assert len(seen) > 50
    assert len(limits) > 5 and "200" in limits and any("limit=" not in u for u in seen)
    assert any("." in r for r in ranges) and any("." not in r for r in ranges)


def test_a_phase_stops_early_when_the_client_backlog_grows_too_long():
    fake = FakePlatform(tag_delay_s=0.02)

    async def go() -> PhaseReport:
        server, url = await serve(fake)
        try:
            async with Runner(small_workload(), fast_config(url, tag_concurrency=2, profile_probe_every_s=0,
                                                            bucket_probes=False)) as runner:
                return await runner.run_phase(500, tags=5000, max_backlog_s=0.5)
        finally:
            await server.cleanup()

    started = time.monotonic()
    phase = asyncio.run(go())
    assert phase.aborted is not None and "client backlog" in phase.aborted
    assert phase.tags.sent < 1000 and phase.tags.accepted == phase.tags.sent
    assert time.monotonic() - started < 8
