"""The harness around the product: nothing in ingest_api/, flink_jobs/,
query_api/, cql/ or common/ imports it.

- `local_stack`: `make up`, Kafka, Cassandra, the job, the APIs and HAProxy as local processes;
- `replay`: the load tool (`make bench`, `allezon-replay`): workloads, the oracle, scoring;
- `measure`: one-off measurement scripts behind docs/BENCHMARKS.md.
"""
