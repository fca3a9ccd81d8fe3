#!/bin/sh
# Entry point of the API image (docker/api.Dockerfile).
#   ingest | query : the HTTP services (python -m ingest_api | query_api,
#                    the launch definition in common/server.py)
#   schema         : apply cql/*.cql (python -m cql), then exit
#   anything else  : run it as a command
# HTTP_PORT overrides the listening port, WEB_CONCURRENCY the number of
# worker processes (default 1: scale with replicas).
set -eu

case "${1:-help}" in
  ingest)
    exec python -m ingest_api
    ;;
  query)
    exec python -m query_api
    ;;
  schema)
    exec python -m cql
    ;;
  help|-h|--help)
    echo "usage: IMAGE ingest | query | schema | <command...>" >&2
    exit 64
    ;;
  *)
    exec "$@"
    ;;
esac
