#!/bin/bash
# bench/bench_shared.sh - wall time of the course grid (27 trials on the
# 2,500 rows of 2025-09-01, the course spec as shipped) run by a DAG's
# `train` task with `shared_trials: true` on one scheduler daemon alone
# and on two daemons sharing its trials (docs/scale-out.md), each daemon
# training one trial at a time (models.train_parallel 1, train_threads 1).
#
#   bench/bench_shared.sh [1|2 ...]     default: 1 2 (alternate on a busy
#                                       machine: 1 2 1 2 1 2)
#
# Each run gets a fresh database; the daemons are up before the clock
# starts (the time is `dags trigger --wait` alone).  Prints per run: the
# wall time, the trials each daemon trained (every trial must run exactly
# once: a run where it does not is reported as failed), the best trial
# and the load average; at the end the median of each daemon count and
# its ratio to the first.  Starts its own MariaDB (tests/mariadb.sh)
# unless MLOPSD_DATABASE_HOST is set; never fails on speed.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$SRC" || exit 1
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
MODEL=credit_score_classification
DS=2025-09-01
DB=bench_shared
[ $# -gt 0 ] || set -- 1 2
. bench/lib.sh
pids=()
stop_daemons() {
  bench_kill "${pids[@]}"
  pids=()
}
bench_stop() { stop_daemons; }
bench_tmp bench-shared
bench_db_start_unless_host bench_shared
export MLOPSD_DATABASE_NAME=$DB
sql() { bench_sql -N -B "$@"; }
mkdir -p "$T/dags"
cat >"$T/dags/grid_shared.yaml" <<EOF
dag_id: grid_shared
schedule: null
tasks:
  - {id: train, type: train, model: $MODEL, shared_trials: true}
EOF

echo "binary $BIN, $(nproc) CPUs, course spec (27 trials), 1 trial at a" \
  "time per daemon"
rc=0
n=0
for daemons in "$@"; do
  n=$((n + 1))
  case "$daemons" in 1|2) ;; *)
    echo "bench_shared: argument '$daemons': want 1 or 2 (daemons)"; exit 2 ;;
  esac
  bench_features_db bench_shared "$DB" $DS
  ports=()
  for d in $(seq 1 "$daemons"); do
    dir=$T/run$n/d$d
    port=$(bench_free_port)
    mkdir -p "$dir"
    cat >"$dir/mlopsd.yaml" <<EOF
server:
  listen: "127.0.0.1:$port"
  threads: 2
  spool_dir: $dir/spool
database:
  name: $DB
models:
  specs_dir: $SRC/config/models
  registry_dir: $dir/registry
  train_parallel: 1
  train_threads: 1
logging:
  level: info
scheduler:
  dags_dir: $T/dags
  tick_ms: 200
EOF
    "$BIN" -c "$dir/mlopsd.yaml" serve >"$dir/daemon.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    bench_wait_http "http://127.0.0.1:$port/healthz" 300 0.1
  done
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N)
  "$BIN" -c "$T/run$n/d1/mlopsd.yaml" dags trigger grid_shared --date $DS \
    --wait --timeout 3000 >"$T/trigger-$n.out" 2>&1
  r=$?
  t1=$(date +%s.%N)
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  stop_daemons
  sid=$(sql -e "SELECT MAX(id) FROM train_search" "$DB")
  once=$(sql -e "SELECT COUNT(*) = 27 AND COUNT(DISTINCT trial) = 27 AND
      SUM(state = 'success') = 27 AND MAX(try_number) = 1
      FROM train_trial WHERE search_id = ${sid:-0}" "$DB")
  if [ $r != 0 ] || [ "$once" != 1 ]; then
    cat "$T/trigger-$n.out"
    echo "$daemons daemon(s): run failed (every trial once: ${once:-no})"
    rc=1
    continue
  fi
  per=$(sql -e "SELECT COUNT(*) FROM train_trial WHERE search_id = $sid
      GROUP BY SUBSTRING_INDEX(claimed_by, ':', 2) ORDER BY 1" "$DB" |
    tr '\n' '+')
  best=$(sql -e "SELECT line FROM task_log WHERE task_id = 'train'
      ORDER BY id" "$DB" | grep -o 'from trial [0-9]*/27' | head -1)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  echo "$daemons $wall" >>"$T/walls"
  echo "$daemons daemon(s): wall ${wall} s, trials per daemon ${per%+}," \
    "each once; best ${best#from }; load before $load0, after $load1"
done
bench_medians "$T/walls" 'daemon(s)'
exit $rc
