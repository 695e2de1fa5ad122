#!/bin/bash
# bench_sched.sh - the DAG scheduler's figures, from a real `mlopsd serve`
# against a real MariaDB (started here unless MLOPSD_DATABASE_HOST is set):
#
#  1. dispatch latency: RUNS (200) runs of a 6-task chain of shell `true`
#     tasks, one run at a time (max_active_runs: 1), so every task waits
#     for nothing but the scheduler.  For each of the 5 x RUNS chain edges:
#       claim   = downstream start_date (set when claimed) - upstream
#                 end_date (set when its result was recorded), server clock;
#       exec    = the downstream attempt's first log line (written when its
#                 executor starts on a worker) - upstream end_date;
#     p50 / p90 / p99 / max of each, in ms.
#  2. throughput: the same RUNS runs with max_active_runs 16 and 4 workers:
#     task instances per second, wall clock.
#  3. memory: the daemon's VmRSS with 0 and with 100 DAGs loaded (5 tasks
#     each, every kind of schedule, none due), after the `dag` rows appear.
#
# Prints figures, never judges them.  BENCH_SCHED_RUNS overrides RUNS.
#   bench/run.sh build bench_sched      (or: bash bench/bench_sched.sh)
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
RUNS=${BENCH_SCHED_RUNS:-200}
cd "$SRC" || exit 1
. bench/lib.sh
PIDS=()
bench_stop() { bench_kill "${PIDS[@]+"${PIDS[@]}"}"; }

if [ ! -x "$BIN" ]; then
  echo "bench_sched: $BIN not built (make)" >&2
  exit 1
fi
bench_tmp mlopsd-bench-sched
TMP=$T
bench_db_start_unless_host bench_sched
export MLOPSD_DATABASE_NAME=bench_sched MLOPSD_SQL_DIR=$SRC/sql/migrations
SQL() { bench_sql -N -B bench_sched -e "$1"; }
bench_sql -e "DROP DATABASE IF EXISTS bench_sched" || exit 1

config() {  # config FILE DAGS_DIR WORKERS
  cat >"$1" <<EOF
server: {listen: "127.0.0.1:0", spool_dir: $TMP/spool-$RANDOM}
models: {specs_dir: $TMP/none, registry_dir: $TMP/registry}
database: {name: bench_sched, pool: 4}
scheduler: {dags_dir: $2, tick_ms: 200, lease_s: 30, workers: $3}
logging: {level: warn}
EOF
}
start_daemon() {  # start_daemon CFG LOG -> $DPID
  "$BIN" -c "$1" serve >"$2" 2>&1 &
  DPID=$!
  PIDS+=("$DPID")
}
stop_daemon() {
  kill -TERM "$DPID"
  wait "$DPID"
}
wait_done() {  # wait_done DAG_ID N
  local t0=$SECONDS
  while [ "$(SQL "SELECT COUNT(*) FROM dag_run WHERE dag_id = '$1' AND state IN ('success','failed')")" -lt "$2" ]; do
    if [ $((SECONDS - t0)) -gt 900 ]; then
      echo "bench_sched: runs of $1 did not finish" >&2
      exit 1
    fi
    sleep 0.2
  done
}
trigger_runs() {  # trigger_runs DAG_ID N: queued manual runs, one per day
  local vals="" i
  for ((i = 0; i < $2; i++)); do
    vals+="${vals:+,}('$1__manual__$i', '$1', DATE_ADD('2020-01-01', INTERVAL $i DAY), 'manual', 'queued', UTC_TIMESTAMP(6), 1)"
  done
  SQL "INSERT INTO dag_run (run_id, dag_id, logical_date, run_type, state, queued_at, external_trigger) VALUES $vals"
}
chain_dag() {  # chain_dag FILE DAG_ID MAX_ACTIVE
  {
    echo "dag_id: $2"
    echo "schedule: null"
    echo "max_active_runs: $3"
    echo "tasks:"
    echo "  - {id: t1, type: shell, command: \"true\"}"
    for k in 2 3 4 5 6; do
      echo "  - {id: t$k, type: shell, command: \"true\", depends_on: [t$((k - 1))]}"
    done
  } >"$1"
}
pct() {  # pct: numbers on stdin (ms) -> "p50 p90 p99 max n"
  sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print "no samples"; exit }
    p50 = v[int(NR * 0.50 + 0.5) > 0 ? int(NR * 0.50 + 0.5) : 1]
    p90 = v[int(NR * 0.90 + 0.5)]; p99 = v[int(NR * 0.99 + 0.5)]
    printf "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms  (n=%d)\n", p50, p90, p99, v[NR], NR }'
}

config "$TMP/c0.yaml" "$TMP" 2
"$BIN" -c "$TMP/c0.yaml" db init >"$TMP/init.log" 2>&1 || {
  cat "$TMP/init.log" >&2
  exit 1
}

# chain_runs K DAG_ID MAX_ACTIVE WORKERS: RUNS queued runs of a 6-task chain
# DAG_ID (at most MAX_ACTIVE at a time) run to the end by a daemon with
# WORKERS workers (files $TMP/dagsK, cK.yaml, dK.log); t0, t1 = its start
# and the moment the last run ended.
chain_runs() {
  mkdir -p "$TMP/dags$1"
  chain_dag "$TMP/dags$1/chain.yaml" "$2" "$3"
  config "$TMP/c$1.yaml" "$TMP/dags$1" "$4"
  trigger_runs "$2" "$RUNS"
  t0=$(date +%s.%N)
  start_daemon "$TMP/c$1.yaml" "$TMP/d$1.log"
  wait_done "$2" "$RUNS"
  t1=$(date +%s.%N)
  stop_daemon
}

# ---- 1. dispatch latency ---------------------------------------------------
chain_runs 1 bench_chain 1 2
echo "chain: $RUNS runs x 6 tasks, one run at a time, 2 workers:" \
  "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f s", b - a}')," \
  "$(SQL "SELECT COUNT(*) FROM task_instance WHERE dag_id = 'bench_chain' AND state = 'success'") task instances succeeded"
EDGES="FROM task_instance u JOIN task_instance d ON d.run_id = u.run_id AND
  d.task_id = CONCAT('t', SUBSTRING(u.task_id, 2) + 1)
  WHERE u.dag_id = 'bench_chain' AND u.task_id <> 't6'"
echo -n "dispatch, upstream end -> downstream claimed: "
SQL "SELECT TIMESTAMPDIFF(MICROSECOND, u.end_date, d.start_date) / 1000 $EDGES" | pct
echo -n "dispatch, upstream end -> downstream executing: "
SQL "SELECT TIMESTAMPDIFF(MICROSECOND, u.end_date,
       (SELECT MIN(l.ts) FROM task_log l WHERE l.run_id = d.run_id AND
        l.task_id = d.task_id AND l.try_number = 1)) / 1000 $EDGES" | pct
echo -n "run to run (previous run end -> next run's t1 claimed): "
SQL "SELECT TIMESTAMPDIFF(MICROSECOND, p.end_date, t.start_date) / 1000
     FROM dag_run r JOIN dag_run p ON p.dag_id = r.dag_id AND
       p.logical_date = DATE_SUB(r.logical_date, INTERVAL 1 DAY)
     JOIN task_instance t ON t.run_id = r.run_id AND t.task_id = 't1'
     WHERE r.dag_id = 'bench_chain'" | pct

# ---- 2. throughput -----------------------------------------------------------
chain_runs 2 bench_wide 16 4
n=$(SQL "SELECT COUNT(*) FROM task_instance WHERE dag_id = 'bench_wide' AND state = 'success'")
awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN{printf "throughput: %d task instances in %.1f s = %.0f/s (max_active_runs 16, 4 workers, shell tasks)\n", n, b - a, n / (b - a)}'

# ---- 3. memory with 100 DAGs ---------------------------------------------------
rss_with() {  # rss_with DAGS_DIR N -> prints VmRSS kB once N dag rows exist
  config "$TMP/c3.yaml" "$1" 2
  SQL "DELETE FROM dag WHERE dag_id LIKE 'bench_many_%'"
  start_daemon "$TMP/c3.yaml" "$TMP/d3.log"
  local t0=$SECONDS
  while [ "$(SQL "SELECT COUNT(*) FROM dag WHERE dag_id LIKE 'bench_many_%'")" -lt "$2" ]; do
    [ $((SECONDS - t0)) -gt 60 ] && break
    sleep 0.2
  done
  sleep 3 # a rescan or two after loading
  awk '/VmRSS/ {print $2}' "/proc/$DPID/status"
  stop_daemon
}
mkdir -p "$TMP/dags0" "$TMP/dags100"
SCHEDS=('"0 3 * * *"' '"*/15 * * * MON-FRI"' '"@hourly"' '"@daily"' 'null')
for ((i = 0; i < 100; i++)); do
  cat >"$TMP/dags100/d$i.yaml" <<EOF
dag_id: bench_many_$i
description: DAG $i of the memory benchmark
schedule: ${SCHEDS[$((i % 5))]}
start_date: 2099-01-01
catchup: false
params: {table: credit_score, days: 7}
default_args: {retries: 2, retry_delay: 5m, timeout: 1h}
tasks:
  - {id: extract, type: sql, sql: "SELECT COUNT(*) FROM {{ params.table }} WHERE date >= '{{ ds_add(-7) }}'"}
  - {id: a, type: shell, command: "echo {{ ds }} {{ run_id }}", depends_on: [extract]}
  - {id: b, type: shell, command: "echo b", depends_on: [extract]}
  - {id: c, type: http, url: "http://127.0.0.1:9/{{ ds }}", depends_on: [a, b], trigger_rule: all_done}
  - {id: d, type: shell, command: "true", depends_on: [c]}
EOF
done
r0=$(rss_with "$TMP/dags0" 0)
r100=$(rss_with "$TMP/dags100" 100)
echo "daemon VmRSS: $r0 kB with 0 DAGs, $r100 kB with 100 DAGs" \
  "($((r100 - r0)) kB for 100 DAGs of 5 tasks)"
