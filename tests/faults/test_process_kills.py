"""SPEC failure rules under crashes: while the replay tool streams tags, kill -9
and restart, in turn, the ingest API, the Flink TaskManager that runs the
stream job, the Flink JobManager, the Kafka broker and Cassandra. Afterwards:

- every tag that got a 204 is in the log exactly once, and no tag is there
  twice (a tag answered otherwise may be there, at most once);
- no tag got a 204 while the broker was dead;
- every profile and aggregate answer equals the oracle of the log (so every
  204 tag is in its profile and counted exactly once), over every bucket of
  the stream, and the replay tool's own final verification is exact.

The recovery time of each component (kill -9 until a new tag is visible in
its profile again) is measured and printed (pytest -s); docs/RELIABILITY.md
quotes it. ALLEZON_FLINK_KILL_ROUNDS=3 kills each Flink process three times.

A killed TaskManager is restarted at once (as a supervisor would): the
JobManager declares it lost after two failed heartbeats and restarts the job on
the new one from the latest checkpoint. A killed JobManager is restarted and the
job resubmitted from its newest retained checkpoint, as `make up` does.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from urllib.parse import quote, urlencode

import httpx
import orjson
import pytest

from common.cube import BUCKET_MS
from harness.replay.oracle import Oracle
from harness.replay.report import RunReport
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import Workload, format_tag_time
from tests.e2e.conftest import ApiProcess, flink_cluster, poll_until, query_client, start_stream_job  # noqa: F401
from tests.e2e.test_pipeline import aggregate_answers_match, profile_answers_match, range_param
from tests.integration.test_ingest_kafka import read_topic
from tests.settings import TestSettings

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.faults]

RATE = 100  # tags/s: the machine also runs Kafka, Cassandra, the job and both APIs
STEP_MS = 10  # event time per tag: a 1-minute bucket every 6,000 tags
TAGS_BETWEEN_KILLS = 1_500
# A tag's 204 may reach the client shortly after the broker died (acknowledged before).
ACK_IN_FLIGHT_S = 0.5


class Probe:
    """A marker tag outside the stream's buckets, posted and then awaited in its
    profile: the platform serves end to end again (kill -> visible)."""

    def __init__(self, ingest_url: str, query_url: str, before_ms: int):
        self.ingest_url, self.query_url, self.time_ms = ingest_url, query_url, before_ms
        self.sent: list[dict] = []

    def visible_after(self, name: str, timeout_s: float) -> None:
        acked: list[int] = []

        def posted() -> bool:
            # A fresh millisecond per attempt: an attempt answered 503 may still land later.
            self.time_ms += 1
            tag = {"time": format_tag_time(self.time_ms), "cookie": f"probe {name}", "country": "PL",
                   "device": "PC", "action": "VIEW", "origin": "probe",
                   "product_info": {"product_id": 1, "brand_id": "probe", "category_id": "probe", "price": 1}}
            try:
                status = httpx.post(f"{self.ingest_url}/user_tags", content=orjson.dumps(tag), timeout=5).status_code
            except httpx.TransportError:
                return False
            if status == 204:
                self.sent.append(tag)
                acked.append(self.time_ms)
            return status == 204

        try:
            poll_until(posted, timeout_s, 0.5)
        except TimeoutError:
            raise AssertionError(f"no 204 for the probe after the {name} crash within {timeout_s} s") from None
        url = (f"{self.query_url}/user_profiles/{quote(f'probe {name}', safe='')}?"
               + urlencode({"time_range": range_param(acked[0], acked[0] + 1, millis=True)}))
        last: list[str] = ["no answer"]

        def visible() -> bool:
            try:
                response = httpx.get(url, timeout=5)
            except httpx.TransportError as exc:
                last[0] = repr(exc)
                return False
            last[0] = f"{response.status_code} {response.text[:300]}"
            return response.status_code == 200 and len(response.json()["views"]) == 1

        try:
            poll_until(visible, timeout_s, 0.5)
        except TimeoutError:
            raise AssertionError(f"probe after the {name} crash not in its profile within {timeout_s} s; "
                                 f"last answer: {last[0]}") from None


def test_every_process_killed_in_turn_loses_and_duplicates_nothing(
    backends, start_stream_job, query_client, fresh_topic, fresh_keyspace, tmp_path  # noqa: F811
):
    stack = backends.stack
    if stack is None:
        pytest.skip("needs the local process stack (kill -9 of the broker and of Cassandra)")
    job = start_stream_job(fresh_topic, fresh_keyspace, FLINK_CHECKPOINT_INTERVAL_MS="1000")
    ingest = ApiProcess("ingest_api",
                            {"KAFKA_BOOTSTRAP_SERVERS": backends.kafka_bootstrap, "KAFKA_TOPIC": fresh_topic},
                            tmp_path / "ingest-api.log")
    ingest.start()
    query_url = str(query_client.base_url).rstrip("/")
    workload = Workload(seed=55, step_ms=STEP_MS, namespace=fresh_topic)
    probe = Probe(ingest.url, query_url, before_ms=workload.start_ms - 2 * 3600_000)
    recovery: dict[str, list[float]] = {}
    broker_dead: list[tuple[float, float]] = []

    async def crash_and_recover(runner: Runner, loop) -> None:
        async def after_more_tags(n: int) -> None:
            target = len(runner.acknowledged) + n
            deadline = loop.time() + 120
            while len(runner.acknowledged) < target:
                assert loop.time() < deadline, "the stream does not advance"
                await asyncio.sleep(0.1)

        def timed(name: str, crash, restart, serving) -> None:
            killed = time.monotonic()
            crash()
            restart()
            serving()
            recovery.setdefault(name, []).append(time.monotonic() - killed)

        await after_more_tags(TAGS_BETWEEN_KILLS)
        await asyncio.to_thread(timed, "ingest API", ingest.kill, ingest.start, lambda: None)

        def restart_jobmanager() -> None:
            jobmanager = stack.get("flink-jobmanager")
            jobmanager.start()
            jobmanager.wait_ready(120)
            job.job.ensure_running()

        for _ in range(TestSettings().flink_kill_rounds):
            await after_more_tags(TAGS_BETWEEN_KILLS)
            await asyncio.to_thread(timed, "Flink TaskManager", job.kill_taskmanager, job.start_taskmanager,
                                    lambda: probe.visible_after("taskmanager", 180))
            await after_more_tags(TAGS_BETWEEN_KILLS)
            await asyncio.to_thread(timed, "Flink JobManager", lambda: stack.kill("flink-jobmanager"),
                                    restart_jobmanager, lambda: probe.visible_after("jobmanager", 180))

        await after_more_tags(TAGS_BETWEEN_KILLS)
        def kill_broker() -> None:
            stack.kill("kafka")
            broker_dead.append((loop.time(), 0.0))
        def restart_broker() -> None:
            broker_dead[-1] = (broker_dead[-1][0], loop.time())
            stack.get("kafka").start()
            stack.get("kafka").wait_ready(120)
        await asyncio.to_thread(timed, "Kafka broker", kill_broker, restart_broker,
                                lambda: probe.visible_after("kafka", 120))

        await after_more_tags(TAGS_BETWEEN_KILLS)
        def restart_cassandra() -> None:
            stack.get("cassandra").start()
            stack.get("cassandra").wait_ready(180)
        await asyncio.to_thread(timed, "Cassandra", lambda: stack.kill("cassandra"), restart_cassandra,
                                lambda: probe.visible_after("cassandra", 240))
        await after_more_tags(TAGS_BETWEEN_KILLS)

    async def run() -> tuple[RunReport, list[tuple[int, float]]]:
        config = RunnerConfig(base_url=ingest.url, query_url=query_url, progress=False, seed=55,
                              profile_every=10**12, aggregate_every=10**12, profile_probe_every_s=0,
                              bucket_probes=False, profile_age_s=30, aggregate_age_s=90)
        async with Runner(workload, config) as runner:
            loop = asyncio.get_running_loop()
            stream = asyncio.create_task(runner.run_phase(RATE, tags=10**7, name="stream", settle=False))
            try:
                await crash_and_recover(runner, loop)
            finally:
                runner.stop_sending()
            await stream
            await runner.verify(profiles=300, aggregates=100)
            return runner.report(), runner.acknowledged

    try:
        report, acknowledged = asyncio.run(run())
    finally:
        ingest.stop()
    print("\nrecovery, kill -9 until a new tag is in its profile: "
          + ", ".join(f"{name} {', '.join(f'{s:.1f}' for s in seconds)} s" for name, seconds in recovery.items()))

    # 1. The log: every 204 tag exactly once; nothing twice; no 204 while the broker was dead.
    stream, final = report.phases
    print(f"stream: {stream.tags}")
    records = read_topic(backends.kafka_bootstrap, fresh_topic, expected=stream.tags.accepted, deadline_s=60)
    envelopes = [orjson.loads(r.value()) for r in records]
    tags_in_log = [orjson.loads(e["tag"]) for e in envelopes]
    stream_indices = Counter((e["time_ms"] - workload.start_ms) // STEP_MS
                             for e in envelopes if e["time_ms"] >= workload.start_ms)
    twice = [i for i, n in stream_indices.items() if n > 1]
    assert not twice, f"tags in the log more than once: {twice[:5]}"
    missing = [i for i, _ in acknowledged if stream_indices[i] != 1]
    assert not missing, f"tags that got 204 but are not in the log: {missing[:5]}"
    for dead_from, dead_until in broker_dead:
        during = [i for i, at in acknowledged if dead_from + ACK_IN_FLIGHT_S < at < dead_until]
        assert not during, f"tags got 204 while the broker was dead: {during[:5]}"

    # 2. Every answer equals the oracle of the log, over every bucket of the stream.
    oracle = Oracle()
    for tag in tags_in_log:
        oracle.add(tag)
    first = workload.start_ms
    end = workload.start_ms + (max(stream_indices) + 1) * STEP_MS
    end += -end % BUCKET_MS
    queries = [dict(start_ms=first, end_ms=end, action=action, aggregates=["COUNT", "SUM_PRICE"],
                    origin=None, brand_id=None, category_id=None) for action in ("VIEW", "BUY")]
    sample = [tags_in_log[k] for k in range(0, len(tags_in_log), max(1, len(tags_in_log) // 40))]
    queries += [dict(start_ms=first, end_ms=end, action=t["action"], aggregates=["COUNT", "SUM_PRICE"],
                     origin=t["origin"], brand_id=t["product_info"]["brand_id"], category_id=None) for t in sample]
    cookies = sorted({(t["cookie"], 200, False) for t in sample + probe.sent})
    wrong = aggregate_answers_match(query_client, oracle, queries)
    wrong += profile_answers_match(query_client, oracle, cookies, first - 24 * 3600_000, end)
    assert not wrong, wrong[:3]

    # 3. The replay tool's own final verification (its oracle: the 204 tags) is exact too. It
    # skips the buckets and cookies of tags that got no 204 (most buckets here), which 2. covers.
    assert final.profiles.wrong == 0 and final.aggregates.wrong == 0, final.wrong_examples
    assert final.profiles.correct >= 100 and final.aggregates.correct >= 1, final
