#!/bin/bash
# test_distributed_training.sh - `train` with `workers: 2` (issue 15,
# docs/training.md "Distributed training"): two scheduler daemons on one
# MariaDB, the DAG's train task on one of them is rank 0 (it starts
# python3-xgboost's tracker on loopback), the other daemon's trial helper
# is rank 1; each reads MOD(customer_id, 2) = rank of the rows and they
# train through XGBoost's collective.  Checks: the run succeeds, one
# version records 2 workers and the sharding, the two shards hold all the
# date's rows once, both ranks ended with the same model bytes, rank 1 ran
# in the other daemon, and the version's model.ubj loads in python3-xgboost
# whose probabilities on the preprocessed rows equal `mlopsd predict`'s
# answers (to 1e-6).
. "$(dirname "$0")/../lib.sh"
tl_init distributed_training
PY=/usr/bin/python3
MODEL=credit_score_classification
DB=it_distributed
DS=2025-09-01

scenario setup
tl_need_pyxgb || finish
mkdir -p "$T/specs" "$T/dags" "$T/pspecs"
# two grid points, 30 rounds: enough to see both ranks agree
tl_spec_copy "$T/specs/$MODEL.yaml" 'max_depth=[5]' \
  'colsample_bytree=[0.8, 1.0]' 'lambda=[3]' num_boost_round=30 \
  early_stopping_rounds=5
# the predict side takes nulls as missing values (as test_xgb_interop.sh)
tl_optional_spec "$T/specs/$MODEL.yaml" "$T/pspecs/$MODEL.yaml"
cat >"$T/dags/dist.yaml" <<EOF
dag_id: dist
schedule: null
tasks:
  - {id: train, type: train, model: $MODEL, workers: 2,
     tracker_host: 127.0.0.1}
EOF
tl_pair_config $DB "$T/specs"
tl_check_db tl_db_course $DB $DS || finish
# the rows of the course spec's train_window (the 28 days up to DS)
total_rows=$(sql -e "SELECT COUNT(*) FROM credit_score_features_target
  WHERE base_dt = '$DS' AND date > DATE_FORMAT(DATE_SUB(DATE('$DS'),
  INTERVAL 28 DAY), '%Y-%m-%d') AND date <= '$DS'" "$DB")

scenario two_daemons_train_together
tl_pair_start
if "$BIN" -c "$T/a/mlopsd.yaml" dags trigger dist --date $DS --wait \
     --timeout 600 >"$T/trigger.out" 2>&1; then
  ok run_succeeded
else
  cat "$T/trigger.out"
  sql -e "SELECT line FROM task_log ORDER BY id" "$DB" | tail -20
  grep -h 'trials' "$T"/a/daemon.log "$T"/b/daemon.log | tail -20
  bad run_succeeded; finish
fi
sid=$(sql -e "SELECT MAX(id) FROM train_search WHERE kind = 'workers'" "$DB")
eq search_success "$(sql -e "SELECT state, workers FROM train_search
  WHERE id = $sid" "$DB")" "$(printf 'success\t2')"
eq both_ranks_done "$(sql -e "SELECT GROUP_CONCAT(CONCAT(trial, '=', state)
  ORDER BY trial) FROM train_trial WHERE search_id = $sid" "$DB")" \
  "0=success,1=success"
rank1_pid=$(sql -e "SELECT SUBSTRING_INDEX(SUBSTRING_INDEX(claimed_by, ':',
  2), ':', -1) FROM train_trial WHERE search_id = $sid AND trial = 1" "$DB")
coord_pid=$(sql -e "SELECT SUBSTRING_INDEX(SUBSTRING_INDEX(owner, ':', 2),
  ':', -1) FROM train_search WHERE id = $sid" "$DB")
check rank1_in_the_other_daemon test "$rank1_pid" != "$coord_pid" -a \
  \( "$rank1_pid" = "$daemon_pid" -o "$rank1_pid" = "$pid_b" \)
sql -e "SELECT line FROM task_log WHERE task_id = 'train' ORDER BY id" \
  "$DB" >"$T/task.log"
check log_joined_the_collective grep -q \
  "joined XGBoost's collective at 127.0.0.1:[0-9]*: XGBoost rank [01] of 2" \
  "$T/task.log"
check log_same_bytes grep -q \
  "2 workers ended with the same model bytes for all 2 trials" "$T/task.log"

scenario one_version_records_the_workers
vdir=$(tl_pair_version meta.json)
check version_registered test -n "$vdir"
eq meta_distributed "$($PY - "$vdir/meta.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["distributed"]
print(d["workers"], d["sharding"], sum(d["rows_per_rank"]),
      min(d["rows_per_rank"]) > 0, d["same_model_on_every_rank"])
EOF
)" "2 MOD(\`customer_id\`, 2) = rank $total_rows True True"
check no_second_version test ! -e "$(dirname "$vdir")/2"

scenario python_xgboost_agrees_with_mlopsd_predict
export MLOPSD_MODELS_SPECS_DIR=$T/pspecs
export MLOPSD_MODELS_REGISTRY_DIR=$(dirname "$(dirname "$(dirname "$vdir")")")
tl_sample_body "$vdir" 400 $MODEL:1
tl_predict_rows $MODEL:1 && ok predict_and_print_rows || {
  cat "$T/answer.json" "$T/predict.err"; bad predict_and_print_rows; finish; }
if $PY - "$vdir/model.ubj" "$T/rows.json" "$T/answer.json" "$vdir" \
     >"$T/py.out" 2>&1 <<'EOF'
import json, os, sys
import numpy as np
import xgboost as xgb
bst = xgb.Booster(model_file=sys.argv[1])
rows = json.load(open(sys.argv[2])); ans = json.load(open(sys.argv[3]))
x = np.array([[np.nan if v is None else v for v in r] for r in rows["rows"]],
             dtype=np.float32)
bst.set_param({"nthread": 1})
p = bst.predict(xgb.DMatrix(x, missing=np.nan,
                            feature_names=bst.feature_names))
preds = ans
# the answer's confidence is calibrated with the version's temperature
# (calibration.json; softmax(log(p) / T)), computed here with numpy
q = p
cal_path = os.path.join(sys.argv[4], "calibration.json")
if os.path.exists(cal_path):
    t = json.load(open(cal_path))["temperature"]
    lq = np.log(np.clip(p.astype(np.float64), 1e-300, None)) / t
    lq -= lq.max(axis=1, keepdims=True)
    q = np.exp(lq) / np.exp(lq).sum(axis=1, keepdims=True)
# mlopsd's outputs are the calibrated probabilities too
want = np.array(rows["outputs"], dtype=np.float64)
diff = float(np.max(np.abs(q - want)))
classes = ["Poor", "Standard", "Good"]
labels = [classes[int(i)] for i in np.argmax(p, axis=1)]
got = [a["predict"] for a in preds]
conf = max(abs(float(a["confidence"]) - float(np.max(r)))
           for a, r in zip(preds, q))
print(f"rows {len(x)} max|diff| {diff:.3g} labels equal {labels == got} "
      f"confidence diff {conf:.3g}")
sys.exit(0 if len(x) > 100 and diff < 1e-6 and labels == got and conf < 1e-6
         else 1)
EOF
then
  ok python_predictions_match; cat "$T/py.out"
else
  cat "$T/py.out"; head -c 600 "$T/answer.json"; echo
  bad python_predictions_match
fi
finish
