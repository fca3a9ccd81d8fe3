"""The seeded, random-access workload."""

from __future__ import annotations

from collections import Counter

from common.tag import UserTag
from harness.replay.workload import Workload


def test_same_seed_same_stream_other_seed_other_stream():
    a, b, c = Workload(seed=1), Workload(seed=1), Workload(seed=2)
    assert list(a.tags(50)) == list(b.tags(50))
    assert list(a.tags(50)) != list(c.tags(50))
    assert Workload(seed=1, namespace="x").tag(0)["cookie"] != a.tag(0)["cookie"]


def test_random_access_equals_the_stream():
    w = Workload(seed=3)
    stream = list(w.tags(300))
    assert [w.tag(i) for i in (0, 17, 299)] == [stream[0], stream[17], stream[299]]
    assert list(w.tags(10, first=290)) == stream[290:]


def test_times_advance_one_millisecond_per_tag_from_the_reference_start():
    w = Workload()
    assert [t["time"] for t in w.tags(3)] == ["2022-03-01T00:00:00.000Z", "2022-03-01T00:00:00.001Z",
                                              "2022-03-01T00:00:00.002Z"]
    assert w.tag(61_001)["time"] == "2022-03-01T00:01:01.001Z"


def test_cardinalities_and_skew():
    w = Workload(seed=5)
    records = [w.record(i) for i in range(30_000)]
    assert len({r[2] for r in records}) == 100  # countries
    assert {r[3] for r in records} == {"PC", "MOBILE", "TV"}
    assert 950 <= len({r[5] for r in records}) <= 1000  # origins
    assert len({r[7] for r in records}) == 250
    assert len({r[8] for r in records}) == 67
    buys = sum(r[4] == "BUY" for r in records) / len(records)
    assert 0.08 < buys < 0.12
    cookies = Counter(r[1] for r in records)
    top = cookies.most_common(1)[0][1]
    assert top > 0.05 * len(records) and len(cookies) > 3_000  # a few hot cookies, a long tail
    assert {type(r[6]) for r in records} == {int, str}


def test_tags_are_valid_and_bytes_are_canonical():
    w = Workload(seed=6)
    for i in range(0, 2000, 13):
        assert UserTag.model_validate(w.tag(i)).canonical_json() == w.tag_bytes(i)
