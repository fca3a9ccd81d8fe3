"""Which statement and values an aggregate read sends, per filter combination
(common/cube.py read_of): stored masks one cell per bucket, origin with
brand_id or category_id a slice of the finest cells."""

import asyncio

import pytest

from common.cube import read_of
from query_api.store import AggregateStore


class Recorder:
    """Stands in for the driver's session: remembers each prepared text and each read."""

    def __init__(self):
        self.reads: list[tuple[str, tuple]] = []

    def prepare(self, query):
        return type("Prepared", (), {"is_idempotent": False, "query": query})()

    def execute_async(self, statement, values):
        self.reads.append((statement.query, values))

        class Answered:
            attempted_hosts: list = []
            has_more_pages = False

            def add_callbacks(self, ok, failed):
                ok([(values[2][0], 2, 30), (values[2][0], 1, 5)])  # a cell's rows of one bucket, summed

        return Answered()


@pytest.mark.parametrize(
    "filters, dims, matched, where",
    [
        ((None, None, None), 0, ("", "", ""), "origin = ? AND brand_id = ? AND category_id = ?"),
        (("o", None, None), 1, ("o", "", ""), "origin = ? AND brand_id = ? AND category_id = ?"),
        (("o", "b", "c"), 7, ("o", "b", "c"), "origin = ? AND brand_id = ? AND category_id = ?"),
        (("o", "b", None), 7, ("o", "b"), "origin = ? AND brand_id = ?"),
        (("o", None, "c"), 7, ("o", "c"), "origin = ? AND category_id = ? ALLOW FILTERING"),
    ],
)
def test_each_filter_combination_reads_its_cells(filters, dims, matched, where):
    session = Recorder()
    store = AggregateStore.prepare(session)
    found = asyncio.run(store.buckets("BUY", read_of(*filters), 60_000, 120_000))
    assert found == {60_000: (3, 35)}
    [(query, values)] = session.reads
    assert query.endswith(f"bucket_ms IN ? AND {where}")
    assert values == ("BUY", dims, [60_000], *matched)
