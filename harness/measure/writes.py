"""Cassandra writes per 1,000 tags and bucket/profile freshness, on the running `make up` stack.

Produces a seeded reference-shaped stream straight into the topic at a fixed
rate (so the stream job is what is measured), then reads Cassandra's per-table
write counters (nodetool tablestats) before and after.

    .venv/bin/python -m harness.measure.writes --tags 60000 --rate 1000
"""

from __future__ import annotations

import argparse
import time

import orjson
from confluent_kafka import Producer

from common.cube import bucket_of
from common.tag import UserTag
from harness.local_stack.stack import Stack
from harness.replay.workload import Workload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="tags per second")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    stack = Stack()
    s = stack.settings
    before = stack.cassandra.table_write_counts(s.cassandra_keyspace)
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap_servers, "acks": "all", "enable.idempotence": True})
    started = time.monotonic()
    # Event time advances as fast as wall time: 1 ms per tag at 1,000 tags/s.
    workload = Workload(seed=args.seed, step_ms=round(1000 / args.rate),
                        start_ms=1_700_000_000_000 + args.seed * 86_400_000)
    last_bucket = {"VIEW": 0, "BUY": 0}
    last_tag: UserTag | None = None
    for i, tag in enumerate(workload.tags(args.tags)):
        accepted = UserTag.model_validate(tag)
        key, value = accepted.kafka_record()
        last_tag = accepted
        producer.produce(s.kafka_topic, value=value, key=key)
        producer.poll(0)
        lag = started + i / args.rate - time.monotonic()
        if lag > 0:
            time.sleep(lag)
    producer.flush()
    if last_tag is None:
        raise SystemExit("no tags sent (--tags 0)")
    sent_s = time.monotonic() - started
    acked_at = time.monotonic()
    # Freshness: the last tag visible in its profile; the last bucket's total final.
    final_bucket = bucket_of(last_tag.time_ms)
    for tag in workload.tags(args.tags):
        t = UserTag.model_validate(tag)
        if bucket_of(t.time_ms) == final_bucket:
            last_bucket[t.action] += 1
    profile_s = bucket_s = None
    with stack.cassandra_session(s.cassandra_keyspace) as session:
        while (profile_s is None or bucket_s is None) and time.monotonic() - acked_at < 600:
            if profile_s is None and session.execute(
                "SELECT tag FROM user_profiles WHERE cookie=%s AND action=%s AND time_ms=%s",
                (last_tag.cookie, last_tag.action, last_tag.time_ms)).one():
                profile_s = time.monotonic() - acked_at
            if bucket_s is None and all(
                (session.execute("SELECT count FROM aggregate_cells WHERE action=%s AND dims=0 AND bucket_ms=%s "
                                 "AND origin='' AND brand_id='' AND category_id=''"
                                    " AND late_partition=-1 AND late_offset=-1",
                                 (a, final_bucket)).one() or [0])[0] == n
                for a, n in last_bucket.items()):
                bucket_s = time.monotonic() - acked_at
            time.sleep(0.2)
    # Wait until the write counters stop moving (the job has caught up).
    last: dict[str, int] = {}
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < 5:
        now = stack.cassandra.table_write_counts(s.cassandra_keyspace)
        if now != last:
            last, stable_since = now, time.monotonic()
        time.sleep(1)
    writes = {t: last.get(t, 0) - before.get(t, 0) for t in last}
    print(orjson.dumps({
        "tags": args.tags, "rate": args.rate, "sent_s": round(sent_s, 1), "writes": writes,
        "last_profile_visible_s": profile_s and round(profile_s, 1),
        "last_bucket_final_s": bucket_s and round(bucket_s, 1),
        "writes_per_1000_tags": {t: round(w * 1000 / args.tags) for t, w in writes.items()},
    }).decode())


if __name__ == "__main__":
    main()
