#!/bin/bash
# test_loop.sh - the continuous-training loop end to end (issue 7), with a
# real daemon (`mlopsd serve`: scheduler + HTTP) and MariaDB (database
# it_loop), a registry in a temp dir, copies of config/dags (no schedules:
# every run is triggered here) and of the model spec with a small grid:
#
#   1. CT for 2025-09-01 deploys version 1; /metadata serves it.
#   2. 1000 requests built from the training table's own rows (missing
#      values and customers without loans included: the spec copy makes
#      every feature optional) -> monitor DAG -> drift_report verdict ok,
#      no CT run started.
#   3. The same rows with annual_income x3 and occupation "Astronaut" ->
#      monitor -> verdict drift over the threshold -> a CT run started by
#      the drift task with conf reason=drift -> version 2 trained ->
#      validate passes or fails as its logged scores dictate, and the
#      deployment table says 'deploy' or 'skip' to match -> when it passed,
#      /metadata shows version 2 (same daemon, no restart).
#      Then a CT run on a part of August (2025-09-20), version 3, judged
#      the same way (this one is normally kept out: 'skip').
#   4. The CD DAG (params.api = this daemon) deploys alias staging, which
#      only a passing validate moves: a version trained with `models
#      train` (never validated) is NOT deployed by it (skipped); staged
#      by hand (`models promote NAME 4 --alias staging`) it is; run
#      again, deploy_new_model ends skipped with a 'skip' deployment row.
. "$(dirname "$0")/../lib.sh"
tl_init loop
MODEL=credit_score_classification
CT=credit_score_classification_ct
CD=credit_score_classification_cd
MON=credit_score_monitor

export MLOPSD_DATABASE_NAME=it_loop
export MLOPSD_MODELS_REGISTRY_DIR=$tmp/registry
export MLOPSD_MODELS_SPECS_DIR=$tmp/specs
export MLOPSD_SCHEDULER_DAGS_DIR=$tmp/dags
export MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-}
sql() {
  mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
    -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" \
    -N -B -r "$@"
}
q() { sql it_loop -e "$1"; }
port=$(free_port)
api=http://127.0.0.1:$port
mlopsd() { "$BIN" -c "$tmp/mlopsd.yaml" "$@"; }

# ---- a small grid, every feature optional; DAG copies without schedules
scenario a_small_grid_every_feature_optional
mkdir -p "$tmp/specs" "$tmp/dags" "$tmp/spool"
tl_spec_copy "$tmp/specs/$MODEL.yaml.grid" 'max_depth=[4]' \
  'colsample_bytree=[0.8, 1.0]' 'lambda=[3]' num_boost_round=30 \
  early_stopping_rounds=10
sed -E 's/^( *- \{name: [a-z_]+)/\1, required: false/' \
  "$tmp/specs/$MODEL.yaml.grid" >"$tmp/specs/$MODEL.yaml"
rm "$tmp/specs/$MODEL.yaml.grid"
sed -E -e 's/^( *retries:).*/\1 0/' config/dags/credit_score_ct.yaml \
  >"$tmp/dags/credit_score_ct.yaml"
sed -E -e 's/^schedule:.*/schedule: null/' -e 's/^( *retries:).*/\1 0/' \
  config/dags/credit_score_monitor.yaml >"$tmp/dags/credit_score_monitor.yaml"
sed -E -e 's/^schedule:.*/schedule: null/' \
  -e "s#^( *api:).*#\\1 $api#" \
  config/dags/credit_score_cd.yaml >"$tmp/dags/credit_score_cd.yaml"
tl_config "$port" it_loop "$tmp/specs" "  tick_ms: 200" "  workers: 2"
n_opt=$(grep -c 'required: false' "$tmp/specs/$MODEL.yaml")
eq spec_copy_optional_features "$n_opt" 22
check spec_copy_small_grid grep -q 'max_depth: \[4\]' "$tmp/specs/$MODEL.yaml"
if mlopsd dags validate >"$tmp/validate.out" 2>&1; then ok dags_copies_valid
else cat "$tmp/validate.out"; bad dags_copies_valid; fi
check cd_copy_points_here grep -q "api: $api" "$tmp/dags/credit_score_cd.yaml"

# ---- data
scenario data
tl_check_db tl_db_seeded it_loop

# ---- the daemon
scenario the_daemon
"$BIN" -c "$tmp/mlopsd.yaml" serve >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
check daemon_up wait_http "$api/healthz" 30

served_version() { tl_served_version "$api"; }
wait_served() { tl_wait_served "$api" "$1" 15; }  # the hot swap
run_state() {  # run_state RUN_ID: state of the run
  q "SELECT state FROM dag_run WHERE run_id = '$1'"
}
ti_state() {  # ti_state RUN_ID TASK
  q "SELECT state FROM task_instance WHERE run_id = '$1' AND task_id = '$2'"
}
RUN=""
trigger() {  # trigger NAME DAG DATE [ended]: run it through the daemon and
             # wait; RUN=its id.  Passes if the run succeeded (with
             # "ended": if it ended, success or failed).
  local name=$1 dag=$2 date=$3 rc
  mlopsd dags trigger "$dag" --date "$date" --wait --timeout 90 \
    >"$tmp/$name.out" 2>&1
  rc=$?
  RUN=$(sed -n 's/^queued run //p' "$tmp/$name.out" | tail -1)
  if [ "$rc" = 0 ] || { [ "${4:-}" = ended ] &&
       grep -qE "^run .*: (success|failed)$" "$tmp/$name.out"; }; then
    ok "$name"; else
    sed 's/^/  | /' "$tmp/$name.out" | tail -30; bad "$name"; fi
}
# gate NAME RUN CANDIDATE PRODUCTION EXPECT: the CT run's validate task
# ended EXPECT (success or failed, known from how the test set the run
# up), the two scores in its log line imply that same outcome, the
# deployment table says 'deploy' or 'skip' to match, and the server
# serves accordingly.
gate() {
  local name=$1 run=$2 cand=$3 prodv=$4 expect=$5 vstate vline want last
  vstate=$(ti_state "$run" model_validation)
  vline=$(q "SELECT line FROM task_log WHERE run_id = '$run' AND task_id =
    'model_validation' AND line LIKE 'candidate $cand%' ORDER BY id LIMIT 1")
  echo "  $name: validate $vstate: $vline"
  want=$(echo "$vline" | sed -nE \
    "s/^candidate $cand accuracy=([0-9.]+) .* production $prodv accuracy=([0-9.]+) .*\(tolerance ([0-9.e-]+),.*/\1 \2 \3/p" |
    awk '{ print ($1 >= $2 - $3) ? "success" : "failed" }')
  # the paired gate (issue 13): passes iff the interval's lower bound is
  # above -max_regression and there were min_rows rows
  [ -n "$want" ] || want=$(echo "$vline" | sed -nE \
    "s/^candidate $cand (passes|fails): .*vs production $prodv .*interval=\[([-+0-9.]+), .* n=([0-9]+) min_rows=([0-9]+) max_regression=([0-9.e-]+).*/\2 \3 \4 \5/p" |
    awk '{ print ($1 > -$4 && $2 >= $3) ? "success" : "failed" }')
  # too few rows neither version trained on: fails, production stays
  case "$vline" in "candidate $cand: only "*"fewer than min_rows"*)
    want=failed ;; esac
  if [ -n "$want" ]; then ok "${name}_validate_line"; else
    bad "${name}_validate_line"; fi
  eq "${name}_scores_imply_$expect" "$want" "$expect"
  eq "${name}_validate_$expect" "$vstate" "$expect"
  last=$(q "SELECT CONCAT(action, ' ', from_version, ' ', to_version) FROM
    deployment WHERE model = '$MODEL' ORDER BY id DESC LIMIT 1")
  if [ "$expect" = success ]; then
    eq "${name}_staged" "$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/staging")" "$cand"
    eq "${name}_deployment_deploy" "$last" "deploy $prodv $cand"
    eq "${name}_run_success" "$(run_state "$run")" success
    eq "${name}_served_without_restart" "$(wait_served "$cand")" "$cand"
  else
    eq "${name}_deployment_skip" "$last" "skip $prodv $cand"
    eq "${name}_deploy_not_run" "$(ti_state "$run" model_deployment)" \
      upstream_failed
    eq "${name}_run_failed" "$(run_state "$run")" failed
    eq "${name}_still_served" "$(served_version)" "$prodv"
  fi
}

# ---- 1. a first model: CT for 2025-09-01 (the August rows)
scenario a_first_model_ct_for_2025
trigger ct_first_run $CT 2025-09-01
ct1=$RUN
eq ct_first_run_id "$ct1" "${CT}__manual__2025-09-01T00:00:00+09:00"
eq first_version_trials "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trial_count"])' \
  "$tmp/registry/$MODEL/versions/1/meta.json" 2>/dev/null)" 2
eq first_deploy_row "$(q "SELECT CONCAT(action, ' ', COALESCE(from_version, '-'),
  ' ', to_version) FROM deployment WHERE model = '$MODEL' ORDER BY id")" \
  "deploy - 1"
eq served_v1 "$(wait_served 1)" 1

# ---- request bodies drawn from the training table (what version 1 saw)
scenario request_bodies_drawn_from_the_training
q "SELECT JSON_OBJECT('customer_id', customer_id, 'age', age, 'occupation',
  occupation, 'annual_income', annual_income, 'monthly_inhand_salary',
  monthly_inhand_salary, 'num_bank_accounts', num_bank_accounts,
  'num_credit_card', num_credit_card, 'interest_rate', interest_rate,
  'num_of_loan', num_of_loan, 'type_of_loan', type_of_loan,
  'delay_from_due_date', delay_from_due_date, 'num_of_delayed_payment',
  num_of_delayed_payment, 'changed_credit_limit', changed_credit_limit,
  'num_credit_inquiries', num_credit_inquiries, 'credit_mix', credit_mix,
  'outstanding_debt', outstanding_debt, 'credit_utilization_ratio',
  credit_utilization_ratio, 'credit_history_age', credit_history_age,
  'payment_of_min_amount', payment_of_min_amount, 'total_emi_per_month',
  total_emi_per_month, 'amount_invested_monthly', amount_invested_monthly,
  'payment_behaviour', payment_behaviour, 'monthly_balance', monthly_balance)
  FROM credit_score_features_target WHERE base_dt = '2025-09-01'
  ORDER BY id LIMIT 1000" >"$tmp/rows.jsonl"
eq request_rows "$(wc -l <"$tmp/rows.jsonl")" 1000
send() {  # send FILE SHIFT: POST the rows in batches of 100; prints the 200s
  python3 - "$1" "$2" "$api/predict" <<'EOF'
import json, sys, urllib.request
rows = [json.loads(l) for l in open(sys.argv[1])]
if sys.argv[2] == "shift":
    for r in rows:
        if r["annual_income"] is not None:
            r["annual_income"] *= 3
        r["occupation"] = "Astronaut"
ok = 0
for i in range(0, len(rows), 100):
    body = json.dumps({"data": rows[i:i + 100]}).encode()
    req = urllib.request.Request(sys.argv[3], body,
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            ans = json.load(r)
            ok += sum(1 for a in ans if a.get("predict") is not None)
    except urllib.error.HTTPError as e:
        print(e.code, e.read()[:300].decode(), file=sys.stderr)
print(ok)
EOF
}
wait_logged() {  # wait_logged N: the prediction log holds N rows
  local n=0
  for _ in $(seq 1 200); do
    n=$(q "SELECT COUNT(*) FROM credit_predictions_api_log")
    [ "$n" = "$1" ] && break
    sleep 0.1
  done
  echo "$n"
}
drift_runs() {
  q "SELECT COUNT(*) FROM dag_run WHERE dag_id = '$CT' AND
     JSON_VALUE(conf, '$.reason') = 'drift'"
}

# ---- 2. the training population: no drift, no retraining
scenario the_training_population_no_drift_no
eq send_training_rows "$(send "$tmp/rows.jsonl" same)" 1000
eq logged_training_rows "$(wait_logged 1000)" 1000
trigger monitor_ok_run $MON 2025-09-01T01:00
mon1=$RUN
eq monitor_ok_drift_task "$(ti_state "$mon1" drift_check)" success
read -r verdict rows score <<<"$(q "SELECT verdict, window_rows, max_score
  FROM drift_report ORDER BY id DESC LIMIT 1")"
eq report_ok_verdict "$verdict" ok
eq report_ok_rows "$rows" 1000
check report_ok_below_threshold \
  awk -v s="$score" 'BEGIN { exit !(s > 0 && s < 0.2) }'
echo "  training rows: max PSI $score"
eq no_ct_after_ok "$(drift_runs)" 0
eq ct_runs_after_ok "$(q "SELECT COUNT(*) FROM dag_run WHERE dag_id = '$CT'")" 1

# ---- 3. a shifted population: drift, the CT DAG starts by itself
scenario a_shifted_population_drift_the_ct
eq send_shifted_rows "$(send "$tmp/rows.jsonl" shift)" 1000
eq logged_shifted_rows "$(wait_logged 2000)" 2000
trigger monitor_drift_run $MON 2025-09-01T02:00
mon2=$RUN
read -r verdict rows score worst <<<"$(q "SELECT verdict, window_rows,
  max_score, JSON_VALUE(scores, '$.worst') FROM drift_report ORDER BY id
  DESC LIMIT 1")"
eq report_drift_verdict "$verdict" drift
eq report_drift_rows "$rows" 1000
check report_drift_over_threshold awk -v s="$score" 'BEGIN { exit !(s > 0.2) }'
eq report_drift_worst "$worst" occupation
echo "  shifted rows: max PSI $score ($worst)"
eq ct_started_by_drift "$(drift_runs)" 1
read -r ct2 conf_model <<<"$(q "SELECT run_id, JSON_VALUE(conf, '$.model')
  FROM dag_run WHERE dag_id = '$CT' AND JSON_VALUE(conf, '$.reason') =
  'drift'")"
eq ct_drift_conf_model "$conf_model" $MODEL
st=""
for _ in $(seq 1 900); do
  st=$(run_state "$ct2")
  case "$st" in success|failed) break ;; esac
  sleep 0.1
done
check ct_drift_run_finished test "$st" = success -o "$st" = failed
eq ct_drift_trained "$(ti_state "$ct2" model_training)" success
check version_2_registered test -f "$tmp/registry/$MODEL/versions/2/meta.json"
# the drift run trains on the same rows (2025-09-01) with the same spec as
# version 1, and training is deterministic: equal scores, so it passes
gate drift "$ct2" 2 1 success
prod=$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/production")
eq drift_production_is_2 "$prod" 2

# ---- a CT run on a part of August (2025-08-20..09-20) with a crippled
# spec (one round of depth-1 stumps) against version 2 (30 rounds of
# depth 4): the candidate scores far worse and must be kept out
scenario a_ct_run_on_a_part
cp "$tmp/specs/$MODEL.yaml" "$tmp/spec.full"
sed -E -e 's/^( *max_depth:).*/\1 [1]/' \
  -e 's/^( *colsample_bytree:).*/\1 [1.0]/' \
  -e 's/^( *num_boost_round:).*/\1 1/' \
  -e 's/^( *early_stopping_rounds:).*/\1 1/' \
  "$tmp/spec.full" >"$tmp/specs/$MODEL.yaml"
trigger ct_subwindow_run $CT 2025-09-20 ended
cp "$tmp/spec.full" "$tmp/specs/$MODEL.yaml"
gate subwindow "$RUN" 3 "$prod" failed
prod=$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/production")
eq subwindow_production_still_2 "$prod" 2

# ---- 4. the CD DAG deploys alias staging: only validated versions
scenario the_cd_dag_deploys_alias_staging
# (2025-09-20: the feature store keeps a week, the 09-01 rows are gone)
if mlopsd models train $MODEL --date 2025-09-20 --max-trials 1 --rounds 10 \
     --run-id loop_v4 >"$tmp/train4.out" 2>&1; then ok train_v4; else
  sed 's/^/  | /' "$tmp/train4.out" | tail; bad train_v4; fi
check version_4_registered test -f "$tmp/registry/$MODEL/versions/4/meta.json"
eq v4_not_deployed "$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/production")" "$prod"
# the last version that passed validate is the one in production
eq staging_is_production "$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/staging")" "$prod"
trigger cd_unvalidated_run $CD 2025-09-01T02:45
cd0=$RUN
eq cd_unvalidated_skipped "$(ti_state "$cd0" deploy_new_model)" skipped
eq cd_unvalidated_skip_row "$(q "SELECT CONCAT(action, ' ', from_version, ' ',
  to_version) FROM deployment WHERE model = '$MODEL' ORDER BY id DESC
  LIMIT 1")" "skip $prod $prod"
eq cd_unvalidated_still_served "$(served_version)" "$prod"
# staged by hand (as a validate run that passed would)
if mlopsd models promote $MODEL 4 --alias staging \
     --reason "loop test: stage v4" >"$tmp/stage4.out" 2>&1; then
  ok stage_v4; else sed 's/^/  | /' "$tmp/stage4.out"; bad stage_v4; fi
eq v4_staged "$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/staging")" 4
trigger cd_deploy_run $CD 2025-09-01T03:00
cd1=$RUN
eq cd_api_checked "$(ti_state "$cd1" get_branch_by_api_status)" success
eq cd_metadata_read "$(ti_state "$cd1" get_deployed_model_metadata)" success
eq cd_deployed "$(ti_state "$cd1" deploy_new_model)" success
eq cd_deploy_row "$(q "SELECT CONCAT(action, ' ', from_version, ' ',
  to_version) FROM deployment WHERE model = '$MODEL' ORDER BY id DESC
  LIMIT 1")" "deploy $prod 4"
eq served_v4 "$(wait_served 4)" 4
trigger cd_again_run $CD 2025-09-01T03:30
cd2=$RUN
eq cd_again_skipped "$(ti_state "$cd2" deploy_new_model)" skipped
eq cd_again_run_success "$(run_state "$cd2")" success
eq cd_skip_row "$(q "SELECT CONCAT(action, ' ', from_version, ' ',
  to_version, ' ', actor) FROM deployment WHERE model = '$MODEL' ORDER BY id
  DESC LIMIT 1")" "skip 4 4 dag:$CD/$cd2"
eq still_served_v4 "$(served_version)" 4

# ---- the same daemon all along; the history tells the story
scenario the_same_daemon_all_along_the
check daemon_never_restarted kill -0 "$daemon_pid"
if mlopsd models history $MODEL >"$tmp/history.out" 2>&1 &&
   mlopsd models history $MODEL --json >"$tmp/history.json" 2>&1; then
  ok history; else bad history; fi
check history_has_drift_run grep -qF "dag:$CT/$ct2" "$tmp/history.json"
check history_has_cd_skip grep -qF "skip: production version 4 is not older" \
  "$tmp/history.out"
[ -n "${VERBOSE:-}" ] && cat "$tmp/history.out"

if [ "$fail" != 0 ]; then
  echo "  daemon log (last 60 lines):"; tail -60 "$tmp/daemon.log" | sed 's/^/  | /'
fi
tl_done
