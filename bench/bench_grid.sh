#!/bin/bash
# bench/bench_grid.sh - wall time of the course grid (27 trials on the
# 2,500 rows of 2025-09-01) through `mlopsd models train`, and the trial
# it picks, for each number of parallel trials asked for.
#
#   bench/bench_grid.sh [PARALLEL...]     default: 1 2
#
# PARALLEL is models.train_parallel (MLOPSD_MODELS_TRAIN_PARALLEL): trials
# run at once in the one daemon, each with models.train_threads XGBoost
# threads (BENCH_GRID_THREADS, default 1).  A binary that predates the
# setting ignores it (sequential), which is how the "before" figure is
# taken: BENCH_GRID_TRAIN_BIN=/path/to/old/mlopsd bench/bench_grid.sh 1
# (the database is set up with MLOPSD_BIN, the current one).
#
# Prints per run: the wall time of the train command, the search time and
# the best trial with its accuracy, plus the load average before and after
# (figures on a shared machine mean little without it).  Starts its own
# MariaDB (tests/mariadb.sh) unless MLOPSD_DATABASE_HOST is set; never
# fails on speed.  BENCH_GRID_TRIALS cuts the grid (default all 27).
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$SRC" || exit 1
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
TRAIN_BIN=${BENCH_GRID_TRAIN_BIN:-$BIN}
MODEL=credit_score_classification
DS=2025-09-01
[ $# -gt 0 ] || set -- 1 2
T=$(mktemp -d /tmp/bench-grid.XXXXXX)
own_db=""
cleanup() {
  [ -n "$own_db" ] && tests/mariadb.sh stop "$T/db" >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT

if [ -z "${MLOPSD_DATABASE_HOST:-}" ]; then
  eval "$(tests/mariadb.sh start "$T/db")" || { echo "no MariaDB"; exit 1; }
  own_db=1
fi
export MLOPSD_DATABASE_NAME=bench_grid
export MLOPSD_MODELS_SPECS_DIR=$SRC/config/models
export MLOPSD_MODELS_TRAIN_THREADS=${BENCH_GRID_THREADS:-1}
export MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-}
sql() {
  mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
    -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" "$@"
}
sql -e "DROP DATABASE IF EXISTS bench_grid" &&
  "$BIN" db init >"$T/init.log" 2>&1 &&
  "$BIN" db seed >"$T/seed.log" 2>&1 &&
  sed "s/{{ ds }}/$DS/g" sql/features.sql | sql bench_grid ||
  { cat "$T"/*.log; echo "bench_grid: setup failed"; exit 1; }

trials=()
[ -n "${BENCH_GRID_TRIALS:-}" ] && trials=(--max-trials "$BENCH_GRID_TRIALS")
echo "binary $TRAIN_BIN, $(nproc) CPUs, XGBoost threads per trial" \
  "$MLOPSD_MODELS_TRAIN_THREADS"
rc=0
for par in "$@"; do
  export MLOPSD_MODELS_TRAIN_PARALLEL=$par
  export MLOPSD_MODELS_REGISTRY_DIR=$T/registry-$par
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S %M' -o "$T/time-$par" "$TRAIN_BIN" models train $MODEL --date $DS "${trials[@]}" --run-id "bench-p$par" \
    >"$T/train-$par.log" 2>&1
  r=$?
  t1=$(date +%s.%N)
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ $r != 0 ]; then
    tail -5 "$T/train-$par.log"; echo "parallel $par: train failed"; rc=1
    continue
  fi
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  search=$(sed -n 's/.*"search_seconds":[[:space:]]*\([0-9.]*\).*/\1/p' \
    "$T/registry-$par/$MODEL/versions/1/meta.json")
  best=$(grep -o 'from trial [0-9]*/[0-9]*' "$T/train-$par.log" | head -1)
  acc=$(grep -o 'accuracy=[0-9.]*' "$T/train-$par.log" | tail -1)
  read -r usr sys rss <"$T/time-$par"
  echo "parallel $par: wall ${wall} s, search ${search} s, CPU ${usr} s user" \
    "${sys} s sys, peak RSS $((rss / 1024)) MB; best ${best#from } $acc;" \
    "load before $load0, after $load1"
done
exit $rc
