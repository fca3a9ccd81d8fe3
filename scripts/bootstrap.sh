#!/usr/bin/env bash
# Creates .venv with the pinned API/test dependencies (requirements/api.lock).
# Idempotent: does nothing when the lock has not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
UV_VERSION=0.13.9
stamp=.venv/.lock.sha256
want=$(cat requirements/api.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
.venv/bin/uv pip sync -q --python .venv/bin/python --require-hashes requirements/api.lock
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps --no-build-isolation -e . 2>/dev/null \
  || .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
