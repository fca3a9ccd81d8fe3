#!/usr/bin/env bash
# Lint and type checks, run by `make test` (a finding fails CI):
# ruff over the whole tree, mypy --strict over the product and the shared
# contract, plain mypy over the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
"$BIN/ruff" check .
"$BIN/mypy" --strict common ingest_api query_api flink_jobs cql
"$BIN/mypy" harness
