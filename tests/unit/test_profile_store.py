"""A profile is one read of both actions, split per action and capped at the limit each."""

import asyncio

from query_api.store import ProfileStore


class OneRead:
    """Stands in for the driver's session: answers every read at once with `rows`, and counts reads."""

    def __init__(self, rows):
        self.rows = rows
        self.reads: list[tuple] = []

    def prepare(self, query):
        self.query = query
        return type("Prepared", (), {"is_idempotent": False})()

    def execute_async(self, statement, values):
        self.reads.append(values)
        rows = self.rows

        class Answered:
            attempted_hosts: list = []
            has_more_pages = False

            def add_callbacks(self, ok, failed):
                ok(rows)

        return Answered()


def tags_of(session, limit):
    store = ProfileStore.prepare(session)
    return asyncio.run(store.tags("c1", 0, 10, limit))


def test_both_actions_come_from_one_read_each_capped_at_the_limit():
    # Cassandra's order: BUY rows, then VIEW rows, each newest first.
    rows = [("BUY", "b3"), ("BUY", "b2"), ("BUY", "b1"), ("VIEW", "v2"), ("VIEW", "v1")]
    session = OneRead(rows)
    assert tags_of(session, 2) == (["v2", "v1"], ["b3", "b2"])
    assert session.reads == [("c1", 0, 10)]
    assert "LIMIT" not in session.query  # a LIMIT counts both actions together


def test_one_action_with_many_rows_does_not_crowd_out_the_other():
    rows = [("BUY", f"b{i}") for i in range(300, 0, -1)] + [("VIEW", "v1")]
    views, buys = tags_of(OneRead(rows), 200)
    assert views == ["v1"]
    assert buys == [f"b{i}" for i in range(300, 100, -1)]


def test_limit_zero_reads_nothing():
    session = OneRead([("VIEW", "v1")])
    assert tags_of(session, 0) == ([], [])
    assert session.reads == []
