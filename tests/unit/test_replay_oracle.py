"""The replay oracle against a brute-force reference on small seeded streams."""

from __future__ import annotations

import random

import pytest

from common.cube import BUCKET_MS
from harness.replay.oracle import Oracle
from harness.replay.workload import Workload, format_tag_time
from tests.unit.replay_reference import BruteForce

T0 = 1_647_950_400_000  # 2022-03-22T12:00:00Z


def stream(n: int = 3000, seed: int = 3) -> list[dict]:
    """Few cookies (many tags each), few dimension values, ties and reordering."""
    rng = random.Random(seed)
    tags = list(Workload(seed=seed, start_ms=T0, step_ms=53, cookies=40, origins=5, brands=4, categories=3).tags(n))
    for i, tag in enumerate(tags):
        if i % 17 == 0 and i:  # same cookie, same millisecond as the previous tag
            tag["cookie"] = tags[i - 1]["cookie"]
            tag["time"] = tags[i - 1]["time"]
            tag["action"] = tags[i - 1]["action"]
        if i % 29 == 0:
            tag["product_info"]["price"] = -(2**31) + i  # negative prices sum too
    # Acknowledged out of time order: shuffle within chunks of 40.
    for start in range(0, n, 40):
        chunk = tags[start:start + 40]
        rng.shuffle(chunk)
        tags[start:start + 40] = chunk
    return tags


def both(tags, keep=200):
    oracle, brute = Oracle(keep=keep), BruteForce(keep=keep)
    for tag in tags:
        oracle.add(tag)
        brute.add(tag)
    return oracle, brute


def random_profile_queries(rng, tags, count):
    cookies = sorted({t["cookie"] for t in tags}) + ["never seen"]
    span = 3000 * 53
    for _ in range(count):
        start = T0 + rng.randrange(-5_000, span)
        length = rng.choice((1, 53, 1_000, 10_000, 60_000, span, 10 * span))
        yield rng.choice(cookies), start, start + length, rng.choice((0, 1, 3, 10, 50, 200, 200))


def test_profiles_equal_brute_force_and_flag_the_undetermined_ones():
    tags = stream()
    oracle, brute = both(tags)
    rng = random.Random(1)
    undetermined = cautious = 0
    for cookie, start, end, limit in random_profile_queries(rng, tags, 1000):
        expected, deterministic = brute.profile(cookie, start, end, limit)
        refs = oracle.profile_refs(cookie, start, end, limit)
        if not deterministic:
            assert refs is None, (cookie, start, end, limit)
            undetermined += 1
        elif refs is None:
            # Only allowed when the range lies where the oracle no longer keeps
            # tags (it cannot prove the range empty) and the answer is short.
            cautious += 1
        else:
            assert oracle.profile(cookie, start, end, limit) == expected
    assert undetermined > 10  # the stream really has cookies past the cap
    assert cautious < 0.05 * 1000, cautious


def test_capped_storage_never_answers_what_it_cannot_know():
    """keep=5: most lists are evicted from; an answer is given only when the
    brute force agrees it is the only right one, and is then equal to it."""
    tags = stream()
    oracle, brute = both(tags, keep=5)
    rng = random.Random(2)
    answered = 0
    for cookie, start, end, limit in random_profile_queries(rng, tags, 800):
        expected, deterministic = brute.profile(cookie, start, end, limit)
        refs = oracle.profile_refs(cookie, start, end, limit)
        if not deterministic:
            assert refs is None
        if refs is not None:
            answered += 1
            assert oracle.profile(cookie, start, end, limit) == expected
    assert answered > 100
    assert all(oracle.tag_count(c, a) <= 5 for c in {t["cookie"] for t in tags} for a in ("VIEW", "BUY"))


def test_unacknowledged_tags_count_against_the_cap():
    oracle = Oracle()
    base = {"cookie": "c", "country": "PL", "device": "PC", "action": "VIEW", "origin": "o",
            "product_info": {"product_id": 1, "brand_id": "b", "category_id": "k", "price": 1}}
    for i in range(150):
        oracle.add({**base, "time": format_tag_time(T0 + i)})
    # 150 known + 50 unknown: the oldest known is the 200th newest, still kept.
    assert oracle.profile_refs("c", T0, T0 + 1000, 200, newer_unknown=50) is not None
    assert oracle.profile_refs("c", T0, T0 + 1000, 200, newer_unknown=51) is None
    # Only the newest 10 asked: still fine with many unknown newer tags.
    assert oracle.profile_refs("c", T0 + 140, T0 + 1000, 10, newer_unknown=50) is not None


def test_later_acknowledged_tag_of_the_same_millisecond_comes_first():
    oracle = Oracle()
    base = {"time": format_tag_time(T0), "cookie": "c", "country": "PL", "device": "PC", "action": "BUY",
            "origin": "o", "product_info": {"product_id": 1, "brand_id": "b", "category_id": "k", "price": 1}}
    first, second = dict(base, origin="first"), dict(base, origin="second")
    oracle.add(first)
    oracle.add(second)
    assert oracle.profile("c", T0, T0 + 1)["buys"] == [second, first]


def aggregate_queries(rng, tags, count):
    values = {
        "origin": sorted({t["origin"] for t in tags}) + ["nowhere"],
        "brand_id": sorted({t["product_info"]["brand_id"] for t in tags}),
        "category_id": sorted({t["product_info"]["category_id"] for t in tags}) + [""],
    }
    for _ in range(count):
        start = T0 + rng.randrange(-3, 5) * BUCKET_MS
        end = start + rng.randint(1, 5) * BUCKET_MS
        chosen = {n: (rng.choice(v) if rng.random() < 0.5 else None) for n, v in values.items()}
        yield (start, end, rng.choice(("VIEW", "BUY")),
               rng.choice((["COUNT"], ["SUM_PRICE"], ["COUNT", "SUM_PRICE"], ["SUM_PRICE", "COUNT"])), chosen)


def test_aggregates_equal_brute_force_for_every_filter_subset():
    tags = stream()
    oracle, brute = both(tags)
    rng = random.Random(3)
    masks = set()
    for start, end, action, aggregates, f in aggregate_queries(rng, tags, 300):
        masks.add(tuple(v is not None for v in f.values()))
        assert oracle.aggregates(start, end, action, aggregates, **f) == brute.aggregates(
            start, end, action, aggregates, **f), (start, end, action, aggregates, f)
    assert len(masks) == 8


def test_a_day_long_range_and_late_tags():
    tags = stream(400)
    late = dict(tags[3], time=format_tag_time(T0 - 23 * 3600_000 + 5))  # acknowledged last, 23 h early
    oracle, brute = both([*tags, late])
    start = T0 - 23 * 3600_000 - 2 * BUCKET_MS
    for action in ("VIEW", "BUY"):
        got = oracle.aggregates(start, start + 1440 * BUCKET_MS, action, ["COUNT", "SUM_PRICE"])
        assert got == brute.aggregates(start, start + 1440 * BUCKET_MS, action, ["COUNT", "SUM_PRICE"])
        assert len(got["rows"]) == 1440


def test_by_reference_with_a_random_access_source():
    """The replay tool's way: the oracle holds indices and rebuilds tags from the workload."""
    workload = Workload(seed=9, start_ms=T0, step_ms=7, cookies=30, origins=3, brands=3, categories=2)
    oracle = Oracle(tag_of=workload.tag, tag_bytes_of=workload.tag_bytes)
    brute = BruteForce()
    order = list(range(2000))
    random.Random(4).shuffle(order)  # acknowledged in any order: refs are indices, times differ
    for i in sorted(order[:1500]):
        oracle.add_record(i, workload.record(i))
    for i in sorted(order[:1500]):
        brute.add(workload.tag(i))
    rng = random.Random(5)
    for cookie, start, end, limit in random_profile_queries(rng, list(workload.tags(2000)), 200):
        end = start + (end - start) // 20 + 1
        expected, deterministic = brute.profile(cookie, start, end, limit)
        refs = oracle.profile_refs(cookie, start, end, limit)
        assert (refs is not None) == deterministic
        if refs is not None:
            import orjson
            assert orjson.loads(oracle.profile_bytes(cookie, refs)) == expected


@pytest.mark.parametrize("n", [120_000])
def test_memory_and_speed_stay_sane(n):
    """2 minutes at 1,000 tags/s: adding and asking stay cheap, memory per tag bounded."""
    import time
    import tracemalloc

    workload = Workload(seed=1)
    records = [workload.record(i) for i in range(n)]
    oracle = Oracle(tag_of=workload.tag, tag_bytes_of=workload.tag_bytes)
    started = time.perf_counter()
    for i, record in enumerate(records[: n // 6]):
        oracle.add_record(i, record)
    add_s = (time.perf_counter() - started) / (n // 6) * n
    tracemalloc.start()
    oracle = Oracle(tag_of=workload.tag, tag_bytes_of=workload.tag_bytes)
    for i, record in enumerate(records):
        oracle.add_record(i, record)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del records
    assert current / n < 400, f"{current / n:.0f} bytes per tag"
    assert add_s / n < 20e-6, f"{add_s / n * 1e6:.1f} us per tag"
    rng = random.Random(6)
    started = time.perf_counter()
    for _ in range(200):
        start = workload.start_ms + rng.randrange(0, 9) * BUCKET_MS
        oracle.aggregates(start, start + 10 * BUCKET_MS, "VIEW", ["COUNT"], origin="origin-7", brand_id="brand-3")
    assert (time.perf_counter() - started) / 200 < 0.01
    print(f"\noracle: {current / n:.0f} bytes per tag, {add_s / n * 1e6:.1f} us per add")
