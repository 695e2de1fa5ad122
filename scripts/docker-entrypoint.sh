#!/bin/sh
# docker-entrypoint.sh [serve|ARGS...] - the container's start step.
# Waits for MariaDB, applies migrations (idempotent), loads the sample data
# once when MLOPSD_SEED=1 (idempotent too), then execs the daemon so it is
# PID 1 and receives SIGTERM directly.  Other arguments run mlopsd as is
# (e.g. `docker compose run mlopsd models list`).
set -eu
if [ "${1:-serve}" != "serve" ]; then
  exec mlopsd "$@"
fi
tries=${MLOPSD_DB_WAIT_TRIES:-60}
i=0
until mlopsd db init; do
  i=$((i + 1))
  if [ "$i" -ge "$tries" ]; then
    echo "docker-entrypoint: MariaDB not reachable after $tries tries" >&2
    exit 1
  fi
  sleep 2
done
if [ "${MLOPSD_SEED:-0}" = 1 ]; then
  mlopsd db seed --dir "${MLOPSD_SEED_DIR:-sql/data}"
fi
if [ -n "${MLOPSD_BOOTSTRAP_DAG:-}" ]; then
  # Queue a first run (e.g. the CT DAG) so a fresh stack trains a model.
  # On every later start the run exists already (one run per DAG and
  # date): that is the expected case and stays quiet; any other failure
  # is shown, and the daemon starts anyway.
  if ! out=$(mlopsd dags trigger "$MLOPSD_BOOTSTRAP_DAG" \
      --date "${MLOPSD_BOOTSTRAP_DATE:-2025-09-01}" 2>&1); then
    case "$out" in
      *"already has a run"*) ;;
      *) echo "docker-entrypoint: bootstrap run not queued: $out" >&2 ;;
    esac
  else
    echo "$out"
  fi
fi
exec mlopsd serve
