#!/bin/sh
# dp-service: the container's entry point. The first argument picks what runs; the rest is passed on.
set -eu

usage() {
    cat <<'USAGE'
usage: dp-service COMMAND [ARGS...]

services:
  gateway         HTTP API, SSE streams and web UI (DP_HTTP_PORT, default 8084)
  scheduler       decides what runs next (run two: single active consumer)
  step-runner     runs the workflow steps (scale out freely)
  log-collector   the only writer of the pipeline database
one-shot jobs:
  migrate         apply the database migrations (safe to run twice)
  rebuild         rebuild the read models by replaying the event store
  demo-db         create the demo business database
tools:
  dpctl ARGS      the command line client (DP_GATEWAY_URL, DP_API_TOKEN)
  healthcheck URL exit 0 when URL answers 2xx (for container health checks)
USAGE
}

cmd="${1:-help}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "$cmd" in
    gateway) exec dp-gateway "$@" ;;
    scheduler) exec dp-scheduler "$@" ;;
    step-runner) exec dp-step-runner "$@" ;;
    log-collector) exec dp-log-collector "$@" ;;
    migrate) exec dp-migrate "$@" ;;
    rebuild) exec python -m services.log_collector.main rebuild "$@" ;;
    demo-db) exec python -m services.demo_db --url "${DP_DEMO_DATABASE_URL:?set DP_DEMO_DATABASE_URL}" "$@" ;;
    dpctl) exec dpctl "$@" ;;
    healthcheck)
        exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))' \
            "${1:?healthcheck needs a URL}" "${2:-3}"
        ;;
    help | -h | --help) usage ;;
    *)
        # Anything else runs as given (e.g. `sh` for a debugging shell), if it exists.
        if command -v "$cmd" >/dev/null 2>&1; then
            exec "$cmd" "$@"
        fi
        echo "dp-service: unknown command '$cmd'" >&2
        usage >&2
        exit 64
        ;;
esac
