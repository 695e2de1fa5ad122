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
#   POST /predict single, explain       the same bodies with "explain": true
#                                       (reason codes: XGBoost's TreeSHAP)
#
# First (run "startup") it starts the daemon 10 times and reports the time
# from the start to the first 200 from /readyz and the idle RSS.
#
# at 16 and 64 connections (wrk -t2), SECONDS each (default 10).  Between
# runs it waits until the log has stored everything, so a run never pays
# for the previous one.  Reports per run: requests/s, items/s, p50, p99
# and p99.9 (wrk), non-2xx, the daemon's and wrk's CPU per request, the
# daemon's RSS (current and peak), log rows written, MariaDB's CPU per row stored, how
# long the log took after the run to store what was still pending
# (drain_s), the sustained rate that makes (rows / (SECONDS + drain_s):
# what the database really kept up with), the time request threads were
# slowed down by the log's pacing (pace_ms, both threads together) and
# the requests that waited for room in a full log (waits), the share of
# 2xx answers the server itself took over 5 ms for (srv>5ms%: the rest of
# wrk's tail is outside the handler) and the load average at the end of
# the run.  At the end it checks that the table holds one row per item
# the server answered 200 (less those its full-log policy counted as
# unlogged) and exits 1 when not: a lost or doubled row is a defect, not a
# figure.  The timing figures never pass or fail.  A closing summary gives
# predict single's share of /healthz at 16 and 64 connections (same run),
# its p99, the CPU per logged row (daemon and MariaDB) and the RSS after
# the sustained run (60 s of predict single/16).
#
#   bench/bench_serve.sh [SECONDS]
#   BENCH_SERVE_PERF=1 bench/bench_serve.sh   also perf-profile the daemon
#                                             during single/16 (top symbols;
#                                             =db: MariaDB instead; =sched:
#                                             the machine's scheduler for
#                                             3 s, bench/sched_waits.py:
#                                             waits for a core >= 1/2/4 ms
#                                             of the HTTP threads, wrk and
#                                             MariaDB, and behind whom;
#                                             BENCH_SERVE_PERF_KEEP=FILE
#                                             keeps perf.data)
#   BENCH_SERVE_RUNS="healthz16 single16"     only these runs (default all:
#       startup healthz16 healthz64 single16 single64 batch16 batch64
#       healthz16b sustained16 explain16 xgb16 xgb64; explain vs plain
#       predict alone: BENCH_SERVE_RUNS="single16 explain16")
#   BENCH_SERVE_SUSTAIN=S                     seconds of the sustained run
#                                             (default 60: predict single/16
#                                             on the daemon after all runs
#                                             above; its RSS at the end)
#   BENCH_SERVE_ROUNDS=N                      repeat the runs on the first
#       daemon (healthz16 healthz64 single16 single64 batch16 batch64
#       healthz16b, those chosen) N times in turn, on the same daemon and
#       MariaDB (default 1): issue 16's "alternating runs, medians" in one
#       command.  Each round's lines follow a "--- round I of N ---" line;
#       the summary then gives per round predict single's req/s, share of
#       /healthz (same round; and /healthz's own p99: a high one says the
#       tail was the machine's load), p50/p99, pace_ms, srv>5ms% and load, and
#       the medians over the rounds (of the req/s, of the per-round
#       shares, of the latencies and of the CPU per request and row).
#       startup, sustained16, explain16 and the xgb runs still run once
#       (after the rounds).  BENCH_SERVE_PERF profiles round 1 only.
#   BENCH_SERVE_STARTS=N                      restarts of the startup run
#                                             (default 10)
#   BENCH_SERVE_FIGURES=FILE                  also append one key=value line
#                                             per run to FILE (bench/report.sh)
#   BENCH_SERVE_THREADS=N                     server.threads (default 2)
#   BENCH_SERVE_SHADOW=1                      models.shadow on, the other
#                                             version aliased staging: every
#                                             answer also predicted by the
#                                             shadow and logged beside
#                                             (docs/serving.md)
#   BENCH_SERVE_AFTER='CMD'                   run CMD after each run, with
#                                             DPID (the daemon) and RUN_NAME
#                                             set (e.g. save its smaps)
#   BENCH_SERVE_CPUS=LIST BENCH_SERVE_DB_CPUS=LIST
#       CPU placement (taskset lists, e.g. 0 and 1): the daemon and wrk run
#       on BENCH_SERVE_CPUS, every thread of MariaDB on BENCH_SERVE_DB_CPUS.
#       With disjoint lists this models a deployment whose database has
#       its own host, as in production: /healthz's ceiling and the logged
#       predict then share only the serving CPUs, and MariaDB's work no
#       longer takes turns with the requests (docs/performance.md, "Issue 16,
#       fifth round: the database off the serving cores").  Default: no
#       placement, all three share every CPU.
#
# Environment: BUILD (default build), MLOPSD_SRC, MLOPSD_BIN (set by
# bench/run.sh).  Needs wrk (scripts/install-deps.sh) and python3.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-build}
BIN=${MLOPSD_BIN:-$SRC/$BUILD/mlopsd}
DUR=${1:-${BENCH_SERVE_SECONDS:-10}}
# the course data: MLOPSD_DATA, else shared/ beside the clone (tests/run.sh
# exports MLOPSD_SHARED; tests/shared_dir.sh finds it)
MLOPSD_SHARED=${MLOPSD_SHARED:-$("$SRC/tests/shared_dir.sh")}
export MLOPSD_SHARED   # test_serve --make-registry reads the course data too
DATA=${MLOPSD_DATA:-$MLOPSD_SHARED/data/credit/predict_requests.jsonl}
LUA=$SRC/bench/bench_serve.lua
cd "$SRC" || exit 1

command -v wrk >/dev/null || { echo "bench_serve: wrk not installed" >&2; exit 1; }
[ -f "$DATA" ] || { echo "bench_serve: $DATA missing" >&2; exit 1; }
make -s BUILD="$BUILD" "$BUILD/mlopsd" "$BUILD/tests/integration/test_serve" >&2 ||
  exit 1

. bench/lib.sh
DPID=""
# taskset prefix of the daemon and wrk (BENCH_SERVE_CPUS), empty: none
PIN=""
if [ -n "${BENCH_SERVE_CPUS:-}" ]; then
  taskset -c "$BENCH_SERVE_CPUS" true ||
    { echo "bench_serve: BENCH_SERVE_CPUS='$BENCH_SERVE_CPUS' is not a CPU list taskset takes" >&2; exit 2; }
  PIN="taskset -c $BENCH_SERVE_CPUS"
fi
bench_stop() { bench_kill "$DPID"; }
bench_serve_start bench_serve mlopsd-bench-serve
cat >"$T/mlopsd.yaml" <<EOF
server:
  listen: "127.0.0.1:$PORT"
  threads: ${BENCH_SERVE_THREADS:-2}
  spool_dir: $T/spool
database:
  name: bench_serve
models:
  specs_dir: $SRC/config/models
  registry_dir: $T/registry
  shadow: $([ "${BENCH_SERVE_SHADOW:-0}" = 1 ] && echo true || echo false)
scheduler:
  dags_dir: $T/dags
logging:
  level: warn
EOF

bench_serve_registry bench_serve
if [ "${BENCH_SERVE_SHADOW:-0}" = 1 ]; then
  # the shadow: the version production does not point at
  m=$T/registry/credit_score_classification
  prod=$(tr -d ' \n' <"$m/aliases/production")
  other=$(ls "$m/versions" | grep -vx "$prod" | head -1)
  [ -n "$other" ] || { echo "bench_serve: no second version for the shadow" >&2; exit 1; }
  printf '%s\n' "$other" >"$m/aliases/staging"
  echo "bench_serve: shadow on: production $prod, staging $other" >&2
fi
bench_serve_db_init bench_serve

# Bodies: every line as it is; batches of 64 items.
cp "$DATA" "$T/single.jsonl"
python3 - "$DATA" "$T/batch64.jsonl" <<'EOF'
import json, sys
items = [json.loads(l)["data"] for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as f:
    for i in range(0, len(items) - 63, 64):
        f.write(json.dumps({"data": items[i:i + 64]}) + "\n")
EOF
# the same single bodies asking for reason codes
python3 - "$DATA" "$T/explain.jsonl" <<'EOF'
import json, sys
with open(sys.argv[2], "w") as f:
    for l in open(sys.argv[1]):
        if l.strip():
            f.write(json.dumps(dict(json.loads(l), explain=True)) + "\n")
EOF

metric() {  # metric NAME: value of an unlabelled series (0 if absent)
  curl -s "http://127.0.0.1:$PORT/metrics" |
    awk -v n="$1" '$1 == n {v = $2} END {print v + 0}'
}

# slow5 ROUTE: "requests over 5 ms, requests" answered 2xx on ROUTE, as the
# server measured them (headers in -> answer handed to the kernel)
slow5() {
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v r="route=\"$1\"" '
    index($1, "mlopsd_http_request_duration_seconds_bucket{") == 1 && index($1, r) &&
      index($1, "status_class=\"2xx\"") {
      if (index($1, "le=\"0.005\"")) le5 = $2
      if (index($1, "le=\"+Inf\"")) all = $2
    }
    END { print all - le5 + 0, all + 0 }'
}

start_daemon() {  # start_daemon [--no-native]
  $PIN "$BIN" -c "$T/mlopsd.yaml" serve "$@" >>"$T/daemon.log" 2>&1 &
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
DBPID=$(cat "$T/db/mysqld.pid" 2>/dev/null)
# CPU placement: threads MariaDB creates later inherit the affinity of
# the thread that creates them, so setting every thread's once suffices
if [ -n "${BENCH_SERVE_DB_CPUS:-}" ]; then
  taskset -a -p -c "$BENCH_SERVE_DB_CPUS" "$DBPID" >/dev/null ||
    { echo "bench_serve: taskset -c '$BENCH_SERVE_DB_CPUS' of MariaDB failed" >&2; exit 1; }
fi
echo "placement: daemon and wrk on CPUs ${BENCH_SERVE_CPUS:-all}, MariaDB on CPUs ${BENCH_SERVE_DB_CPUS:-all}"
db_ticks() { awk '{print $14 + $15}' "/proc/$DBPID/stat" 2>/dev/null || echo 0; }
RUNS=" ${BENCH_SERVE_RUNS:-startup healthz16 healthz64 single16 single64 batch16 batch64 healthz16b sustained16 explain16 xgb16 xgb64} "
want() { case "$RUNS" in *" $1 "*) return 0 ;; esac; return 1; }
rss_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$DPID/status"; }

ITEMS_OK=0
declare -A SUM_RPS SUM_US SUM_DB SUM_RSS SUM_PEAK SUM_P99 SUM_LOAD
# per round (key "ROUND|name conns"): the figures the rounds' summary needs
ROUNDS=${BENCH_SERVE_ROUNDS:-1}
case "$ROUNDS" in ''|*[!0-9]*|0)
  echo "bench_serve: BENCH_SERVE_ROUNDS=$ROUNDS: expected a whole number >= 1" >&2
  exit 1 ;;
esac
ROUND=1
declare -A R_RPS R_P50 R_P99 R_US R_DB R_PACE R_SLOW R_LOAD
printf '%-16s %5s %7s %7s %7s %7s %8s %6s %6s %6s %6s %6s %8s %6s %6s %8s %7s %6s %6s %5s\n' \
  run conns req/s items/s p50_ms p99_ms p99.9_ms non2xx us/req wrk_us rss_MB peak_MB \
  log_rows db_us/row drain_s sustained pace_ms waits 'srv>5ms%' load
run() {  # run NAME CONNS PATH BODIES ITEMS_PER_REQ
  local name=$1 c=$2 path=$3 bodies=$4 per=$5 out w0 w1 t0 t1
  w0=$(metric mlopsd_plog_rows_written_total)
  local pa0 fw0 sl0
  pa0=$(metric mlopsd_plog_pace_seconds_total)
  fw0=$(metric mlopsd_plog_full_waits_total)
  sl0=$(slow5 "$path")
  t0=$(cpu_ticks)
  local d0 d1 e0 e1 drain
  d0=$(db_ticks)
  [ "$bodies" = - ] && bodies=""
  out=$(BODIES=$bodies TARGET=$path /usr/bin/time -f "%U %S" -o "$T/wrk.time" \
    $PIN wrk -t2 -c"$c" -d"${DUR}s" -s "$LUA" "http://127.0.0.1:$PORT$path" |
    grep RESULT)
  t1=$(cpu_ticks)
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  local pace fw sl
  pace=$(awk -v a="$pa0" -v b="$(metric mlopsd_plog_pace_seconds_total)" \
    'BEGIN { printf "%.0f", (b - a) * 1000 }')
  fw=$(( $(metric mlopsd_plog_full_waits_total) - fw0 ))
  sl=$(slow5 "$path" | awk -v a="$sl0" '{ split(a, x, " ");
    n = $2 - x[2]; printf "%.2f", (n > 0 ? 100 * ($1 - x[1]) / n : 0) }')
  e0=$(date +%s.%N)
  [ "$per" -gt 0 ] && wait_drained
  e1=$(date +%s.%N)
  d1=$(db_ticks)
  drain=$(awk -v a="$e0" -v b="$e1" 'BEGIN { printf "%.1f", b - a }')
  w1=$(metric mlopsd_plog_rows_written_total)
  local rps p50 p99 p999 non reqs
  rps=$(echo "$out" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p')
  p50=$(echo "$out" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
  p99=$(echo "$out" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
  p999=$(echo "$out" | sed -n 's/.*p999_ms=\([0-9.]*\).*/\1/p')
  reqs=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  non=$(echo "$out" | sed -n 's/.*non2xx=\([0-9]*\).*/\1/p')
  local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v r="$rps" -v d="$DUR" \
    'BEGIN { if (r > 0) printf "%.1f", (b - a) * 10000 / (r * d); else print "-" }')
  if [ "$per" -gt 0 ]; then
    ITEMS_OK=$((ITEMS_OK + (reqs - ${non:-0}) * per))
  fi
  local wus; wus=$(awk -v r="${rps:-0}" -v d="$DUR" \
    '{ if (r > 0) printf "%.1f", ($1 + $2) * 1e6 / (r * d); else print "-" }' \
    "$T/wrk.time" 2>/dev/null)
  local dbus="-" sus="-"
  if [ "$per" -gt 0 ] && [ "$((w1 - w0))" -gt 0 ]; then
    dbus=$(awk -v a="$d0" -v b="$d1" -v n="$((w1 - w0))" \
      'BEGIN { printf "%.1f", (b - a) * 10000 / n }')
    sus=$(awk -v n="$((w1 - w0))" -v d="$DUR" -v x="$drain" \
      'BEGIN { printf "%.0f", n / (d + x) }')
  fi
  printf '%-16s %5s %7.0f %7.0f %7s %7s %8s %6s %6s %6s %6d %6d %8s %6s %6s %8s %7s %6s %6s %5s\n' \
    "$name" "$c" "${rps:-0}" \
    "$(awk -v r="${rps:-0}" -v p="$per" 'BEGIN{print r * (p ? p : 1)}')" \
    "$p50" "$p99" "$p999" "${non:-0}" "$cpu" "${wus:--}" $(( $(rss_kb VmRSS) / 1024 )) \
    $(( $(rss_kb VmHWM) / 1024 )) "$((w1 - w0))" "$dbus" \
    "$([ "$per" -gt 0 ] && echo "$drain" || echo -)" "$sus" "$pace" "$fw" \
    "$sl" "$load"
  # for the closing summary
  # (the first run of a name counts: healthz16b repeats healthz16 later)
  if [ -z "${SUM_RPS[$name$c]:-}" ] || [ "$name" != healthz ]; then
    SUM_RPS[$name$c]=${rps:-0}; SUM_US[$name$c]=$cpu; SUM_DB[$name$c]=$dbus
    SUM_RSS[$name$c]=$(( $(rss_kb VmRSS) / 1024 )); SUM_PEAK[$name$c]=$(( $(rss_kb VmHWM) / 1024 ))
    SUM_P99[$name$c]=$p99; SUM_LOAD[$name$c]=$load
  fi
  if [ -z "${R_RPS[$ROUND|$name$c]:-}" ] || [ "$name" != healthz ]; then
    local rk="$ROUND|$name$c"
    R_RPS[$rk]=${rps:-0}; R_P50[$rk]=$p50; R_P99[$rk]=$p99; R_US[$rk]=$cpu
    R_DB[$rk]=$dbus; R_PACE[$rk]=$pace; R_SLOW[$rk]=$sl; R_LOAD[$rk]=$load
  fi
  # a look inside the daemon after the run (e.g. copy /proc/$DPID/smaps)
  [ -n "${BENCH_SERVE_AFTER:-}" ] && RUN_NAME="$name$c" DPID=$DPID \
    bash -c "$BENCH_SERVE_AFTER" >&2
  # the same figures for bench/report.sh, one "key=value" line per run
  local key
  case "$name" in "predict single") key=single ;; "predict batch64") key=batch ;;
    "single, xgboost") key=xgb ;; *) key=$name ;; esac
  echo "run=$key$c rps=${rps:-0} items_s=$(awk -v r="${rps:-0}" -v p="$per" \
    'BEGIN{printf "%.0f", r * (p ? p : 1)}') p50_ms=$p50 p99_ms=$p99 p999_ms=$p999 \
non2xx=${non:-0} rss_mb=$(( $(rss_kb VmRSS) / 1024 )) \
peak_mb=$(( $(rss_kb VmHWM) / 1024 )) load=$load\
$([ "$ROUNDS" -gt 1 ] && echo " round=$ROUND")" >>"$FIGURES"
}

# startup N: start the daemon N times; seconds from the start to the first
# 200 from /readyz (model loaded, MariaDB connected), polled every 5 ms,
# and the RSS one second after that (idle, model loaded)
startup() {
  local i t0 t1 s rss ok
  for i in $(seq 1 "$1"); do
    t0=$(date +%s.%N)
    $PIN "$BIN" -c "$T/mlopsd.yaml" serve >>"$T/daemon.log" 2>&1 &
    DPID=$!
    ok=0
    for _ in $(seq 1 2000); do
      curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && { ok=1; break; }
      sleep 0.005
    done
    t1=$(date +%s.%N)
    [ "$ok" = 1 ] || { echo "bench_serve: daemon not ready" >&2; exit 1; }
    sleep 1
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rss=$(( $(rss_kb VmRSS) / 1024 ))
    echo "start=$i ready_s=$s idle_rss_mb=$rss" >>"$FIGURES"
    echo "$s $rss" >>"$T/startup"
    stop_daemon
  done
  sort -n "$T/startup" | awk '{ s[NR] = $1; r[NR] = $2 }
    END { printf "startup: %d starts, start -> /readyz 200: min %.3f s, median %.3f s, max %.3f s; idle RSS %d-%d MB\n",
          NR, s[1], s[int((NR + 1) / 2)], s[NR], r[1], r[NR] }'
}

FIGURES=${BENCH_SERVE_FIGURES:-/dev/null}
want startup && startup "${BENCH_SERVE_STARTS:-10}"
start_daemon
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
[ "$ROUNDS" -gt 1 ] && echo "--- round $ROUND of $ROUNDS ---"
want healthz16 && run healthz 16 /healthz - 0
want healthz64 && run healthz 64 /healthz - 0
PERF=""
if [ "$ROUND" = 1 ] && want single16 && [ -n "${BENCH_SERVE_PERF:-}" ] &&
  command -v perf >/dev/null; then
  PERF_PID=$DPID PERF_WHO=daemon
  [ "$BENCH_SERVE_PERF" = db ] && PERF_PID=$DBPID PERF_WHO=MariaDB
  if [ "$BENCH_SERVE_PERF" = sched ]; then
    # the whole machine's scheduler for 3 s, 2 s into the run
    ( sleep 2; perf sched record -a -o "$T/sched.data" -- sleep 3 ) >/dev/null 2>&1 &
  else
    perf record -o "$T/perf.data" ${BENCH_SERVE_PERF_CG:--g} -p "$PERF_PID" -- sleep "$DUR" >/dev/null 2>&1 &
  fi
  PERF=$!
fi
want single16 && run "predict single" 16 /predict "$T/single.jsonl" 1
if [ -n "${PERF:-}" ] && [ "$BENCH_SERVE_PERF" = sched ]; then
  wait "$PERF"
  echo "--- perf sched: waits for a core during predict single/16 ---"
  perf sched timehist -i "$T/sched.data" 2>/dev/null | python3 "$SRC/bench/sched_waits.py"
  [ -n "${BENCH_SERVE_PERF_KEEP:-}" ] && cp "$T/sched.data" "$BENCH_SERVE_PERF_KEEP"
elif [ -n "${PERF:-}" ]; then
  wait "$PERF"
  echo "--- perf: $PERF_WHO during predict single/16, top symbols (self) ---"
  perf report -i "$T/perf.data" --no-children --sort dso,symbol -g none 2>/dev/null |
    grep -v '^#' | grep '%' | head -${BENCH_SERVE_PERF_TOP:-25}
  [ -n "${BENCH_SERVE_PERF_KEEP:-}" ] && cp "$T/perf.data" "$BENCH_SERVE_PERF_KEEP"
fi
want single64 && run "predict single" 64 /predict "$T/single.jsonl" 1
want batch16 && run "predict batch64" 16 /predict "$T/batch64.jsonl" 64
want batch64 && run "predict batch64" 64 /predict "$T/batch64.jsonl" 64
want healthz16b && run healthz 16 /healthz - 0
done
ROUND=$ROUNDS
# sustained: predict single/16 for BENCH_SERVE_SUSTAIN seconds (default 60)
# on the daemon that ran everything above: its RSS at the end is the
# figure "RSS after 60 s of sustained load" (issue 16: below 40 MB)
if want sustained16; then
  DUR_RUNS=$DUR; DUR=${BENCH_SERVE_SUSTAIN:-60}
  run sustained 16 /predict "$T/single.jsonl" 1
  DUR=$DUR_RUNS
fi
want explain16 && run "predict single, explain" 16 /predict "$T/explain.jsonl" 1
ITEMS_SRV=$(metric mlopsd_predict_items_total)
UNLOGGED=$(metric mlopsd_plog_rows_unlogged_total)
stop_daemon
if want xgb16 || want xgb64; then
  start_daemon --no-native
  want xgb16 && run "single, xgboost" 16 /predict "$T/single.jsonl" 1
  want xgb64 && run "single, xgboost" 64 /predict "$T/single.jsonl" 1
  ITEMS_SRV=$((ITEMS_SRV + $(metric mlopsd_predict_items_total)))
  UNLOGGED=$((UNLOGGED + $(metric mlopsd_plog_rows_unlogged_total)))
  stop_daemon
fi

# Every item the server answered 200 is one row of the log (the daemons
# were stopped gracefully, so nothing is pending), less the rows the
# log_full_policy left out and counted.  A lost or doubled row shows here.
rows=$(mariadb --no-defaults -u"$MLOPSD_DATABASE_USER" -p"$MLOPSD_DATABASE_PASSWORD" \
  -h127.0.0.1 -P"$MLOPSD_DATABASE_PORT" -N -e \
  "SELECT COUNT(*) FROM bench_serve.credit_predictions_api_log")
echo "items answered 200: $ITEMS_OK counted by wrk, $ITEMS_SRV by the server (wrk does not count answers in flight when a run ends)"
log_ok=1
if [ "${rows:-x}" = "$((ITEMS_SRV - UNLOGGED))" ]; then
  echo "log table: $rows rows = $ITEMS_SRV items answered 200 - $UNLOGGED unlogged by the full-log policy: every answer stored once"
else
  echo "log table: ${rows:-?} rows, but $ITEMS_SRV items answered 200 - $UNLOGGED unlogged = $((ITEMS_SRV - UNLOGGED)): rows LOST or DOUBLED" >&2
  log_ok=0
fi
# The closing summary: the figures issue 16 asks for, from this run
ratio() {  # ratio A B: A/B in percent, or "-"
  awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'
}
echo "--- summary ---"
for c in 16 64; do
  # with rounds, the rounds' lines below give these per round
  [ "$ROUNDS" = 1 ] && [ -n "${SUM_RPS[predict single$c]:-}" ] || continue
  echo "predict single/$c: ${SUM_RPS[predict single$c]} req/s = $(ratio "${SUM_RPS[predict single$c]}" "${SUM_RPS[healthz$c]:-0}") of /healthz/$c (${SUM_RPS[healthz$c]:--} req/s, same run); p99 ${SUM_P99[predict single$c]} ms at load ${SUM_LOAD[predict single$c]}; CPU per logged row: daemon ${SUM_US[predict single$c]} us, MariaDB ${SUM_DB[predict single$c]} us"
done
[ -n "${SUM_RPS[predict single, explain16]:-}" ] &&
  echo "predict single/16 with explain: ${SUM_RPS[predict single, explain16]} req/s = $(ratio "${SUM_RPS[predict single, explain16]}" "${SUM_RPS[predict single16]:-0}") of predict single/16 without (${SUM_RPS[predict single16]:--} req/s); p99 ${SUM_P99[predict single, explain16]} ms (without: ${SUM_P99[predict single16]:--} ms) at load ${SUM_LOAD[predict single, explain16]}"
[ -n "${SUM_RSS[sustained16]:-}" ] &&
  echo "RSS after ${BENCH_SERVE_SUSTAIN:-60} s of sustained predict single/16: ${SUM_RSS[sustained16]} MB (peak ${SUM_PEAK[sustained16]} MB); CPU per logged row: daemon ${SUM_US[sustained16]} us, MariaDB ${SUM_DB[sustained16]} us; ${SUM_RPS[sustained16]} req/s at load ${SUM_LOAD[sustained16]}"
# BENCH_SERVE_ROUNDS: each round's figures, then their medians
med() {  # med V...: the median of the numeric arguments ("-" if none)
  printf '%s\n' "$@" | awk '$1 + 0 == $1 && $1 != "" { v[n++] = $1 + 0 }
    END { if (!n) { print "-"; exit }
      for (i = 1; i < n; i++) for (j = i; j > 0 && v[j-1] > v[j]; j--) {
        t = v[j]; v[j] = v[j-1]; v[j-1] = t }
      m = n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2
      printf (m > 100 ? "%.0f\n" : "%.2f\n"), m }'
}
pct() {  # pct A B: A/B in percent, a bare number ("" if either is missing)
  awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", 100 * a / b }'
}
if [ "$ROUNDS" -gt 1 ]; then
  echo "--- $ROUNDS rounds on one daemon ---"
  for c in 16 64; do
    k="predict single$c"
    [ -n "${R_RPS[1|$k]:-}" ] || continue
    shares=() rpss=() p50s=() p99s=() uss=() dbs=() paces=() slows=() loads=() hzs=() hzp=()
    for ((r = 1; r <= ROUNDS; r++)); do
      sh=$(pct "${R_RPS[$r|$k]:-}" "${R_RPS[$r|healthz$c]:-}")
      echo "round $r: predict single/$c ${R_RPS[$r|$k]:-} req/s = ${sh:--}% of /healthz/$c (${R_RPS[$r|healthz$c]:--} req/s, p99 ${R_P99[$r|healthz$c]:--} ms); p50 ${R_P50[$r|$k]:-} ms, p99 ${R_P99[$r|$k]:-} ms; daemon ${R_US[$r|$k]:-} us, MariaDB ${R_DB[$r|$k]:-} us per row; pace_ms ${R_PACE[$r|$k]:-}, srv>5ms% ${R_SLOW[$r|$k]:-}; load ${R_LOAD[$r|$k]:-}"
      shares+=("$sh"); rpss+=("${R_RPS[$r|$k]:-}"); p50s+=("${R_P50[$r|$k]:-}")
      p99s+=("${R_P99[$r|$k]:-}"); uss+=("${R_US[$r|$k]:-}"); dbs+=("${R_DB[$r|$k]:-}")
      paces+=("${R_PACE[$r|$k]:-}"); slows+=("${R_SLOW[$r|$k]:-}")
      loads+=("${R_LOAD[$r|$k]:-}"); hzs+=("${R_RPS[$r|healthz$c]:-}")
      hzp+=("${R_P99[$r|healthz$c]:-}")
    done
    echo "medians over $ROUNDS rounds, predict single/$c: $(med "${rpss[@]}") req/s, $(med "${shares[@]}")% of /healthz/$c ($(med "${hzs[@]}") req/s, p99 $(med "${hzp[@]}") ms); p50 $(med "${p50s[@]}") ms, p99 $(med "${p99s[@]}") ms; daemon $(med "${uss[@]}") us, MariaDB $(med "${dbs[@]}") us per row; pace_ms $(med "${paces[@]}"), srv>5ms% $(med "${slows[@]}"); load $(med "${loads[@]}")"
  done
  for k in "predict batch6416" "predict batch6464"; do
    [ -n "${R_RPS[1|$k]:-}" ] || continue
    rpss=() p99s=()
    for ((r = 1; r <= ROUNDS; r++)); do
      rpss+=("${R_RPS[$r|$k]:-}"); p99s+=("${R_P99[$r|$k]:-}")
    done
    echo "medians over $ROUNDS rounds, ${k% *} batch of 64/${k##*batch64}: $(med "${rpss[@]}") req/s (x64 items), p99 $(med "${p99s[@]}") ms"
  done
fi
echo "machine: $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk, daemon and MariaDB share them"
[ "$log_ok" = 1 ]
