#!/bin/bash
# bench/bench_distributed.sh - `train` with `workers: 2` against one
# worker on a synthetic table of BENCH_DIST_ROWS rows (default 1,000,000):
# wall time of the train command and peak RSS of each rank.
#
# The synthetic rows are bench_train.c's: copies of the course's 2,500
# rows of 2025-09-01 under base_dt 2099-01-01 with +-5% jitter on the
# numeric columns (customer_id kept, so MOD(customer_id, 2) splits them
# about in half) and their dates moved by as much as base_dt (the spec's
# 28-day train_window counts back from the logical date).  One grid point and BENCH_DIST_ROUNDS rounds (default
# 20), one XGBoost thread per rank.  One worker: `models train`; two:
# `models train --workers 2` (rank 0) plus one `mlopsd serve` whose trial
# helper is rank 1 (its peak RSS includes the daemon's own, printed
# before the run).  Starts its own MariaDB (tests/mariadb.sh) unless
# MLOPSD_DATABASE_HOST is set.  Prints figures with the load average;
# never fails on speed.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$SRC" || exit 1
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
MODEL=credit_score_classification
ROWS=${BENCH_DIST_ROWS:-1000000}
ROUNDS=${BENCH_DIST_ROUNDS:-20}
BIG=2099-01-01
. bench/lib.sh
dpid=""
bench_stop() { bench_kill "$dpid"; }
bench_tmp bench-dist
bench_db_start_unless_host bench_distributed
export MLOPSD_DATABASE_NAME=bench_dist MLOPSD_MODELS_SPECS_DIR=$SRC/config/models
export MLOPSD_MODELS_TRAIN_THREADS=1 MLOPSD_MODELS_TRAIN_PARALLEL=1
sql() { bench_sql -N -B "$@"; }
num="age annual_income monthly_inhand_salary num_bank_accounts
num_credit_card interest_rate num_of_loan delay_from_due_date
num_of_delayed_payment changed_credit_limit num_credit_inquiries
outstanding_debt credit_utilization_ratio credit_history_age
total_emi_per_month amount_invested_monthly monthly_balance"
cols=""; jit=""
for c in $num; do cols="$cols, $c"; jit="$jit, $c * (0.95 + 0.1 * RAND())"; done
copies=$(( (ROWS + 2499) / 2500 ))
t0=$(date +%s.%N)
bench_features_db bench_distributed bench_dist 2025-09-01
sql bench_dist -e "CREATE TABLE bench_src AS SELECT * FROM
    credit_score_features_target WHERE base_dt = '2025-09-01';
    CREATE TABLE bench_seq (k INT PRIMARY KEY);
    INSERT INTO bench_seq SELECT seq FROM seq_0_to_$((copies - 1));" ||
  { cat "$T"/*.log; echo "bench_distributed: setup failed"; exit 1; }
for ((k0 = 0; k0 < copies; k0 += 20)); do
  sql bench_dist -e "INSERT INTO credit_score_features_target (base_dt, id,
    customer_id, date, occupation, type_of_loan, credit_mix,
    payment_of_min_amount, payment_behaviour, credit_score$cols)
    SELECT '$BIG', CONCAT(LPAD(k, 3, '0'), id), customer_id,
    DATE_ADD(date, INTERVAL DATEDIFF('$BIG', '2025-09-01') DAY),
    occupation, type_of_loan, credit_mix, payment_of_min_amount,
    payment_behaviour, credit_score$jit FROM bench_src JOIN bench_seq
    WHERE k >= $k0 AND k < $((k0 + 20))" || exit 1
done
n=$(sql bench_dist -e "SELECT COUNT(*) FROM credit_score_features_target
  WHERE base_dt = '$BIG'")
printf 'synthetic: %s rows under base_dt %s in %.0f s\n' "$n" "$BIG" \
  "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"

train() {  # train NAME ARGS...: timed models train, wall and peak RSS
  local name=$1; shift
  local l0; l0=$(cut -d' ' -f1-3 /proc/loadavg)
  MLOPSD_MODELS_REGISTRY_DIR=$T/reg-$name /usr/bin/time -f '%e %M' \
    -o "$T/time-$name" "$BIN" models train $MODEL --date $BIG \
    --max-trials 1 --rounds "$ROUNDS" --parallel 1 --run-id "$name" "$@" \
    >"$T/$name.log" 2>&1 || { tail -5 "$T/$name.log"; return 1; }
  read -r wall rss <"$T/time-$name"
  echo "$name: wall $wall s, peak RSS rank 0 $((rss / 1024)) MB;" \
    "$(grep -o 'trial 1/1[^\[]*\[[^]]*\]' "$T/$name.log" | tail -1);" \
    "load before $l0, after $(cut -d' ' -f1-3 /proc/loadavg)"
}
train one-worker || exit 1

port=$(bench_free_port)
mkdir -p "$T/dags"
MLOPSD_SERVER_LISTEN=127.0.0.1:$port MLOPSD_SCHEDULER_DAGS_DIR=$T/dags \
  MLOPSD_SERVER_SPOOL_DIR=$T/spool MLOPSD_MODELS_REGISTRY_DIR=$T/reg-d \
  "$BIN" serve >"$T/daemon.log" 2>&1 &
dpid=$!
bench_wait_http "http://127.0.0.1:$port/healthz" 100
hwm0=$(awk '/VmHWM/{print int($2/1024)}' /proc/$dpid/status)
train two-workers --workers 2 --tracker-host 127.0.0.1 || {
  grep trials "$T/daemon.log" | tail; exit 1; }
hwm1=$(awk '/VmHWM/{print int($2/1024)}' /proc/$dpid/status)
echo "two-workers: rank 1 (daemon $dpid) peak RSS $hwm1 MB (the idle" \
  "daemon: $hwm0 MB); rows per rank: $(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["distributed"]["rows_per_rank"])' \
  "$T/reg-two-workers/$MODEL/versions/1/meta.json")"
