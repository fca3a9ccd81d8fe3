#!/usr/bin/env bash
# Creates the two virtualenvs from their pinned, hashed locks:
#   .venv        API services, local stack tooling, tests  (requirements/api.lock)
#   .venv-flink  the PyFlink stream job                    (requirements/flink.lock)
# Idempotent: a virtualenv whose lock has not changed since its last sync is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
UV_VERSION=0.13.9

sync_venv() {  # <venv dir> <lock file> <install the project too: yes|no>
  local venv=$1 lock=$2 project=$3
  local stamp=$venv/.lock.sha256
  local want
  want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  echo "bootstrap: syncing $venv from $lock" >&2
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  "$venv/bin/uv" pip sync -q --python "$venv/bin/python" --require-hashes "$lock"
  if [ "$project" = yes ]; then
    "$venv/bin/uv" pip install -q --python "$venv/bin/python" --no-deps -e .
  fi
  echo "$want" > "$stamp"
}

sync_venv .venv requirements/api.lock yes
# The job imports the project from its checkout (PYTHONPATH), not as a package.
sync_venv .venv-flink requirements/flink.lock no

# The dashboard's chart library, from its lock (served by the query API; no CDN).
sync_node_modules() {  # <dir holding package-lock.json>
  local dir=$1
  local stamp=$dir/node_modules/.lock.sha256
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  command -v npm >/dev/null 2>&1 || { echo "error: npm not found: install Node.js 18+ (Debian: apt-get install -y npm)" >&2; exit 1; }
  echo "bootstrap: installing $dir's npm packages from its lock (npm ci)" >&2
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$stamp"
}
sync_node_modules query_api/dashboard
