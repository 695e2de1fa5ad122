#!/bin/bash
# tests/fuzz/mkcorpus.sh [BUILD] - (re)write the seed inputs of
# tests/fuzz/corpus/<target>/ from the project's real files.
#
# Seeds are named seed-*; regression inputs of fixed crashes (crash-*) and
# kept findings (finding-*) are never touched.  The seeds are committed,
# so this script is needed only when the real files change.  Needs the
# fuzz build (BUILD, default build/fuzz: prep and spool write their own
# seeds through the library), /usr/bin/python3 with python3-xgboost (model
# seeds) and the course data in /work/shared/data/credit or
# $MLOPSD_DATA_DIR (request seeds).  Keep the corpus small (< 2 MB).
set -eu
BUILD=${1:-build/fuzz}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"
C=tests/fuzz/corpus
DATA=${MLOPSD_DATA_DIR:-$(cd "$(dirname "$0")/../.." && tests/shared_dir.sh)/data/credit}
for t in cfg cron dag meta predict prep spec spool sqlsplit tmpl tree tzif; do
  mkdir -p "$C/$t"
  find "$C/$t" -name 'seed-*' -delete
done

# config loader: the shipped config, and one naming a secret source
cp config/mlopsd.yaml "$C/cfg/seed-mlopsd.yaml"
printf 'auth:\n  admin_token_env: MLOPSD_FUZZ_TOKEN\ndatabase:\n  password_file: /etc/hostname\n  port: 3307\n' \
  >"$C/cfg/seed-secrets.yaml"

# DAG loader: the shipped DAGs and the unit tests' good and bad DAGs; the
# harness puts queries/q.sql next to the file
for f in config/dags/*.yaml; do
  [ -f "$f" ] && cp "$f" "$C/dag/seed-$(basename "$f")"
done
find tests/unit/data/dags -name '*.yaml' -o -name '*.yml' | sort | while read -r f; do
  n=$(echo "${f#tests/unit/data/dags/}" | tr / -)
  sed 's|queries/extract_features.sql|queries/q.sql|' "$f" >"$C/dag/seed-$n"
done

# model specs
for f in config/models/*.yaml tests/unit/data/models/*/*.yaml; do
  n=$(echo "${f#*/models/}" | tr / -)
  cp "$f" "$C/spec/seed-$n"
done

# SQL splitter: no copies; run.sh reads every script the project ships
# or tests with in place (real_seeds)

# /predict bodies: a few dozen real requests, plus batch and edge shapes
if [ -f "$DATA/predict_requests.jsonl" ]; then
  head -30 "$DATA/predict_requests.jsonl" | split -l 1 -a 3 - "$C/predict/seed-req-"
  /usr/bin/python3 - "$DATA/predict_requests.jsonl" "$C/predict" <<'EOF'
import json, sys
rows = [json.loads(l)["data"] for l in open(sys.argv[1]).readlines()[:5]]
out = sys.argv[2]
open(out + "/seed-batch", "w").write(json.dumps({"data": rows}))
bad = dict(rows[0], age=-3, occupation=7, extra="x")
del bad["credit_mix"]
open(out + "/seed-invalid", "w").write(json.dumps({"data": [bad, None, 1]}))
open(out + "/seed-escapes", "w").write(
    '{"data": {"occupation": "\\u00e9\\ud83d\\ude00\\n", "age": 1e2}}')
EOF
fi

# templates: [mode byte][text] NUL [value]; modes 0 plain 1 sql 2 shell
# 3 url 4 header
tm() { printf "\\$(printf '%03o' "$1")%s\0%s" "$2" "$3" >"$C/tmpl/seed-$4"; }
tm 1 "$(cat sql/features.sql)" "2025-09-01" features-sql
tm 1 "SELECT * FROM t WHERE d BETWEEN '{{ ds_add(-7) }}' AND '{{ ds }}' AND k = {{ conf.key }} LIMIT {{ params.lookback_days }}" "O'Brien" sql-conf
tm 2 "python3 train.py --date {{ ds_nodash }} --run '{{ run_id }}' --who {{ conf.who }}" "a b; rm -rf /" shell
tm 3 "https://hooks.example.com/x?dag={{ dag_id }}&run={{ run_id }}&v={{ conf.v }}" "a&b=c d" url
tm 4 "Bearer {{ params.p }}" $'x\r\nInjected: 1' header
tm 0 '{"dag": "{{ dag_id }}", "ds": "{{ ds }}", "n": {{ params.lookback_days }}}' "" plain-body
tm 1 "SELECT 1 -- {{ conf.x }}" "1" sql-conf-in-comment

# cron: [u32 instant][zone: 0 UTC 1 Berlin 2 New_York 3 Seoul 4 Lord_Howe][text]
cr() { printf "\\x10\\x27\\x00\\x2a\\x$(printf '%02x' "$1")%s" "$2" >"$C/cron/seed-$3"; }
cr 0 "0 3 * * *" daily
cr 1 "*/15 2 * 3 SUN" berlin-dst
cr 2 "30 1 * 11 *" newyork-fallback
cr 3 "0 0 13 * FRI" vixie-or
cr 4 "@hourly" lordhowe-macro
cr 0 "0 0 29 2 *" leap
cr 1 "5,10-20/3 */2 1-7 JAN-MAR,DEC MON-FRI" lists

# time zones: real TZif files (with and without DST, half-hour DST, UTC)
for z in Europe/Berlin America/New_York Asia/Seoul Australia/Lord_Howe UTC; do
  cp "/usr/share/zoneinfo/$z" "$C/tzif/seed-$(echo "$z" | tr / -)"
done

# meta.json / sample.json / alias file
printf '1\n' >"$C/meta/seed-alias"
printf ' 2147483647 ' >"$C/meta/seed-alias-max"
/usr/bin/python3 - "$DATA/predict_requests.jsonl" "$C/meta" <<'EOF'
import json, os, sys
meta = {"format": "mlopsd.meta", "format_version": 1,
        "name": "credit_score_classification",
        "creation_time": "2025-09-01T03:00:12Z", "logical_date": "2025-09-01",
        "objective": "multi:softprob", "num_class": 3,
        "classes": ["Poor", "Standard", "Good"],
        "params": {"max_depth": "8", "colsample_bytree": "0.9", "lambda": "5"},
        "metrics": {"accuracy": 0.8123, "f1_macro": 0.7981, "logloss": 0.4412},
        "split": {"val_fraction": 0.3, "seed": 42, "stratify": False}}
open(sys.argv[2] + "/seed-meta.json", "w").write(json.dumps(meta, indent=2))
if os.path.exists(sys.argv[1]):
    rows = [json.loads(l)["data"] for l in open(sys.argv[1]).readlines()[:4]]
    open(sys.argv[2] + "/seed-sample.json", "w").write(json.dumps({"rows": rows}))
EOF

# native model reader: small models of every supported objective + dart
/usr/bin/python3 tests/fuzz/mkmodels.py "$C/tree"

# preprocess.json and spool segments: written by the library itself
MLOPSD_FUZZ_MKSEED="$C/prep" "$BUILD/fuzz_prep"
MLOPSD_FUZZ_MKSEED="$C/spool" "$BUILD/fuzz_spool"
chmod 644 "$C"/*/*
du -sh "$C"
