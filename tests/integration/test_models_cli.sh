#!/bin/bash
# test_models_cli.sh - `mlopsd models ...` and `mlopsd predict` as a user
# runs them, against the test MariaDB (database it_models_cli) and a
# registry in a temp dir:
#   - --help of every subcommand, usage errors (exit 2), failures (exit 1)
#   - models train twice -> versions 1 and 2; list and show
#   - predict before anything is deployed fails clearly
#   - promote / rollback move the alias and write deployment rows
#     (actor cli:$USER); with MariaDB unreachable they change nothing
#   - offline `mlopsd predict` answers exactly as the running server's
#     POST /models/NAME/predict (same status class, same bytes) for valid
#     and invalid bodies, also after a promote the server swapped in
. "$(dirname "$0")/../lib.sh"
tl_init models_cli
MODEL=credit_score_classification

export MLOPSD_DATABASE_NAME=it_models_cli
export MLOPSD_MODELS_REGISTRY_DIR=$tmp/registry
export MLOPSD_MODELS_SPECS_DIR=config/models
export MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-}
export USER=cli_tester
sql() {
  mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
    -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" \
    -N -B "$@"
}

# ---- help and usage
scenario help_and_usage
for sub in list show promote rollback train; do
  expect "help_$sub" 0 "$BIN" models $sub --help
  has "help_${sub}_text" "$tmp/out" "usage: mlopsd [-c FILE] models $sub"
done
expect help_models 0 "$BIN" models --help
expect help_predict 0 "$BIN" predict --help
has help_predict_text "$tmp/out" "--print-rows"
expect usage_models_none 2 "$BIN" models
expect usage_models_unknown 2 "$BIN" models frob
expect usage_show_missing 2 "$BIN" models show
expect usage_show_escape 2 "$BIN" models show ../etc
has usage_show_escape_msg "$tmp/err" "is not a valid model name"
expect usage_show_badver 2 "$BIN" models show $MODEL:abc
expect usage_promote_args 2 "$BIN" models promote $MODEL
expect usage_rollback_opt 2 "$BIN" models rollback $MODEL --bogus
expect usage_train_nodate 2 "$BIN" models train $MODEL
# the integer options: each with its own range, a missing value refused
expect usage_train_range 2 "$BIN" models train $MODEL --date 2025-09-01 \
  --workers 65
has usage_train_range_msg "$tmp/err" "option --workers needs an integer 1..64"
expect usage_train_esr 2 "$BIN" models train $MODEL --date 2025-09-01 \
  --early-stopping -1
has usage_train_esr_msg "$tmp/err" \
  "option --early-stopping needs an integer 0..100000"
expect usage_train_novalue 2 "$BIN" models train $MODEL --date 2025-09-01 \
  --max-trials
expect usage_predict_nobody 2 "$BIN" predict $MODEL
expect usage_predict_both 2 "$BIN" predict $MODEL --json '{}' --file x

# ---- data and two versions
scenario data_and_two_versions
if sql -e "DROP DATABASE IF EXISTS it_models_cli" &&
   "$BIN" db init >"$tmp/init.log" 2>&1 &&
   "$BIN" db seed >"$tmp/seed.log" 2>&1 &&
   sed 's/{{ ds }}/2025-09-01/g' sql/features.sql | sql it_models_cli; then
  ok database_ready
else
  cat "$tmp"/*.log; bad database_ready
fi
expect list_empty 0 "$BIN" models list
has list_empty_text "$tmp/out" "no models in"
expect train_v1 0 "$BIN" models train $MODEL --date 2025-09-01 \
  --max-trials 2 --rounds 30 --run-id cli_v1
has train_v1_progress "$tmp/out" "trial 2/2 max_depth=7 colsample_bytree=0.8 lambda=5: accuracy="
has train_v1_version "$tmp/out" "version 1"
expect train_v2 0 "$BIN" models train $MODEL --date 2025-09-01 \
  --max-trials 1 --rounds 10 --run-id cli_v2
has train_v2_version "$tmp/out" "version 2"
expect train_no_rows 1 "$BIN" models train $MODEL --date 2025-05-01
has train_no_rows_msg "$tmp/err" \
  "no training rows in credit_score_features_target for base_dt=2025-05-01"
[ -f "$tmp/registry/$MODEL/runs/cli_v1-t02/metrics.json" ] &&
  ok runs_recorded || bad runs_recorded

expect list_two 0 "$BIN" models list
has list_two_row "$tmp/out" "$MODEL"
if awk -v m=$MODEL '$1 == m && $2 == 2 && $3 == 2 && $4 == "-"' "$tmp/out" |
   grep -q .; then ok list_columns; else cat "$tmp/out"; bad list_columns; fi
expect show_v1 0 "$BIN" models show $MODEL:1
has show_lineage "$tmp/out" "dag run        - / cli_v1"
# the course spec: 28 days of rows up to 2025-09-01, a gate split
rows_line=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert m["gate_rows"] > 0 and m["train_window"] == {"days": 28, "column": "date"}
assert m["training_rows"] == m["train_rows"] + m["val_rows"] + m["gate_rows"]
print("rows           %d (train %d, validation %d, gate %d)" % (
    m["training_rows"], m["train_rows"], m["val_rows"], m["gate_rows"]))' \
  "$tmp/registry/$MODEL/versions/1/meta.json") && ok show_rows_meta ||
  bad show_rows_meta
has show_rows "$tmp/out" "$rows_line"
expect show_latest 0 "$BIN" models show $MODEL
has show_latest_v2 "$tmp/out" "version        2  (nothing deployed)"
expect show_noalias 1 "$BIN" models show $MODEL@staging
has show_noalias_msg "$tmp/err" "alias staging of $MODEL is not set"
expect show_nomodel 1 "$BIN" models show nosuch
expect show_nover 1 "$BIN" models show $MODEL:9
has show_nover_msg "$tmp/err" "has no version 9"

body=sql/data/predict_example.json
expect predict_undeployed 1 "$BIN" predict $MODEL --file $body
has predict_undeployed_msg "$tmp/err" "alias production of $MODEL is not set"
expect predict_v1 0 "$BIN" predict $MODEL:1 --file $body
has predict_v1_answer "$tmp/out" '"customer_id":4096,"predict":"'

# ---- promote / rollback
scenario promote_rollback
expect promote_v1 0 "$BIN" models promote $MODEL 1
has promote_v1_msg "$tmp/out" "$MODEL: production -> 1 (promote)"
# MariaDB unreachable: nothing changes
MLOPSD_DATABASE_PORT=1 MLOPSD_DATABASE_CONNECT_TIMEOUT=1 \
  expect promote_db_down 1 "$BIN" models promote $MODEL 2
has promote_db_down_msg "$tmp/err" "nothing was changed"
[ "$(tr -d ' \n' <"$tmp/registry/$MODEL/aliases/production")" = 1 ] &&
  ok promote_db_down_alias_kept || bad promote_db_down_alias_kept
rows=$(sql it_models_cli -e "SELECT COUNT(*) FROM deployment WHERE
  model='$MODEL' AND action='promote' AND to_version=1 AND from_version IS
  NULL AND actor='cli:cli_tester' AND reason='promoted from the command line'")
[ "$rows" = 1 ] && ok promote_row || { echo "  rows=$rows"; bad promote_row; }

# ---- the server and the offline path answer alike
scenario the_server_and_the_offline_path
port=$(free_port)
tl_config "$port" it_models_cli config/models
"$BIN" -c "$tmp/mlopsd.yaml" serve >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_http "http://127.0.0.1:$port/readyz" 30 && ok server_ready ||
  { cat "$tmp/daemon.log"; bad server_ready; }

mkbodies() {
  local d=$tmp/bodies; mkdir -p "$d"
  cp $body "$d/valid_one.json"
  python3 - "$body" "$d" <<'EOF'
import json, sys
one = json.load(open(sys.argv[1]))["data"]
d = sys.argv[2]
def w(name, text):
    open(d + "/" + name, "w").write(text)
b = [dict(one, customer_id=4096 + i, age=20 + 7 * i) for i in range(3)]
w("valid_batch.json", json.dumps({"data": b}))
w("bad_fields.json", json.dumps({"data": dict(one, age=-1, credit_mix="X",
                                              extra=1)}))
w("bad_batch.json", json.dumps({"data": [one, dict(one, age="18"),
                                         {k: v for k, v in one.items()
                                          if k != "occupation"}]}))
w("null_field.json", json.dumps({"data": dict(one, monthly_balance=None)}))
w("unknown_top.json", json.dumps({"data": one, "model": "x"}))
w("empty_list.json", '{"data": []}')
w("data_string.json", '{"data": "x"}')
w("not_object.json", '[1, 2]')
w("malformed.json", '{"data": {"age": 18,,}}')
w("empty.json", '   ')
w("unseen_category.json", json.dumps({"data": dict(one, occupation="Astronaut",
                                                   type_of_loan="moon loan")}))
EOF
  printf '{"data": {"occupation": "\xff"}}' >"$d/bad_utf8.json"
}
compare_all() {  # compare_all TAG
  local f name code out rc
  for f in "$tmp"/bodies/*.json; do
    name=$(basename "$f" .json)
    code=$(curl -s -o "$tmp/http.out" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' --data-binary @"$f" \
      "http://127.0.0.1:$port/models/$MODEL/predict")
    "$BIN" predict $MODEL --file "$f" >"$tmp/cli.out" 2>/dev/null
    rc=$?
    out=$(cat "$tmp/cli.out")
    if [ "$out" = "$(cat "$tmp/http.out")" ] &&
       { { [ "$code" = 200 ] && [ "$rc" = 0 ]; } ||
         { [ "$code" = 400 ] && [ "$rc" = 1 ]; }; }; then
      ok "same_answer_${1}_$name"
    else
      echo "  http $code: $(head -c 400 "$tmp/http.out")"
      echo "  cli  $rc: $(head -c 400 "$tmp/cli.out")"
      bad "same_answer_${1}_$name"
    fi
  done
}
mkbodies
compare_all v1
has answer_names_v1 "$tmp/http.out" '"model_version":"1"'

# promote v2 while serving; the server swaps it in by itself
expect promote_v2 0 "$BIN" models promote $MODEL 2 --reason "better"
has promote_v2_msg "$tmp/out" "$MODEL: production 1 -> 2 (promote)"
swapped=0
for _ in $(seq 1 300); do
  if curl -s -X POST -H 'Content-Type: application/json' \
       --data-binary @$body "http://127.0.0.1:$port/predict" |
     grep -q '"model_version":"2"'; then swapped=1; break; fi
  sleep 0.1
done
[ "$swapped" = 1 ] && ok server_swapped_v2 || bad server_swapped_v2
compare_all v2

# rollback: back to 1, recorded; a second one has nothing to go back to
expect rollback 0 "$BIN" models rollback $MODEL
has rollback_msg "$tmp/out" "$MODEL: production 2 -> 1 (rollback)"
rows=$(sql it_models_cli -e "SELECT COUNT(*) FROM deployment WHERE
  model='$MODEL' AND action='rollback' AND from_version=2 AND to_version=1
  AND actor='cli:cli_tester'")
[ "$rows" = 1 ] && ok rollback_row || { echo "  rows=$rows"; bad rollback_row; }
expect rollback_again 1 "$BIN" models rollback $MODEL
has rollback_again_msg "$tmp/err" "no earlier production version"
MLOPSD_DATABASE_PORT=1 MLOPSD_DATABASE_CONNECT_TIMEOUT=1 \
  expect rollback_db_down 1 "$BIN" models rollback $MODEL
has rollback_db_down_msg "$tmp/err" "cannot reach MariaDB"
expect list_prod 0 "$BIN" models list --json
python3 - "$tmp/out" <<'EOF' && ok list_json || bad list_json
import json, sys
m = json.load(open(sys.argv[1]))[0]
assert m["versions"] == [1, 2] and m["production"] == 1 and m["latest"] == 2
assert m["metrics"]["accuracy"] > 0 and m["error"] is None
EOF

tl_done
