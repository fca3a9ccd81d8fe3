#!/bin/sh
# Entry point of the API image (docker/api.Dockerfile).
#   ingest | query : the HTTP services, same flags as the local process stack
#   schema         : apply cql/*.cql (python -m harness.local_stack schema), then exit
#   anything else  : run it as a command
# PORT overrides the listening port; WEB_CONCURRENCY (read by uvicorn itself)
# sets the number of worker processes (default 1: scale with replicas).
set -eu

case "${1:-help}" in
  ingest)
    shift
    exec uvicorn ingest_api.app:create_app --factory \
      --host 0.0.0.0 --port "${PORT:-8081}" \
      --loop uvloop --http httptools --no-access-log "$@"
    ;;
  query)
    shift
    exec uvicorn query_api.app:create_app --factory \
      --host 0.0.0.0 --port "${PORT:-8082}" \
      --loop uvloop --http httptools --no-access-log "$@"
    ;;
  schema)
    shift
    exec python -m harness.local_stack schema "$@"
    ;;
  help|-h|--help)
    echo "usage: IMAGE ingest | query | schema | <command...>" >&2
    exit 64
    ;;
  *)
    exec "$@"
    ;;
esac
