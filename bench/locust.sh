#!/bin/bash
# bench/locust.sh LOCUSTFILE [SECONDS] [USERS] - the course's load client
# (its locust file: tests/locust_load_test.py of the course repository,
# posting {"data": {...}} to /predict) run headless against a daemon
# (issue 18).  Starts its own MariaDB (tests/mariadb.sh), the fixture of
# test_admin (a registry with the course model trained on the request
# examples, DAG files, a database), `mlopsd serve` on a free port (version
# 1 put into production through the admin API if none is served), runs
#   locust -f LOCUSTFILE --headless -u USERS -r USERS -t SECONDSs
# and prints locust's totals, the failures (0 expected) and the load
# average.  Exit status: locust's (non-zero when a request failed).
#
# Needs: python3-locust (Debian), a built build/mlopsd and
# build/tests/integration/test_admin (make tests-build).  Not part of
# make test (a timing run): bench/run.sh does not start it either.
set -u
cd "$(dirname "$0")/.." || exit 1
LOCUSTFILE=${1:?usage: bench/locust.sh LOCUSTFILE [SECONDS] [USERS]}
SECS=${2:-20}
USERS=${3:-20}
BUILD=${BUILD:-build}
BIN=$(pwd)/$BUILD/mlopsd
FIXTURE=$BUILD/tests/integration/test_admin
LOCUST=$(command -v locust || echo /usr/bin/locust)
[ -x "$LOCUST" ] || { echo "locust: not installed (apt-get install python3-locust)" >&2; exit 1; }
[ -x "$BIN" ] && [ -x "$FIXTURE" ] || { echo "locust: make tests-build first" >&2; exit 1; }
. bench/lib.sh
PID=""
bench_stop() { bench_kill "$PID"; }
bench_tmp bench_locust
bench_db_start locust
export MLOPSD_SRC=$(pwd) MLOPSD_BIN=$BIN
PORT=$(bench_free_port)
TOKEN="locust-$$"
mkdir -p "$T/f"
"$FIXTURE" --fixture "$T/f" "$PORT" bench_locust >"$T/fixture.log" 2>&1 ||
  { cat "$T/fixture.log"; exit 1; }
(cd "$T/f" && exec env MLOPSD_DATABASE_NAME=bench_locust MLOPSD_ADMIN_TOKEN="$TOKEN" \
  "$BIN" -c "$T/f/mlopsd.yaml" serve >"$T/daemon.log" 2>&1) &
PID=$!
bench_wait_http "http://127.0.0.1:$PORT/healthz" 150
# a served version (the fixture's production alias, else version 1)
curl -sf "http://127.0.0.1:$PORT/metadata" >/dev/null ||
  curl -sf -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"version": 1, "reason": "bench/locust.sh"}' \
    "http://127.0.0.1:$PORT/api/v2/models/credit_score_classification/promote" >/dev/null ||
  { echo "locust: no model served"; tail -20 "$T/daemon.log"; exit 1; }
echo "load before: $(bench_load)"
"$LOCUST" -f "$LOCUSTFILE" --headless -u "$USERS" -r "$USERS" -t "${SECS}s" \
  --host "http://127.0.0.1:$PORT" --only-summary --csv "$T/out" >"$T/locust.log" 2>&1
rc=$?
echo "load after: $(bench_load)"
tail -25 "$T/locust.log"
if [ -f "$T/out_stats.csv" ]; then
  echo "--- totals (locust's stats CSV) ---"
  awk -F, 'NR == 1 || $2 == "\"Aggregated\"" || $2 == "Aggregated"' "$T/out_stats.csv"
fi
exit $rc
