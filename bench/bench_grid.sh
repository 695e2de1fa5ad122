#!/bin/bash
# bench/bench_grid.sh - wall time of the course grid (27 trials on the
# 2,500 rows of 2025-09-01) through `mlopsd models train`, and the trial
# it picks, for each number of parallel trials asked for.
#
#   bench/bench_grid.sh [PARALLEL[xTHREADS]...]     default: 1 2
#
# PARALLEL is models.train_parallel (MLOPSD_MODELS_TRAIN_PARALLEL): trials
# run at once in the one daemon, each with THREADS XGBoost threads
# (models.train_threads; default BENCH_GRID_THREADS, else 1).  Repeat the
# arguments to alternate them on a busy machine (`1 2 1x2 1 2 1x2 1 2
# 1x2`): the last lines give each setting's median wall time and its
# ratio to the first setting's.  A binary that predates the
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
. bench/lib.sh
bench_tmp bench-grid
bench_db_start_unless_host bench_grid
export MLOPSD_DATABASE_NAME=bench_grid
export MLOPSD_MODELS_SPECS_DIR=$SRC/config/models
export MLOPSD_MODELS_TRAIN_THREADS=${BENCH_GRID_THREADS:-1}
bench_features_db bench_grid bench_grid $DS

trials=()
[ -n "${BENCH_GRID_TRIALS:-}" ] && trials=(--max-trials "$BENCH_GRID_TRIALS")
echo "binary $TRAIN_BIN, $(nproc) CPUs"
rc=0
n=0
for arg in "$@"; do
  n=$((n + 1))
  par=${arg%%x*}
  thr=$MLOPSD_MODELS_TRAIN_THREADS
  [ "$arg" != "$par" ] && thr=${arg#*x}
  case "$par$thr" in *[!0-9]*|"")
    echo "bench_grid: argument '$arg': want PARALLEL or PARALLELxTHREADS"
    exit 2 ;;
  esac
  export MLOPSD_MODELS_TRAIN_PARALLEL=$par
  export MLOPSD_MODELS_REGISTRY_DIR=$T/registry-$n
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N)
  MLOPSD_MODELS_TRAIN_THREADS=$thr /usr/bin/time -f '%U %S %M' \
    -o "$T/time-$n" "$TRAIN_BIN" models train $MODEL --date $DS \
    "${trials[@]}" --run-id "bench-$n" >"$T/train-$n.log" 2>&1
  r=$?
  t1=$(date +%s.%N)
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ $r != 0 ]; then
    tail -5 "$T/train-$n.log"; echo "parallel $par x $thr: train failed"; rc=1
    continue
  fi
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  search=$(sed -n 's/.*"search_seconds":[[:space:]]*\([0-9.]*\).*/\1/p' \
    "$T/registry-$n/$MODEL/versions/1/meta.json")
  best=$(grep -o 'from trial [0-9]*/[0-9]*' "$T/train-$n.log" | head -1)
  acc=$(grep -o 'accuracy=[0-9.]*' "$T/train-$n.log" | tail -1)
  read -r usr sys rss <"$T/time-$n"
  echo "$par x $thr $wall" >>"$T/walls"
  echo "parallel $par x $thr threads: wall ${wall} s, search ${search} s, CPU ${usr} s user" \
    "${sys} s sys, peak RSS $((rss / 1024)) MB; best ${best#from } $acc;" \
    "load before $load0, after $load1"
done
# medians per setting, in the order first given; ratio to the first
bench_medians "$T/walls" threads
exit $rc
