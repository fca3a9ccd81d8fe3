"""An aggregate answer sums every row of its cells, however many: a bucket with
more late corrections than one page of the driver (5,000 rows) is summed
whole, and the buckets after it in the same read are not lost."""

from __future__ import annotations

import httpx
import pytest
from cassandra.concurrent import execute_concurrent_with_args

from common.timestamps import parse_time_range
from tests.integration.api_env import Keyspace, api_keyspace, query_url, range_of

pytestmark = pytest.mark.integration
__all__ = ["api_keyspace", "query_url"]  # fixtures used by name

LATE = 6_000  # correction rows in the first bucket: more than a page


def test_a_range_whose_cells_span_several_pages_is_summed_whole(query_url: str, api_keyspace: Keyspace):
    start = "2022-03-22T08:00:00"
    first_ms = parse_time_range(f"{start}_{start}.001").start_ms
    ks, session = api_keyspace.name, api_keyspace.session
    insert = session.prepare(
        f"INSERT INTO {ks}.aggregate_cells (action, dims, bucket_ms, origin, brand_id, category_id, late_partition, "
        "late_offset, count, sum_price) VALUES ('VIEW', 0, ?, '', '', '', ?, ?, ?, ?)")
    # Bucket 0: its window's row (10 tags) and LATE corrections of one tag each;
    # buckets 1..3: a window's row each.
    rows = [(first_ms, -1, -1, 10, 1000)] + [(first_ms, 0, offset, 1, 7) for offset in range(LATE)]
    rows += [(first_ms + minute * 60_000, -1, -1, minute, minute * 100) for minute in (1, 2, 3)]
    for ok, outcome in execute_concurrent_with_args(session, insert, rows, concurrency=64):
        assert ok, outcome

    answer = httpx.get(f"{query_url}/aggregates", timeout=30, params={
        "time_range": range_of(start, 5), "action": "VIEW", "aggregates": ["COUNT", "SUM_PRICE"]}).json()
    assert [row[2:] for row in answer["rows"]] == [
        [str(10 + LATE), str(1000 + 7 * LATE)], ["1", "100"], ["2", "200"], ["3", "300"], ["0", "0"]]
