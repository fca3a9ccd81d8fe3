"""Replicated mode (CLUSTER_SIZE=3): kill -9 one Kafka broker and one Cassandra
node while the replay tool streams tags, restart them while it goes on
streaming, and hold the platform to the SPEC's failure rules:

- no failed request: every tag 204, every query 200 (the runner scores a
  non-200 query as wrong);
- nothing lost and nothing counted twice: after the stream, every bucket of
  the stream (both actions, all 8 filter subsets) and a sample of profiles
  equal the replay oracle's answer (a lost or doubled tag changes a count);
- the killed nodes rejoin: the broker is back in the ISR of every partition of
  the topic, the Cassandra node is UN in another node's `nodetool status`.

The cluster is the one `CLUSTER_SIZE=3 make up` runs (local_stack, the same
Stack), on its own run dir and ports, so the test also proves that the
services get QUORUM and the job parallelism 2 from the stack.

Decision: the ingest API runs with a 10 s acknowledgement deadline here
(INGEST_ACK_TIMEOUT_MS) instead of 170 ms. A broker killed with -9 holds up
every acks=all write it leads or follows until the controller fences it
(broker.session.timeout.ms, 4 s): with the 200 ms answer budget those tags get
the SPEC's 503 (measured: every tag for about 9 s on this machine; see
docs/RELIABILITY.md). This test is about what the replicas guarantee (no tag
refused, none lost, answers exact), not about latency during a failover; for
the same reason profile answers may be late while a killed Cassandra node is
not yet convicted (the node-failover phase), never an HTTP error, and all are
exact and on time once both peers have marked it down (the rejoin phase) and
after the stream.

Figures (cluster start, rejoin times) are printed: run with -s.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest
from confluent_kafka.admin import ConfigResource

from harness.local_stack.cassandra import CassandraNode
from harness.local_stack.config import StackSettings
from harness.local_stack.kafka import KafkaBroker, admin_client, partition_replicas
from harness.local_stack.process import NotReadyError, StackError
from harness.local_stack.stack import Stack
from harness.replay.report import RunReport
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import Workload
from tests.e2e.conftest import poll_until
from tests.settings import TestSettings

pytestmark = [pytest.mark.integration, pytest.mark.faults]
log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
# Ports 28000-30093: apart from `make up` (no shift) and the other stacks of
# test sessions (shifts 10,000, 12,000, 20,000, 30,000), and below the kernel's
# ephemeral range (32768-60999), where a random listener of another test
# (free_port) once held this cluster's CQL port at start; nodes 2 and 3 listen
# on 127.0.0.2 and 127.0.0.3.
PORT_SHIFT = TestSettings().replicated_test_port_shift
RUN_DIR = TestSettings().replicated_test_run_dir

RATE = 100  # tags/s: six JVMs, the job and the APIs share 2 cores with other test sessions
BROKER_FAILOVER_TAGS = 3_000  # 30 s: the broker is killed after half
NODE_FAILOVER_TAGS = 3_000  # 30 s more: the Cassandra node is killed as it begins
REJOIN_TAGS = 6_000  # 60 s more while both restart and rejoin
STEP_MS = 50  # event time per tag: 12,000 tags span 10 one-minute buckets
ACK_TIMEOUT_MS = 10_000  # see the module docstring
REJOIN_TIMEOUT_S = 240.0
CONVICTION_TIMEOUT_S = 120.0
# Profile answers of the broker failover that may be stale (missing tags
# acknowledged 10 s before, the SPEC's visibility bound) while the job's
# consumer moves to the new leaders.
STALE_DURING_BROKER_FAILOVER = 0.03
# The node-failover phase: until gossip convicts the killed Cassandra node
# (about 20 s here), a coordinator that picked it as one of a QUORUM's replicas
# waits for it, so a read may be late (past the client's 10 s, every hedge
# stuck alike) or stale. How many depends on the machine's load (one 60 s phase
# with the kill halfway: CI 58 of 288 reads, locally with an idle stack beside it
# 31 of 291, alone 0). Not bounded, since the SPEC sets no latency during a
# failover; none may be an HTTP error. The rejoin phase begins once both peers
# have marked the node down, still before its restart: every answer there must
# be exact and on time.


@dataclass
class Cluster:
    stack: Stack
    infrastructure_s: float  # 3 brokers + 3 Cassandra nodes, topic and schema
    total_s: float  # ... and the job and both APIs


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    stack = Stack(StackSettings(cluster_size=3).shifted(PORT_SHIFT, run_dir=RUN_DIR))
    stack.clean()  # fresh data: the oracle knows only this run's tags
    with pytest.MonkeyPatch.context() as env:
        # Inherited by the ingest API the stack starts (ManagedProcess passes os.environ on).
        env.setenv("INGEST_ACK_TIMEOUT_MS", str(ACK_TIMEOUT_MS))
        # Likewise for reads: a node just restarted coordinates slowly for a few seconds
        # (a fresh-clone run saw 7 profile reads pass the default 2 s and get 503).
        env.setenv("QUERY_REQUEST_TIMEOUT_S", "10")
        # Aggregates retry within the SPEC's 60 s rather than the default 30 s: a 24 h range
        # is 1,440 QUORUM reads, and a CI run with a frozen node needed 30.5 s once.
        env.setenv("QUERY_AGGREGATE_RETRY_DEADLINE_S", "50")
        try:
            began = time.monotonic()
            stack.up(["kafka", "cassandra"])
            infrastructure_s = time.monotonic() - began
            stack.up(["flink-job", "ingest-api", "query-api"])
            total_s = time.monotonic() - began
            print(f"\nreplicated cluster: 3 brokers + 3 Cassandra nodes ready in {infrastructure_s:.1f} s, "
                  f"with the job and the APIs in {total_s:.1f} s")
            yield Cluster(stack, infrastructure_s, total_s)
        except NotReadyError as exc:
            pytest.fail(f"{exc}\n{exc.log_tail}")
        finally:
            stack.down()


# --- checks of the replicated set-up --------------------------------------------------------------
def assert_replicated_setup(stack: Stack) -> None:
    s = stack.settings
    partitions = partition_replicas(s.kafka_bootstrap_servers, s.kafka_topic)
    assert all(sorted(isr) == [1, 2, 3] for _, isr in partitions.values()), partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, s.kafka_topic)
    admin = admin_client(s.kafka_bootstrap_servers)  # kept referenced until the result is in
    topic_config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert topic_config["min.insync.replicas"].value == "2"

    with stack.cassandra_session() as session:
        row = session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", [s.cassandra_keyspace]
        ).one()
    assert row.replication["replication_factor"] == "3", row.replication
    assert ring_states(stack.cassandra) == {n.node.host: "UN" for n in stack.cassandra_nodes}

    # What the stack passed on (service_env, the job's env) is what the processes run with.
    assert stack.query_api.process.process().environ().get("CASSANDRA_CONSISTENCY") == "QUORUM"
    assert stack.stream_job is not None
    assert stack.stream_job.ledger()["environment"]["CASSANDRA_CONSISTENCY"] == "QUORUM"
    # Two TaskManagers of one slot each.
    assert stack.stream_job.parallelism_now() == 2


def ring_states(observer: CassandraNode) -> dict[str, str]:
    """The ring as `observer` sees it; {} while nodetool cannot answer."""
    try:
        return observer.ring_states()
    except (StackError, OSError) as exc:
        log.info("nodetool status on %s failed: %s", observer.name, exc)
        return {}


_ACTIVE_CONTROLLER_RE = re.compile(r"\[QuorumController id=(\d+)\] Becoming the active controller at epoch (\d+)")


def active_controller_id(stack: Stack) -> int | None:
    """The KRaft controller of the highest epoch, from the brokers' server logs
    (librdkafka has no call that asks the controller quorum)."""
    newest: tuple[int, int] | None = None
    for broker in stack.kafka_brokers:
        text = broker.server_log.read_text(errors="replace") if broker.server_log.exists() else ""
        for m in _ACTIVE_CONTROLLER_RE.finditer(text):
            newest = max(newest or (-1, -1), (int(m.group(2)), int(m.group(1))))
    return newest[1] if newest else None


def leader_not_controller(stack: Stack) -> KafkaBroker:
    """A broker that leads a partition of the topic and is not the active controller.

    Killing the controller too adds a controller election before the dead
    broker is fenced: tags then waited up to 9.3 s for their acknowledgement
    (measured), too close to the ingest API's 10 s ceiling for a steady test.
    """
    controller = active_controller_id(stack)
    partitions = partition_replicas(stack.settings.kafka_bootstrap_servers, stack.settings.kafka_topic)
    leaders = [leader for _, (leader, _) in sorted(partitions.items()) if leader != controller]
    others = (b.node.node_id for b in stack.kafka_brokers if b.node.node_id != controller)
    victim = leaders[0] if leaders else next(others)
    log.info("active controller %s, partition leaders %s: killing broker %d", controller, partitions, victim)
    return next(b for b in stack.kafka_brokers if b.node.node_id == victim)


# --- restart and rejoin ------------------------------------------------------------------------------
def restart_broker(stack: Stack, broker: KafkaBroker) -> dict[str, float]:
    """`up` starts what is missing (the `make up` path); then wait for the broker in every ISR."""
    began = time.monotonic()
    stack.up([broker.name], create_topic=False)
    ready_s = time.monotonic() - began
    topic = stack.settings.kafka_topic
    poll_until(lambda: broker.in_sync_for(topic), REJOIN_TIMEOUT_S, 0.5)
    return {"ready_s": ready_s, "in_isr_s": time.monotonic() - began}


def restart_cassandra(stack: Stack, node: CassandraNode) -> dict[str, float]:
    """`up` starts what is missing; then wait until another node sees it UN."""
    began = time.monotonic()
    stack.up([node.name], apply_schema=False)
    ready_s = time.monotonic() - began
    peer = next(n for n in stack.cassandra_nodes if n is not node)
    poll_until(lambda: ring_states(peer).get(node.node.host) == "UN", REJOIN_TIMEOUT_S, 1.0)
    return {"ready_s": ready_s, "un_at_peer_s": time.monotonic() - began}


def wait_convicted(stack: Stack, node: CassandraNode) -> None:
    """Until both other nodes see the killed one DN (gossip convicted it)."""
    peers = [n for n in stack.cassandra_nodes if n is not node]
    poll_until(lambda: all(ring_states(p).get(node.node.host) == "DN" for p in peers), CONVICTION_TIMEOUT_S, 1.0)


# --- the stream ---------------------------------------------------------------------------------------
async def sent_at_least(runner: Runner, count: int, phase: asyncio.Task, timeout_s: float = 300.0) -> None:
    """Wait until the runner has handed `count` tags to its workers (the stream's own clock)."""
    deadline = time.monotonic() + timeout_s
    while runner.next_index < count:
        if phase.done():
            phase.result()  # raises what stopped it
            raise AssertionError(f"the phase ended after {runner.next_index} tags, before {count}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{runner.next_index} tags sent after {timeout_s} s, waiting for {count}")
        await asyncio.sleep(0.05)


async def stream_kill_restart(stack: Stack, broker: KafkaBroker, node: CassandraNode) -> tuple[RunReport, dict]:
    workload = Workload(seed=11, namespace="replicated", step_ms=STEP_MS)
    config = RunnerConfig(
        base_url=stack.ingest_api.base_url, query_url=stack.query_api.base_url, progress=False, seed=11,
        # Tags wait out a failover in the ingest API (ACK_TIMEOUT_MS), so more of them are in flight.
        tag_concurrency=128, tag_timeout_s=ACK_TIMEOUT_MS / 1000 + 10,
        # Later than the SPEC's 10 s / 60 s: the shared 2-core machine lags (as tests/e2e do).
        profile_age_s=30.0, aggregate_age_s=90.0,
    )
    timings: dict[str, dict[str, float]] = {}
    loop = asyncio.get_running_loop()
    async with Runner(workload, config) as runner:
        broker_failover = asyncio.create_task(
            runner.run_phase(RATE, tags=BROKER_FAILOVER_TAGS, name="broker-failover"))
        await sent_at_least(runner, BROKER_FAILOVER_TAGS // 2, broker_failover)
        assert await asyncio.to_thread(stack.kill, broker.name), f"{broker.name} was not running"
        await broker_failover

        node_failover = asyncio.create_task(runner.run_phase(RATE, tags=NODE_FAILOVER_TAGS, name="node-failover"))
        await sent_at_least(runner, BROKER_FAILOVER_TAGS + 1, node_failover)
        assert await asyncio.to_thread(stack.kill, node.name), f"{node.name} was not running"
        killed = time.monotonic()
        await node_failover
        await asyncio.to_thread(wait_convicted, stack, node)
        timings["conviction"] = {"down_at_both_peers_s": time.monotonic() - killed}

        # Restart both while the stream goes on (threads: `up` blocks until ready).
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rejoin") as pool:
            broker_rejoin = loop.run_in_executor(pool, restart_broker, stack, broker)
            node_rejoin = loop.run_in_executor(pool, restart_cassandra, stack, node)
            await runner.run_phase(RATE, tags=REJOIN_TAGS, name="rejoin")
            timings[broker.name] = await broker_rejoin
            timings[node.name] = await node_rejoin
        await runner.verify(profiles=600, aggregates=150)
        return runner.report(), timings


@pytest.mark.timeout(1200)
def test_killed_broker_and_cassandra_node_lose_nothing_and_rejoin(cluster: Cluster):
    stack = cluster.stack
    assert_replicated_setup(stack)
    broker = leader_not_controller(stack)  # a leader: its partitions must fail over
    node = stack.cassandra_nodes[broker.node.node_id % 3]  # on another address than the broker
    log.info("will kill %s and %s mid-stream", broker.name, node.name)

    began = time.monotonic()
    report, timings = asyncio.run(stream_kill_restart(stack, broker, node))
    broker_failover, node_failover, rejoin, final = report.phases
    print(f"\nkilled {broker.name} (a partition leader, not the active controller) and {node.name}; "
          f"stream + restart + checks took {time.monotonic() - began:.0f} s")
    for name in (broker.name, "conviction", node.name):
        print(f"  {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in timings[name].items()))
    streamed = (broker_failover, node_failover, rejoin)
    for phase in streamed:
        print(f"  {phase.name}: tags {phase.tags} latency {phase.latency_ms.user_tags} "
              f"profiles {phase.profiles} aggregates {phase.aggregates}")
    print(f"  checks: profiles {final.profiles} aggregates {final.aggregates} "
          f"exact after {final.seconds_until_exact}")

    for phase in streamed:
        tags = phase.tags
        assert tags.dropped == 0 and tags.accepted == tags.sent, (phase.name, tags, phase.drop_examples)
    for phase in (*streamed, final):
        # "wrong" counts every query that did not get a 200 with the oracle's answer.
        assert phase.aggregates.wrong == 0, (phase.name, phase.wrong_examples)
        p = phase.profiles
        if phase is broker_failover:
            assert p.wrong <= STALE_DURING_BROKER_FAILOVER * (p.correct + p.wrong), (phase.name, phase.wrong_examples)
        if phase is broker_failover or phase is node_failover:
            # Stale (200) or late (no answer in the client's time), never an HTTP error.
            assert all(w.status in (200, None) for w in phase.wrong_examples), phase.wrong_examples
        else:
            assert phase.errors.user_profiles == 0, (phase.name, phase.errors)
            assert p.wrong == 0, (phase.name, phase.wrong_examples)
    # The final sweep asked the whole stream's range (one row per bucket, all 10
    # buckets) for both actions and all 8 filter subsets, plus random queries: the
    # unfiltered counts equal the number of 204s, so no tag is lost or counted twice.
    assert final.aggregates.correct >= 2 * 8, final.aggregates
    assert final.profiles.correct >= 300, final.profiles

    # Rejoined (restart_* waited for it; asked again after the stream, from another node).
    assert broker.in_sync_for(stack.settings.kafka_topic)
    assert ring_states(stack.cassandra_nodes[(node.node.node_id % 3)]).get(node.node.host) == "UN"


# --- a frozen node ---------------------------------------------------------------------------------------
# About the reference mix (100 profile queries per aggregate query), with 24 h
# aggregate ranges (12 statements of 120 partitions each at QUORUM).
FREEZE_PROFILE_QUERIES = 100
FREEZE_AGGREGATE_QUERIES = 4
FREEZE_WORKERS = 4
# Far below the 10 s request timeout the fixture sets: a profile read that waited
# on the frozen coordinator would take that long, then get 503. Aggregates may
# retry within QUERY_AGGREGATE_RETRY_DEADLINE_S (50 s here, see the fixture) and the SPEC's 60 s.
FROZEN_PROFILE_MAX_S = 2.0
FROZEN_AGGREGATE_MAX_S = 55.0


def timed_get(client: httpx.Client, url: str) -> tuple[str, int, float, str]:
    began = time.monotonic()
    response = client.get(url)
    return url, response.status_code, time.monotonic() - began, response.text[:200]


@pytest.mark.timeout(300)
def test_reads_do_not_wait_on_a_frozen_cassandra_node(cluster: Cluster):
    """SIGSTOP one Cassandra node (as a long GC pause or a stalled disk would)
    and query while it is frozen. The driver still counts it up (its
    connections are open), so a read it coordinates waits out the request
    timeout and gets 503 unless it is hedged to another host
    (query_api/store.py, `Hedging`). Run with QUERY_HEDGE_DELAY_MS=0 this test
    fails (2026-11-25: 24 queries not 200, profiles max 10.0 s); with hedging
    none failed."""
    stack = cluster.stack
    node = stack.cassandra_nodes[1]
    query_url = stack.query_api.base_url.rstrip("/")
    # Many cookies: token-aware routing with shuffled replicas spreads them over
    # all three nodes; the aggregate statements have no routing key.
    urls = [f"{query_url}/user_profiles/{quote(f'frozen {i}', safe='')}?"
            + urlencode({"time_range": "2022-02-28T23:00:00.000_2022-03-01T00:00:00.000"})
            for i in range(FREEZE_PROFILE_QUERIES)]
    step = FREEZE_PROFILE_QUERIES // FREEZE_AGGREGATE_QUERIES
    for i in range(FREEZE_AGGREGATE_QUERIES):
        urls.insert(i * step, f"{query_url}/aggregates?" + urlencode(
            {"time_range": "2022-02-28T00:00:00_2022-03-01T00:00:00", "action": "VIEW", "aggregates": "COUNT"}))

    process = node.process.process()
    assert process is not None, f"{node.name} is not running"
    clients = [httpx.Client(timeout=60) for _ in range(FREEZE_WORKERS)]
    try:
        # Warm: every client connected, the query API answers.
        assert [timed_get(c, urls[1])[1] for c in clients] == [200] * FREEZE_WORKERS
        log.info("freezing %s (pid %d)", node.name, process.pid)
        process.suspend()
        try:
            with ThreadPoolExecutor(max_workers=FREEZE_WORKERS) as pool:
                results = list(pool.map(lambda iu: timed_get(clients[iu[0] % FREEZE_WORKERS], iu[1]),
                                        enumerate(urls)))
        finally:
            process.resume()
            log.info("resumed %s", node.name)
    finally:
        for c in clients:
            c.close()

    failed = [(url, status, text) for url, status, _, text in results if status != 200]
    slow = [(round(seconds, 2), url) for url, _, seconds, _ in results
            if seconds > (FROZEN_AGGREGATE_MAX_S if "/aggregates" in url else FROZEN_PROFILE_MAX_S)]
    for kind in ("/user_profiles/", "/aggregates"):
        seconds = sorted(s for url, _, s, _ in results if kind in url)
        print(f"\n{node.name} frozen, {kind}: {len(seconds)} queries, p50 {seconds[len(seconds) // 2] * 1000:.0f} ms, "
              f"max {seconds[-1] * 1000:.0f} ms", end="")
    print(f"; {len(failed)} not 200")
    assert not failed, failed[:5]
    assert not slow, slow[:5]
    # Thawed, it is UN again for its peers.
    peer = next(n for n in stack.cassandra_nodes if n is not node)
    poll_until(lambda: ring_states(peer).get(node.node.host) == "UN", REJOIN_TIMEOUT_S, 1.0)
