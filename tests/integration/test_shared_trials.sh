#!/bin/bash
# test_shared_trials.sh - the grid's trials as claimable work items spread
# over two scheduler daemons on one MariaDB (issue 15, docs/training.md
# "Shared trials"): a DAG's `train` task with `shared_trials: true` runs on
# one daemon; both daemons train its trials.  Checks: the run succeeds,
# every trial ran exactly once (one row each, state success, try 1), both
# daemons trained some, and the version is the one a single process picks
# sequentially with the same seed (same best trial, same model.ubj bytes).
# Prints both wall times (figures, not checks).
#
# The spec copy cuts the rounds (20, early stopping 5) but keeps the
# course's 27-point grid; each daemon trains one trial at a time
# (models.train_parallel 1).
. "$(dirname "$0")/../lib.sh"
tl_init shared_trials
MODEL=credit_score_classification
DB=it_shared_trials
DS=2025-09-01

scenario setup
mkdir -p "$T/specs" "$T/dags"
tl_spec_copy "$T/specs/$MODEL.yaml" num_boost_round=20 \
  early_stopping_rounds=5
cat >"$T/dags/grid_shared.yaml" <<EOF
dag_id: grid_shared
schedule: null
tasks:
  - {id: train, type: train, model: $MODEL, shared_trials: true}
EOF
tl_pair_config $DB "$T/specs"
tl_check_db tl_db_course $DB $DS || finish

# 1. the reference: one process, trials one after another, no sharing
scenario one_process_sequential
t0=$(date +%s.%N)
if MLOPSD_MODELS_REGISTRY_DIR=$T/ref "$BIN" models train $MODEL --date $DS \
     --parallel 1 --run-id ref >"$T/ref.log" 2>&1; then
  ok reference_trained
else
  tail -5 "$T/ref.log"; bad reference_trained; finish
fi
t1=$(date +%s.%N)
wall_ref=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
ref_best=$(grep -o 'from trial [0-9]*/27' "$T/ref.log")
check reference_best_found test -n "$ref_best"

# 2. two daemons, the DAG's train task with shared trials
scenario two_daemons_share_the_grid
tl_pair_start
t0=$(date +%s.%N)
if "$BIN" -c "$T/a/mlopsd.yaml" dags trigger grid_shared --date $DS --wait \
     --timeout 600 >"$T/trigger.out" 2>&1; then
  ok run_succeeded
else
  cat "$T/trigger.out"; tail -20 "$T/a/daemon.log" "$T/b/daemon.log"
  bad run_succeeded; finish
fi
t1=$(date +%s.%N)
wall_two=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
sid=$(sql -e "SELECT MAX(id) FROM train_search" "$DB")
eq one_search "$(sql -e "SELECT COUNT(*) FROM train_search" "$DB")" 1
eq search_success \
  "$(sql -e "SELECT state FROM train_search WHERE id = $sid" "$DB")" success
eq every_trial_once "$(sql -e "SELECT COUNT(*), COUNT(DISTINCT trial),
    SUM(state = 'success'), MIN(try_number), MAX(try_number), MIN(trial),
    MAX(trial) FROM train_trial WHERE search_id = $sid" "$DB")" \
  "$(printf '27\t27\t27\t1\t1\t0\t26')"
# claimed_by is host:pid:tag:random; both daemons' pids trained trials
pids=$(sql -e "SELECT DISTINCT SUBSTRING_INDEX(SUBSTRING_INDEX(claimed_by,
    ':', 2), ':', -1) FROM train_trial WHERE search_id = $sid" "$DB" |
  sort -n | tr '\n' ' ')
want=$(printf '%s\n' "$daemon_pid" "$pid_b" | sort -n | tr '\n' ' ')
eq both_daemons_trained "$pids" "$want"
per=$(sql -e "SELECT COUNT(*) FROM train_trial WHERE search_id = $sid
    GROUP BY SUBSTRING_INDEX(claimed_by, ':', 2) ORDER BY 1" "$DB" |
  tr '\n' ' ')

# 3. the same version as the single sequential process
scenario same_best_trial_and_model
vdir=$(tl_pair_version model.ubj)
check version_registered test -n "$vdir"
sql -e "SELECT line FROM task_log WHERE task_id = 'train' ORDER BY id" \
  "$DB" >"$T/task.log"
check task_log_names_the_search grep -q "shared trials: search $sid" \
  "$T/task.log"
check task_log_counts_helpers grep -q \
  "shared trials: [0-9]* of 27 trained by this run" "$T/task.log"
if grep -q "from trial ${ref_best#from trial }" "$T/task.log"; then
  ok same_best_trial
else
  grep 'registered' "$T/task.log"; echo "reference: $ref_best"
  bad same_best_trial
fi
check same_model_bytes cmp "$vdir/model.ubj" \
  "$T/ref/$MODEL/versions/1/model.ubj"
eq meta_selection_trial "$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["selection"]["trial"])' "$vdir/meta.json")" \
  "$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["selection"]["trial"])' \
  "$T/ref/$MODEL/versions/1/meta.json")"
echo "figures: 27 trials: one process sequential ${wall_ref} s; two" \
  "daemons (1 trial at a time each) ${wall_two} s, trials per daemon: $per;" \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
finish
