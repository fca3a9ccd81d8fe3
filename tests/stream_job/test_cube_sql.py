"""The cube SQL of the stream job on PyFlink's local cluster, with explicit
event times on a bounded source (no Kafka, no sleeps): every (bucket, action,
dims, cell) figure must equal an oracle computed here, including out-of-order
tags, a late tag after its bucket closed, minute boundaries, times before
1970 and prices near the int32 maximum. Runs in the job's own virtualenv.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict

import pytest

pyflink = pytest.importorskip("pyflink")

from pyflink.table import EnvironmentSettings, TableEnvironment  # noqa: E402

from common.cube import ALL_MASKS, bucket_of, cell_key  # noqa: E402
from flink_jobs import sql  # noqa: E402
from flink_jobs.config import JobSettings  # noqa: E402

INT32_MAX = 2**31 - 1
T0 = 1647951300000  # 2022-03-22T12:15:00Z


def make_tags() -> list[dict]:
    rng = random.Random(7)
    tags = []
    for i in range(3000):
        tags.append({
            "time_ms": T0 + i * 97 + rng.randint(-1500, 1500),  # out of order, within the bound
            "action": rng.choice(["VIEW", "BUY"]),
            "origin": rng.choice(["o1", "o/2 ?&", "ó3"]),
            "brand_id": rng.choice(["b1", "b2", ""]),
            "category_id": rng.choice(["c1", "c2"]),
            "price": rng.choice([1, 999, INT32_MAX, INT32_MAX - 1, 0]),
        })
    # Exactly on and just before minute boundaries.
    for offset in (0, -1, 60_000, 59_999, 120_000):
        tags.append(dict(tags[0], time_ms=T0 + offset))
    # A late tag, after its bucket's total was published: the total must be
    # corrected (one row per cell, never a second one).
    tags.append(dict(tags[1], time_ms=T0 + 5))
    # 52 years behind the others: beyond the 24 h retention, so the SPEC lets
    # us drop it; we keep it, and it must count in its own bucket only.
    tags.append(dict(tags[2], time_ms=-1))
    return tags


def oracle(tags: list[dict]) -> dict[tuple, tuple[int, int]]:
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for t in tags:
        for mask in ALL_MASKS:
            dims = cell_key(mask, t["origin"], t["brand_id"], t["category_id"])
            key = (bucket_of(t["time_ms"]), t["action"], mask, *dims)
            cells[key][0] += 1
            cells[key][1] += t["price"]
    return {k: (v[0], v[1]) for k, v in cells.items()}


@pytest.fixture(scope="module")
def cube_rows(tmp_path_factory):
    tags = make_tags()
    path = tmp_path_factory.mktemp("tags") / "tags.json"
    with path.open("w") as f:
        for position, t in enumerate(tags):
            f.write(json.dumps(dict(t, cookie="c", tag="{}", kafka_partition=0, kafka_offset=position)) + "\n")

    settings = JobSettings()
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("parallelism.default", "2")
    for key, value in sql.cube_table_config(settings).items():
        t_env.get_config().set(key, value)
    position = "kafka_partition INT,\n  kafka_offset BIGINT"
    t_env.execute_sql(
        f"CREATE TABLE {sql.SOURCE_TABLE} ({sql.source_columns(settings, position)}) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')"
    )
    final: dict[tuple, tuple[int, int]] = {}
    with t_env.sql_query(sql.cube_query(settings)).execute().collect() as results:
        for row in results:
            kind = str(row.get_row_kind())
            bucket, action, dims, origin, brand, category, cnt, total = row
            key = (bucket, action, dims, origin, brand, category)
            if kind in ("+I", "+U", "INSERT", "UPDATE_AFTER"):
                final[key] = (cnt, total)
    return tags, final


def test_every_cube_cell_matches_the_oracle(cube_rows):
    tags, final = cube_rows
    expected = oracle(tags)
    assert len(final) == len(expected)
    assert sorted(final.items()) == sorted(expected.items())


def test_a_tag_beyond_retention_counts_only_in_its_own_bucket(cube_rows):
    _, final = cube_rows
    old = {key: figure for key, figure in final.items() if key[0] < 0}
    assert {key[2] for key in old} == set(range(8))
    assert all(figure[0] == 1 for figure in old.values())


def test_sums_need_64_bits(cube_rows):
    _, final = cube_rows
    assert max(total for _, total in final.values()) > INT32_MAX


def test_the_late_tag_corrected_its_closed_bucket(cube_rows):
    tags, final = cube_rows
    late = tags[-2]
    key = (bucket_of(late["time_ms"]), late["action"], 0, "", "", "")
    assert final[key] == oracle(tags)[key]
    without_late = oracle(tags[:-2])
    assert final[key][0] == without_late[key][0] + 1
