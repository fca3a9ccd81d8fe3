"""The soak's own arithmetic: tablestats parsing and the day extrapolation."""

from harness.local_stack.cassandra import parse_table_stats
from harness.soak.report import DAY_TAGS, extrapolate

TABLESTATS = """Total number of tables: 2
----------------
Keyspace : allezon
\tRead Count: 12
\tTable: aggregate_cells
\tSSTable count: 7
\tSpace used (live): 55123456
\tSpace used (total): 55123456
\tNumber of partitions (estimate): 1024
\tCompacted partition mean bytes: 53000
\tLocal write count: 31
\tTable: user_profiles
\tSSTable count: 5
\tSpace used (live): 101000000
\tNumber of partitions (estimate): 242523
\tBloom filter false positives: 0
"""


def test_tablestats_parses_each_table_and_not_the_keyspace_lines() -> None:
    stats = parse_table_stats(TABLESTATS)
    assert stats == {
        "aggregate_cells": {"SSTable count": "7", "Space used (live)": "55123456",
                            "Space used (total)": "55123456", "Number of partitions (estimate)": "1024",
                            "Compacted partition mean bytes": "53000", "Local write count": "31"},
        "user_profiles": {"SSTable count": "5", "Space used (live)": "101000000",
                          "Number of partitions (estimate)": "242523", "Bloom filter false positives": "0"},
    }


def test_a_flat_series_extrapolates_flat_and_a_growing_one_grows() -> None:
    rows = [{"tags": t, "lag": 0, "rss_mb_total": 3000.0, "cells_mb": 50.0 + t / 1e6, "cassandra_mb": 100.0,
             "kafka_mb": 10.0, "checkpoint_mb": 5.0} for t in range(0, 4_000_001, 500_000)]
    lines = extrapolate(rows, [], retention_tags=1_000_000)
    rss = next(line for line in lines if "rss_mb_total" in line)
    cells = next(line for line in lines if "cells_mb" in line)
    assert "+0.0 MB per M tags" in rss and "day      3000 MB" in rss, rss
    assert "+1.0 MB per M tags" in cells and f"day {50 + DAY_TAGS / 1e6:>9.0f} MB" in cells, cells


def test_kafka_stops_at_its_cap_and_the_disk_total_with_it() -> None:
    rows = [{"tags": t, "lag": 0, "rss_mb_total": 3000.0, "cassandra_mb": 100.0, "kafka_mb": t / 1000,
             "checkpoint_mb": 5.0} for t in range(0, 4_000_001, 500_000)]
    lines = extrapolate(rows, [], retention_tags=1_000_000, kafka_cap_mb=9216.0)
    kafka = next(line for line in lines if "kafka_mb" in line)
    total = next(line for line in lines if "disk_mb_total" in line)
    assert "day      9216 MB" in kafka and "its cap" in kafka, kafka
    assert f"day {100 + 9216 + 5:>9.0f} MB" in total and "Kafka at its cap" in total, total
    uncapped = next(line for line in extrapolate(rows, [], retention_tags=1_000_000) if "kafka_mb" in line)
    assert f"day {DAY_TAGS / 1000:>9.0f} MB" in uncapped, uncapped
