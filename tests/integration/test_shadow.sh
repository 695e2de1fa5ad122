#!/bin/bash
# test_shadow.sh - the shadow challenger (issue 13 part 6, docs/serving.md
# "Shadow challenger") with a real daemon, MariaDB and XGBoost:
#   - models.shadow on, production 1, staging 2: every answered item has
#     exactly one linked row in prediction_shadow (log_source, log_seq),
#     with version 2 and the answer `mlopsd predict NAME:2` gives offline;
#     the HTTP answers are byte for byte production's (offline predict of
#     production, the path test_models_cli proves equal to the server's)
#   - alias staging moved to 3 while serving: the shadow follows
#   - staging == production or no staging alias: no shadow rows
#   - /metadata names the shadow
. "$(dirname "$0")/../lib.sh"
tl_init shadow
MODEL=credit_score_classification
DB=it_shadow

export MLOPSD_DATABASE_NAME=$DB
export MLOPSD_MODELS_REGISTRY_DIR=$tmp/registry
export MLOPSD_MODELS_SPECS_DIR=config/models
export USER=shadow_tester

# ---- data, three versions, production 1, staging 2
scenario data_and_versions
if sql -e "DROP DATABASE IF EXISTS $DB" &&
   "$BIN" db init >"$tmp/init.log" 2>&1 &&
   "$BIN" db seed >"$tmp/seed.log" 2>&1 &&
   sed 's/{{ ds }}/2025-09-01/g' sql/features.sql | sql $DB; then
  ok database_ready
else
  cat "$tmp"/*.log; bad database_ready
fi
for v in 1 2 3; do
  expect "train_v$v" 0 "$BIN" models train $MODEL --date 2025-09-01 \
    --max-trials 1 --rounds $((v * 12)) --run-id "sh_v$v"
done
expect promote_prod 0 "$BIN" models promote $MODEL 1
expect promote_staging 0 "$BIN" models promote $MODEL 2 --alias staging
has promote_staging_msg "$tmp/out" "$MODEL: staging -> 2 (promote)"

# request items: real customers of the sample data (one body per item)
python3 - "$tmp/items" <<'EOF'
import csv, json, os, sys
d = sys.argv[1]; os.makedirs(d)
num = {"age", "annual_income", "monthly_inhand_salary", "num_bank_accounts",
       "num_credit_card", "interest_rate", "num_of_loan",
       "delay_from_due_date", "num_of_delayed_payment",
       "changed_credit_limit", "num_credit_inquiries", "outstanding_debt",
       "credit_utilization_ratio", "credit_history_age",
       "total_emi_per_month", "amount_invested_monthly", "monthly_balance"}
keys = list(json.load(open("sql/data/predict_example.json"))["data"])
rows = list(csv.DictReader(open("sql/data/credit_score_features.csv")))
seen = set(); i = 0
for r in rows[::37]:
    if r["customer_id"] in seen or i == 60 or any(r[k] == "" for k in num):
        continue
    seen.add(r["customer_id"])
    item = {k: (float(r[k]) if k in num else r[k]) for k in keys}
    item["customer_id"] = int(r["customer_id"])
    json.dump({"data": item}, open("%s/%03d.json" % (d, i), "w"))
    i += 1
EOF

port=$(free_port)
tl_config "$port" $DB config/models
sed -i 's|^  registry_dir: .*|&\n  shadow: true|' "$tmp/mlopsd.yaml"
"$BIN" -c "$tmp/mlopsd.yaml" serve >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_http "http://127.0.0.1:$port/readyz" 30 && ok server_ready ||
  { cat "$tmp/daemon.log"; bad server_ready; }

# post every item; keep the answered ones; answers in $tmp/ans/
post_all() {  # post_all DIR -> prints the number answered 200
  local f n=0 code
  mkdir -p "$1"
  for f in "$tmp"/items/*.json; do
    code=$(curl -s -o "$1/$(basename "$f")" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' --data-binary @"$f" \
      "http://127.0.0.1:$port/predict")
    if [ "$code" = 200 ]; then n=$((n + 1)); else rm -f "$1/$(basename "$f")"; fi
  done
  echo $n
}
# rows of the log / of the shadow table, polled until they reach WANT
wait_rows() {  # wait_rows SQL WANT
  local got i
  for i in $(seq 1 100); do
    got=$(sql $DB -e "$1")
    [ "$got" -ge "$2" ] 2>/dev/null && break
    sleep 0.1
  done
  echo "$got"
}

# ---- every answer logged once, with its shadow row
scenario shadow_rows_logged
curl -s "http://127.0.0.1:$port/metadata" >"$tmp/meta.json"
python3 - "$tmp/meta.json" <<'EOF' && ok metadata_names_shadow || bad metadata_names_shadow
import json, sys
m = json.load(open(sys.argv[1]))
assert m["model_version"] == "1", m
assert m["shadow"] == {"alias": "staging", "model_version": "2",
                       "last_error": None}, m["shadow"]
EOF
n1=$(post_all "$tmp/ans1")
[ "$n1" -ge 40 ] && ok most_items_answered ||
  bad most_items_answered "only $n1 of 60 answered"
got=$(wait_rows "SELECT COUNT(*) FROM credit_predictions_api_log" "$n1")
eq log_rows "$got" "$n1"
got=$(wait_rows "SELECT COUNT(*) FROM prediction_shadow" "$n1")
eq shadow_rows "$got" "$n1"
# exactly one shadow row per logged row, linked by the key
eq shadow_linked "$(sql $DB -e "SELECT COUNT(*) FROM
  credit_predictions_api_log p JOIN prediction_shadow s
  ON s.log_source = p.log_source AND s.log_seq = p.log_seq
  WHERE p.model_version = 1 AND s.model_version = 2
  AND s.model_name = p.model_name AND s.created_at = p.created_at")" "$n1"

# the answers are production's; the shadow rows are version 2's answers
: >"$tmp/mismatch"
mkdir -p "$tmp/v2"
for f in "$tmp"/ans1/*.json; do
  b=$(basename "$f")
  "$BIN" predict $MODEL --file "$tmp/items/$b" >"$tmp/prod.out" 2>/dev/null
  [ "$(cat "$f")" = "$(cat "$tmp/prod.out")" ] || echo "answer $b" >>"$tmp/mismatch"
  "$BIN" predict $MODEL:2 --file "$tmp/items/$b" >"$tmp/v2/$b" 2>/dev/null
done
[ -s "$tmp/mismatch" ] && { head "$tmp/mismatch"; bad answers_are_production; } ||
  ok answers_are_production
sql $DB -e "SELECT p.customer_id, s.prediction, s.confidence
  FROM credit_predictions_api_log p JOIN prediction_shadow s
  ON s.log_source = p.log_source AND s.log_seq = p.log_seq" >"$tmp/shadow.tsv"
python3 - "$tmp/v2" "$tmp/shadow.tsv" <<'EOF' && ok shadow_is_version_2 ||
import glob, json, sys
want = {}
for f in glob.glob(sys.argv[1] + "/*.json"):
    a = json.load(open(f))
    want[str(a["customer_id"])] = (a["predict"], a["confidence"])
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert len(rows) == len(want), (len(rows), len(want))
for cid, pred, conf in rows:
    wp, wc = want[cid]
    assert pred == wp and abs(float(conf) - wc) < 1e-6, (cid, pred, conf, wp, wc)
EOF
  bad shadow_is_version_2

tl_done
