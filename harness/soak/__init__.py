"""`make soak`: a day-long load on the running local stack, and what it costs (issue 12, "Prove it").

Feeds the reference workload (harness.replay.workload, default seed, 1 ms of
event time per tag, 1 M skewed cookies) straight into the stack's topic, as
the records the ingest API writes, as fast as the stream job takes them: in
chunks, none while the job's consumer group lags more than --max-lag tags.

Every --sample-s seconds one CSV row: tags produced, consumer lag, each
process's RSS (the job with its JVM), the job JVM's heap after a full GC
(jcmd), Cassandra's data after a flush, Kafka's log and the checkpoints on
disk, and the event time reached. At the end, once the job has committed
every tag, the answers about the retained window of event time (the last
EVENT_RETENTION_MS) are checked against an oracle: every 1-minute bucket of
both actions, a sample of filtered aggregates and of profiles; any wrong
answer makes the exit status 1. Then a plot, and linear fits over the last
half of the run extrapolated to a day (86.4 M tags).

Needs a fresh stack (an empty topic):

    make clean && EVENT_RETENTION_MS=3600000 make up && make soak
    .venv/bin/python -m harness.soak --tags 200000 --sample-s 15 --out /tmp/soak

Writes docs/soak/soak-<date>-<time>.csv, .png and .json (--out to change); the plot and
the fits are against the tags the job has processed (produced minus lag).
Options default to SOAK_<OPTION> variables (SOAK_TAGS, SOAK_SAMPLE_S, ...).
--port-shift/--run-dir select a stack started beside `make up` with
StackSettings().shifted(...).
"""
