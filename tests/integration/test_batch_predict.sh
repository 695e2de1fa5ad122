#!/bin/bash
# test_batch_predict.sh - issue 16: batch scoring of any size.
#
#   CLI     `mlopsd predict NAME --input F` on the course's 4,628 request
#           lines (3.5 MB, over server.max_body_bytes as one body): one
#           answer per line, in order, equal (label and confidence) to what
#           the running daemon's /predict answers for the same line; the
#           same rows as CSV (--format csv, --output-format csv) give the
#           same answers; a bad record gets an "error" naming the field and
#           the rest are scored; a bad option is a usage error (2).
#   task    a DAG with a batch_predict task over the feature table of
#           2025-09-01 (credit_score_features_target), run twice with
#           `dags test`: one row per customer (no duplicates), every row
#           with the version and time, and the predictions equal those of
#           the CLI for the same rows (exported as CSV).
. "$(dirname "$0")/lib_fault.sh"
lf_init batch_predict
REQ=$MLOPSD_SHARED/data/credit/predict_requests.jsonl

section setup
lf_fast_spec
lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi

section "mlopsd predict --input: JSON lines"
expect cli_jsonl 0 "$BIN" predict $MODEL --input "$REQ" --output "$T/cli.jsonl"
eq cli_jsonl_lines "$(wc -l <"$T/cli.jsonl")" "$(wc -l <"$REQ")"
has cli_jsonl_summary "$T/err" "4628 records, 4628 scored, 0 invalid"

lf_start
lf_wait_ready 60 && ok daemon_ready || bad daemon_ready
python3 - "$PORT" "$REQ" "$T/cli.jsonl" >"$T/cmp.out" 2>&1 <<'EOF'
import http.client, json, sys
port, req, cli = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
diff = n = 0
for line, ans in zip(open(req), open(cli)):
    c.request("POST", "/predict", line, {"Content-Type": "application/json"})
    r = c.getresponse()
    srv = json.loads(r.read())
    a = json.loads(ans)
    n += 1
    if (r.status != 200 or srv["customer_id"] != a["customer_id"] or
            srv["predict"] != a["predict"] or
            abs(srv["confidence"] - a["confidence"]) > 1e-6 or
            srv["model_version"] != a["model_version"]):
        diff += 1
        if diff < 4:
            print("differs:", srv, a)
print(f"compared={n} differ={diff}")
EOF
cat "$T/cmp.out"
has cli_equals_predict "$T/cmp.out" "compared=4628 differ=0"
lf_term

section "CSV in, CSV out"
python3 - "$REQ" "$T/req.csv" <<'EOF'
import csv, json, sys
rows = [json.loads(l)["data"] for l in open(sys.argv[1])]
cols = sorted({k for r in rows for k in r})
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r[k] for k in cols])
EOF
expect cli_csv 0 "$BIN" predict $MODEL --input "$T/req.csv" \
  --output-format csv --output "$T/cli.csv"
python3 - "$T/cli.jsonl" "$T/cli.csv" >"$T/cmp2.out" <<'EOF'
import csv, json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = list(csv.DictReader(open(sys.argv[2])))
diff = sum(1 for x, y in zip(a, b)
           if str(x["customer_id"]) != y["customer_id"] or
           x["predict"] != y["predict"] or
           abs(x["confidence"] - float(y["confidence"])) > 1e-6 or y["error"])
print(f"rows={len(b)} differ={diff}")
EOF
cat "$T/cmp2.out"
has csv_equals_jsonl "$T/cmp2.out" "rows=4628 differ=0"

section "bad records and options"
{ head -2 "$REQ"; echo '{"data": {"customer_id": 7, "age": -5}}'; echo 'not json';
  sed -n 3p "$REQ"; } >"$T/bad.jsonl"
expect cli_bad_records 0 "$BIN" predict $MODEL --input "$T/bad.jsonl"
eq bad_records_lines "$(wc -l <"$T/out")" 5
has bad_record_named "$T/out" '"customer_id":7,"record":3,"error":"age: must be'
has bad_json_named "$T/out" '"record":4,"error":"not valid JSON"'
eq bad_records_rest_scored "$(grep -c '"predict":' "$T/out")" 3
expect cli_bad_format 2 "$BIN" predict $MODEL --input "$REQ" --format xml
expect cli_input_and_json 2 "$BIN" predict $MODEL --input "$REQ" --json '{}'
expect cli_missing_file 1 "$BIN" predict $MODEL --input "$T/nope.jsonl"
has cli_missing_file_named "$T/err" "nope.jsonl"

section "batch_predict task, twice"
cat >"$T/dags/score.yaml" <<EOF
dag_id: batch_score
schedule: null
start_date: 2025-01-01
tasks:
  - id: score
    type: batch_predict
    model: $MODEL
    sql: SELECT * FROM credit_score_features_target WHERE base_dt = '{{ ds }}'
    table: credit_score_batch_predictions
EOF
expect dag_validates 0 "$BIN" dags validate "$T/dags/score.yaml"
expect task_run_1 0 "$BIN" dags test batch_score --date 2025-09-01
expect task_run_2 0 "$BIN" dags test batch_score --date 2025-09-01
src_n=$(sql "$DB" -e "SELECT COUNT(*) FROM credit_score_features_target WHERE base_dt = '2025-09-01'")
src_c=$(sql "$DB" -e "SELECT COUNT(DISTINCT customer_id) FROM credit_score_features_target WHERE base_dt = '2025-09-01'")
got=$(sql "$DB" -e "SELECT COUNT(*), COUNT(DISTINCT customer_id), SUM(model_version = 1), SUM(scored_at IS NOT NULL), SUM(prediction IS NULL) FROM credit_score_batch_predictions WHERE ds = '2025-09-01'")
echo "  source rows=$src_n customers=$src_c; table: rows, customers, version 1, with time, unscored = $got"
set -- $got
eq task_one_row_per_customer "$1/$2" "$src_c/$src_c"
eq task_version_and_time "$3/$4" "$1/$1"
check task_source_nonempty test "${src_n:-0}" -gt 1000
LF_FIGURES="cli: 4628 lines; task: $src_n source rows, $1 rows stored ($5 unscored)"

# the task's answers == the CLI's on the same rows (exported as CSV).
# FLOAT columns as the task reads them (libmariadb's binary protocol,
# printed in C as the shortest text that gives the same float): exported
# as exact doubles (the client would print 6 digits) and shortened here.
floats=$(sql "$DB" -e "SELECT GROUP_CONCAT(COLUMN_NAME) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'credit_score_features_target'
  AND DATA_TYPE = 'float'")
cols=$(sql "$DB" -e "SELECT GROUP_CONCAT(IF(DATA_TYPE = 'float',
  CONCAT(COLUMN_NAME, ' + 0e0 AS ', COLUMN_NAME), COLUMN_NAME)
  ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'credit_score_features_target'")
sql "$DB" -e "SELECT $cols FROM credit_score_features_target WHERE base_dt = '2025-09-01'" \
  --column-names >"$T/feat.tsv"
python3 - "$T/feat.tsv" "$T/feat.csv" "$floats" <<'EOF'
import csv, struct, sys
fl = set(sys.argv[3].split(","))
def f32(t):
    v = struct.unpack("f", struct.pack("f", float(t)))[0]
    for p in range(6, 10):  # as num_format in src/db.c
        s = "%.*g" % (p, v)
        if struct.unpack("f", struct.pack("f", float(s)))[0] == v:
            return s
    return t
with open(sys.argv[1]) as f, open(sys.argv[2], "w", newline="") as g:
    w = csv.writer(g)
    names = None
    for line in f:
        v = line.rstrip("\n").split("\t")
        if names is None:
            names = v
        else:
            v = ["" if x == "NULL" else f32(x) if n in fl else x
                 for n, x in zip(names, v)]
        w.writerow(v)
EOF
expect cli_feat 0 "$BIN" predict $MODEL --input "$T/feat.csv" \
  --output-format csv --output "$T/feat_cli.csv"
sql "$DB" -e "SELECT customer_id, IFNULL(prediction, ''), IFNULL(confidence, '') FROM credit_score_batch_predictions WHERE ds = '2025-09-01'" >"$T/task.tsv"
python3 - "$T/feat_cli.csv" "$T/task.tsv" >"$T/cmp3.out" <<'EOF'
import csv, sys
cli = {r["customer_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
diff = n = 0
for line in open(sys.argv[2]):
    cid, pred, conf = line.rstrip("\n").split("\t")
    c = cli.get(cid)
    n += 1
    if (c is None or c["predict"] != pred or
            (pred and abs(float(c["confidence"]) - float(conf)) > 1e-6)):
        diff += 1
print(f"compared={n} differ={diff}")
EOF
cat "$T/cmp3.out"
check task_equals_cli grep -q "compared=${1:-x} differ=0" "$T/cmp3.out"
lf_done
