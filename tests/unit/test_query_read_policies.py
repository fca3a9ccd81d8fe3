"""The query API's reads do not wait on one slow node: hedged reads to another
host and one retry elsewhere after a coordinator-side failure.
(The behaviour against a paused node of a real cluster is in
tests/faults/test_replicated_cluster.py.)"""

import asyncio

import pytest
from cassandra import ConsistencyLevel, ReadTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.policies import RetryPolicy

from common.cube import read_of
from query_api.cassandra_session import ReadRetryPolicy, build_cluster
from query_api.config import QuerySettings
from query_api.store import IN_BUCKETS, AggregateStore, Hedging

QUORUM = ConsistencyLevel.QUORUM


def profile_of(**settings):
    cluster = build_cluster(QuerySettings(**settings))
    try:
        return cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    finally:
        cluster.shutdown()  # never connected: nothing to close but the object


def test_replicas_are_shuffled_and_reads_retry_elsewhere():
    profile = profile_of(cassandra_consistency="quorum")
    assert profile.load_balancing_policy.shuffle_replicas
    assert isinstance(profile.retry_policy, ReadRetryPolicy)
    assert profile.consistency_level == QUORUM


def test_a_read_timeout_is_retried_once_on_the_next_host():
    policy = ReadRetryPolicy()
    first = policy.on_read_timeout(None, QUORUM, 2, 1, False, retry_num=0)
    second = policy.on_read_timeout(None, QUORUM, 2, 1, False, retry_num=1)
    assert first == (RetryPolicy.RETRY_NEXT_HOST, None)
    assert second == (RetryPolicy.RETHROW, None)


def test_unavailable_is_retried_once_on_the_next_host():
    policy = ReadRetryPolicy()
    assert policy.on_unavailable(None, QUORUM, 2, 1, retry_num=0) == (RetryPolicy.RETRY_NEXT_HOST, None)
    assert policy.on_unavailable(None, QUORUM, 2, 1, retry_num=1) == (RetryPolicy.RETHROW, None)


def test_write_timeouts_are_passed_on():
    assert ReadRetryPolicy().on_write_timeout(None, QUORUM, "SIMPLE", 2, 1, 0) == (RetryPolicy.RETHROW, None)


# --- aggregate reads are asked again until their deadline ---------------------------------------------
class ScriptedFuture:
    """Stands in for the driver's ResponseFuture: answers at once, from the script."""

    attempted_hosts: list = []
    has_more_pages = False

    def __init__(self, outcome):
        self.outcome = outcome

    def add_callbacks(self, ok, failed):
        if isinstance(self.outcome, Exception):
            failed(self.outcome)
        else:
            ok(self.outcome)


class ScriptedSession:
    """Each statement's first `failures` executions time out, then it answers one row per bucket."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: dict[int, int] = {}

    def prepare(self, query):
        return type("Prepared", (), {"is_idempotent": False})()

    def execute_async(self, statement, values):
        buckets = values[2]
        seen = self.calls[buckets[0]] = self.calls.get(buckets[0], 0) + 1
        if seen <= self.failures:
            return ScriptedFuture(ReadTimeout("coordinator timed out", consistency=QUORUM,
                                              required_responses=2, received_responses=1))
        return ScriptedFuture([(bucket, 1, 10) for bucket in buckets])


DAY_MS = 24 * 3600_000


def test_failed_aggregate_statements_are_asked_again_within_the_deadline():
    session = ScriptedSession(failures=2)
    store = AggregateStore.prepare(session, retry_deadline_s=10)
    found = asyncio.run(store.buckets("VIEW", read_of(None, None, None), 0, DAY_MS))
    assert len(found) == 1440 and set(found.values()) == {(1, 10)}
    # Every statement (1,440 buckets in chunks) failed twice and answered the third time.
    assert list(session.calls.values()) == [3] * (1440 // IN_BUCKETS)


def test_without_time_left_the_failure_is_passed_on():
    store = AggregateStore.prepare(ScriptedSession(failures=1), retry_deadline_s=0)
    with pytest.raises(ReadTimeout):
        asyncio.run(store.buckets("VIEW", read_of(None, None, None), 0, DAY_MS))


# --- hedged reads --------------------------------------------------------------------------------------
class FakeHost:
    def __init__(self, name: str, up: bool = True):
        self.endpoint, self.is_up = name, up

    def __repr__(self):
        return self.endpoint


class HostFuture:
    """A ResponseFuture of one host: answers with the host's name, fails, or never answers."""

    has_more_pages = False

    def __init__(self, host: FakeHost, behaviour: str):
        self.attempted_hosts = [host]
        self.host, self.behaviour = host, behaviour

    def add_callbacks(self, ok, failed):
        if self.behaviour == "answers":
            ok([(self.host.endpoint,)])
        elif self.behaviour == "fails":
            failed(ReadTimeout("coordinator timed out", consistency=QUORUM, required_responses=2,
                               received_responses=1))
        # "hangs": neither, as a paused node


class HostSession:
    """The driver's first choice is the first host; `host=` targets one."""

    def __init__(self, **behaviours: str):
        self.hosts = {name: FakeHost(name, up=behaviour != "down") for name, behaviour in behaviours.items()}
        self.behaviours = behaviours
        self.asked: list[str] = []
        self.cluster = self  # session.cluster.metadata.all_hosts()
        self.metadata = self

    def all_hosts(self):
        return list(self.hosts.values())

    def execute_async(self, statement, values, host=None):
        host = host or next(iter(self.hosts.values()))
        self.asked.append(host.endpoint)
        return HostFuture(host, self.behaviours[host.endpoint])


FAST_HEDGING = Hedging(delay_s=0.01, extra=2)


def hedged_read(session, hedging=FAST_HEDGING, timeout_s=5.0):
    return asyncio.run(asyncio.wait_for(hedging.read(session, "statement", ()), timeout=timeout_s))


def test_a_paused_coordinator_is_hedged_to_another_host():
    session = HostSession(a="hangs", b="answers", c="answers")
    assert hedged_read(session) == [("b",)]
    assert session.asked == ["a", "b"]


def test_a_quick_answer_is_not_hedged():
    session = HostSession(a="answers", b="answers")
    assert hedged_read(session) == [("a",)]
    assert session.asked == ["a"]


def test_a_failed_attempt_is_replaced_and_down_hosts_are_skipped():
    session = HostSession(a="fails", b="down", c="answers")
    assert hedged_read(session) == [("c",)]
    assert session.asked == ["a", "c"]


def test_when_every_attempt_fails_the_first_error_is_raised():
    session = HostSession(a="fails", b="fails", c="fails")
    with pytest.raises(ReadTimeout):
        hedged_read(session)
    assert session.asked == ["a", "b", "c"]


def test_hedges_are_bounded():
    session = HostSession(a="hangs", b="hangs", c="hangs", d="answers")
    with pytest.raises(asyncio.TimeoutError):  # a, b and c never answer; d is never asked
        hedged_read(session, Hedging(delay_s=0.01, extra=2), timeout_s=0.5)
    assert session.asked == ["a", "b", "c"]


def test_without_hedging_one_host_is_asked():
    session = HostSession(a="fails", b="answers")
    with pytest.raises(ReadTimeout):
        hedged_read(session, Hedging())
    assert session.asked == ["a"]


# --- every page of a read --------------------------------------------------------------------------------
class PagedFuture:
    """A ResponseFuture whose rows come in pages: the driver calls `ok` again for each page fetched."""

    attempted_hosts: list = []

    def __init__(self, pages: list[list[tuple]]):
        self.pages = pages
        self.fetched = 0

    @property
    def has_more_pages(self) -> bool:
        return self.fetched < len(self.pages)

    def add_callbacks(self, ok, failed):
        self.ok = ok
        self.start_fetching_next_page()

    def start_fetching_next_page(self):
        page = self.pages[self.fetched]
        self.fetched += 1
        self.ok(page)


class PagedSession:
    def __init__(self, pages: list[list[tuple]]):
        self.pages = pages

    def execute_async(self, statement, values, host=None):
        return PagedFuture(self.pages)


def test_a_read_returns_the_rows_of_every_page():
    pages = [[(60_000 * i, 1, 10)] for i in range(3)] + [[(0, 2, 20)]]
    rows = asyncio.run(Hedging().read(PagedSession(pages), "statement", ()))
    assert rows == [row for page in pages for row in page]
