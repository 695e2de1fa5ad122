#!/bin/bash
# bench/bench_serve.sh - throughput and latency of `mlopsd serve` with the
# prediction log on, against its own throwaway MariaDB, on 127.0.0.1.
#
# Starts MariaDB (tests/mariadb.sh) in a temp dir, trains a registry with
# two versions of the course model (test_serve --make-registry: the same
# model the integration test serves), runs `mlopsd db init`, starts the
# daemon and drives it with wrk (bench/bench_serve.lua: varied bodies from
# shared/data/credit/predict_requests.jsonl):
#
#   GET /healthz                 the ceiling (no body, no work)
#   POST /predict single         one item per request
#   POST /predict batch of 64    64 items per request
#   POST /predict single, --no-native   XGBoost's own predict, same run
#
# at 16 and 64 connections (wrk -t2), SECONDS each (default 10).  Between
# runs it waits until the log has stored everything, so a run never pays
# for the previous one.  Reports requests/s, items/s, p50/p99, non-2xx,
# the daemon's CPU per request, its RSS (current and peak) and the log
# rows written; at the end checks that the table holds one row per item
# answered 200.  Figures only: nothing here passes or fails on them.
#
#   bench/bench_serve.sh [SECONDS]
#   BENCH_SERVE_PERF=1 bench/bench_serve.sh   also perf-profile the daemon
#                                             during single/16 (top symbols)
#
# Environment: BUILD (default build), MLOPSD_SRC, MLOPSD_BIN (set by
# bench/run.sh).  Needs wrk (scripts/install-deps.sh) and python3.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-build}
BIN=${MLOPSD_BIN:-$SRC/$BUILD/mlopsd}
DUR=${1:-${BENCH_SERVE_SECONDS:-10}}
DATA=${MLOPSD_DATA:-$SRC/../shared/data/credit/predict_requests.jsonl}
[ -f "$DATA" ] || DATA=${MLOPSD_SHARED:-/work/shared}/data/credit/predict_requests.jsonl
LUA=$SRC/bench/bench_serve.lua
cd "$SRC" || exit 1

command -v wrk >/dev/null || { echo "bench_serve: wrk not installed" >&2; exit 1; }
[ -f "$DATA" ] || { echo "bench_serve: $DATA missing" >&2; exit 1; }
make -s BUILD="$BUILD" "$BUILD/mlopsd" "$BUILD/tests/integration/test_serve" >&2 ||
  exit 1

T=$(mktemp -d /tmp/mlopsd-bench-serve.XXXXXX)
DPID=""
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  tests/mariadb.sh stop "$T/db" >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

envs=$(tests/mariadb.sh start "$T/db") || { echo "bench_serve: MariaDB did not start" >&2; exit 1; }
eval "$envs"
export MLOPSD_DATABASE_NAME=bench_serve
unset MLOPSD_SERVER_LISTEN
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/dags"
cat >"$T/mlopsd.yaml" <<EOF
server:
  listen: "127.0.0.1:$PORT"
  threads: 2
  spool_dir: $T/spool
database:
  name: bench_serve
models:
  specs_dir: $SRC/config/models
  registry_dir: $T/registry
scheduler:
  dags_dir: $T/dags
logging:
  level: warn
EOF

MLOPSD_SRC=$SRC "$BUILD/tests/integration/test_serve" --make-registry "$T/registry" >/dev/null ||
  { echo "bench_serve: could not build the registry" >&2; exit 1; }
MLOPSD_SQL_DIR=$SRC/sql/migrations "$BIN" -c "$T/mlopsd.yaml" db init >/dev/null 2>&1 ||
  { echo "bench_serve: db init failed" >&2; exit 1; }

# Bodies: every line as it is; batches of 64 items.
cp "$DATA" "$T/single.jsonl"
python3 - "$DATA" "$T/batch64.jsonl" <<'EOF'
import json, sys
items = [json.loads(l)["data"] for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as f:
    for i in range(0, len(items) - 63, 64):
        f.write(json.dumps({"data": items[i:i + 64]}) + "\n")
EOF

metric() {  # metric NAME: value of an unlabelled series
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}

start_daemon() {  # start_daemon [--no-native]
  "$BIN" -c "$T/mlopsd.yaml" serve "$@" >>"$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "bench_serve: daemon not ready; log:" >&2; tail -20 "$T/daemon.log" >&2
  exit 1
}

stop_daemon() {
  kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""
}

wait_drained() {
  for _ in $(seq 1 600); do
    [ "$(metric mlopsd_plog_backlog_rows)" = 0 ] &&
      [ "$(metric mlopsd_plog_spool_records)" = 0 ] && return 0
    sleep 0.1
  done
  echo "bench_serve: log not drained after 60 s" >&2
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$DPID/stat"; }
rss_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$DPID/status"; }

ITEMS_OK=0
printf '%-22s %5s %9s %9s %8s %8s %7s %9s %8s %8s %9s\n' \
  run conns req/s items/s p50_ms p99_ms non2xx cpu_us/req rss_MB peak_MB log_rows
run() {  # run NAME CONNS PATH BODIES ITEMS_PER_REQ
  local name=$1 c=$2 path=$3 bodies=$4 per=$5 out w0 w1 t0 t1
  w0=$(metric mlopsd_plog_rows_written_total)
  t0=$(cpu_ticks)
  [ "$bodies" = - ] && bodies=""
  out=$(BODIES=$bodies TARGET=$path wrk -t2 -c"$c" -d"${DUR}s" -s "$LUA" \
    "http://127.0.0.1:$PORT$path" | grep RESULT)
  t1=$(cpu_ticks)
  [ "$per" -gt 0 ] && wait_drained
  w1=$(metric mlopsd_plog_rows_written_total)
  local rps p50 p99 non reqs
  rps=$(echo "$out" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p')
  p50=$(echo "$out" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
  p99=$(echo "$out" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
  reqs=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  non=$(echo "$out" | sed -n 's/.*non2xx=\([0-9]*\).*/\1/p')
  local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v r="$rps" -v d="$DUR" \
    'BEGIN { if (r > 0) printf "%.1f", (b - a) * 10000 / (r * d); else print "-" }')
  if [ "$per" -gt 0 ]; then
    ITEMS_OK=$((ITEMS_OK + (reqs - ${non:-0}) * per))
  fi
  printf '%-22s %5s %9.0f %9.0f %8s %8s %7s %9s %8d %8d %9s\n' "$name" "$c" \
    "${rps:-0}" "$(awk -v r="${rps:-0}" -v p="$per" 'BEGIN{print r * (p ? p : 1)}')" \
    "$p50" "$p99" "${non:-0}" "$cpu" $(( $(rss_kb VmRSS) / 1024 )) \
    $(( $(rss_kb VmHWM) / 1024 )) "$((w1 - w0))"
}

start_daemon
run healthz 16 /healthz - 0
run healthz 64 /healthz - 0
if [ -n "${BENCH_SERVE_PERF:-}" ] && command -v perf >/dev/null; then
  perf record -o "$T/perf.data" -g -p "$DPID" -- sleep "$DUR" >/dev/null 2>&1 &
  PERF=$!
fi
run "predict single" 16 /predict "$T/single.jsonl" 1
if [ -n "${PERF:-}" ]; then
  wait "$PERF"
  echo "--- perf: daemon during predict single/16, top symbols (self) ---"
  perf report -i "$T/perf.data" --no-children --sort dso,symbol -g none 2>/dev/null |
    grep -v '^#' | grep '%' | head -25
fi
run "predict single" 64 /predict "$T/single.jsonl" 1
run "predict batch64" 16 /predict "$T/batch64.jsonl" 64
run "predict batch64" 64 /predict "$T/batch64.jsonl" 64
run healthz 16 /healthz - 0
ITEMS_SRV=$(metric mlopsd_predict_items_total)
stop_daemon
start_daemon --no-native
run "single, xgboost" 16 /predict "$T/single.jsonl" 1
run "single, xgboost" 64 /predict "$T/single.jsonl" 1
ITEMS_SRV=$((ITEMS_SRV + $(metric mlopsd_predict_items_total)))
stop_daemon

rows=$(mariadb --no-defaults -u"$MLOPSD_DATABASE_USER" -p"$MLOPSD_DATABASE_PASSWORD" \
  -h127.0.0.1 -P"$MLOPSD_DATABASE_PORT" -N -e \
  "SELECT COUNT(*), COUNT(DISTINCT log_source, log_seq) FROM bench_serve.credit_predictions_api_log")
echo "log table: rows, distinct (log_source, log_seq) = $rows"
echo "items answered 200: $ITEMS_OK counted by wrk, $ITEMS_SRV by the server (wrk does not count answers in flight when a run ends)"
echo "machine: $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk, daemon and MariaDB share them"
