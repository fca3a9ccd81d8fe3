# Local development entry points. `make up` on a fresh clone sets everything up
# (venv, Kafka and Cassandra jars, HAProxy) and starts the platform as local
# processes; see harness/local_stack/README.md.
#
# Variables: COMPONENT=<name> for `make logs`, ARGS="..." passed to the CLI
# (e.g. make topic-tail ARGS="--last 5"), and every StackSettings variable
# (KAFKA_PORT, CASSANDRA_HEAP, ALLEZON_RUN_DIR, ...) from the environment.
# make bench: BENCH_RATES, BENCH_STEP_TAGS, BENCH_P99_MS, BENCH_CONCURRENCY, BENCH_WARMUP_S, BENCH_SEED.

SHELL := /bin/bash
PYTHON := .venv/bin/python
STACK := $(PYTHON) -m harness.local_stack
COMPONENT ?=
ARGS ?=
# make bench: tags/s per step and tags per step (see docs/REPLAY.md)
BENCH_RATES ?= 500,1000,2000,4000,8000
BENCH_STEP_TAGS ?= 180000
export BENCH_RATES BENCH_STEP_TAGS

.DEFAULT_GOAL := help
.PHONY: help bootstrap prereqs up down status logs clean topic-tail test bench soak demo \
	job-submit job-status job-savepoint job-stop job-cancel job-upgrade scale

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-14s %s\n", $$1, $$2}'

bootstrap: ## create/refresh .venv and .venv-flink from requirements/*.lock (no-op when unchanged)
	@scripts/bootstrap.sh

prereqs: ## check java 17+ and mvn, install haproxy if missing
	@scripts/check_prereqs.sh

up: bootstrap prereqs ## start Kafka, Cassandra, schema, APIs and the proxy; idempotent
	@$(STACK) up $(ARGS)

down: ## stop everything `up` started (data kept)
	@if [ -x $(PYTHON) ]; then $(STACK) down $(ARGS); else echo "no .venv: nothing to stop"; fi

status: ## components, pids, readiness, memory
	@$(STACK) status || true

logs: ## tail the logs (COMPONENT=kafka|cassandra|flink|ingest-api|query-api|proxy, ARGS=-f to follow)
	@$(STACK) logs $(COMPONENT) $(ARGS)

clean: ## down + remove data and logs in .run (keeps the jar cache in .cache)
	@if [ -x $(PYTHON) ]; then $(STACK) clean; else rm -rf .run; fi

# The stream job's lifecycle on the local Flink cluster (docs/OPERATIONS.md).
FROM ?=
job-submit: ## submit the stream job; restores its last savepoint or checkpoint (or FROM=<path>)
	@$(STACK) job submit $(if $(FROM),--from $(FROM)) $(ARGS)

job-status: ## the job's state, what it was restored from and what the next submit restores
	@$(STACK) job status

job-savepoint: ## take a savepoint of the running job (it keeps running)
	@$(STACK) job savepoint

job-stop: ## stop the job with a savepoint (the next submit resumes from it)
	@$(STACK) job stop

job-cancel: ## cancel the job (its checkpoints are kept; the next submit resumes from the newest)
	@$(STACK) job cancel

job-upgrade: ## stop with a savepoint, then submit the working tree's job from it
	@$(STACK) job upgrade

TASKMANAGERS ?=
scale: ## run TASKMANAGERS=<n> Flink TaskManagers; the job rescales to their slots
	@test -n "$(TASKMANAGERS)" || { echo "usage: make scale TASKMANAGERS=<n>"; exit 2; }
	@$(STACK) scale $(TASKMANAGERS)

topic-tail: ## print the messages in the Kafka topic (ARGS="--last 5 --topic x")
	@$(STACK) topic-tail $(ARGS)

test: bootstrap prereqs ## set up and run the whole suite (lint and types, unit, stream job, integration, end-to-end, the dashboard in chromium)
	@scripts/check_prereqs.sh --browser
	@scripts/lint.sh
	@# The stream job's Java sinks: their JUnit tests (Maven, the stack's own local repository).
	@mvn -B -ntp -f flink_jobs/operators/pom.xml -Dmaven.repo.local=$(CURDIR)/.cache/m2 verify
	@# The stream job's own tests run in its own virtualenv (PyFlink pins).
	@.venv-flink/bin/python -m pytest --noconftest -p no:cacheprovider tests/stream_job
	@$(PYTHON) -m pytest --ignore=tests/stream_job --ignore=tests/unit $(ARGS)
	@# The unit tests in a session of their own, once the suites above have
	@# stopped their Kafka and Cassandra: some pace thousands of requests
	@# through one in-process event loop.
	@$(PYTHON) -m pytest tests/unit $(ARGS)

bench: bootstrap prereqs ## ramp tags/s with the reference query mix until a step fails; vars BENCH_RATES=500,1000,2000,4000,8000 BENCH_STEP_TAGS=180000 BENCH_P99_MS=200 BENCH_CONCURRENCY=256 BENCH_WARMUP_S=30 BENCH_SEED=1 (docs/REPLAY.md)
	@$(STACK) up
	@$(PYTHON) -m harness.replay.bench $(ARGS)

demo: ## stream the REES46 sample through the front door, dated now, until Ctrl-C (DEMO_RATE=50 tags/s); prints the dashboard URL; needs `make up`
	@if [ -x $(PYTHON) ]; then $(PYTHON) -m harness.replay.demo; else echo "no .venv: run make up first"; exit 1; fi

soak: bootstrap ## a day-long load on a fresh `make up` (EVENT_RETENTION_MS=3600000): memory, disk, lag every minute, then every retained answer checked; vars SOAK_TAGS=10000000 SOAK_SAMPLE_S=60, ARGS (python -m harness.soak --help)
	@$(PYTHON) -m harness.soak $(ARGS)
