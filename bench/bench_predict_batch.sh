#!/bin/bash
# bench/bench_predict_batch.sh - `mlopsd predict --input` on ROWS synthetic
# rows (default 1,000,000): the course's request lines repeated with new
# customer_ids, as JSON lines and as CSV.  Prints rows/s, wall time and
# the peak RSS of the process (GNU time's %M): the RSS must not grow with
# the input (bounded memory, issue 16).  Figures, never pass/fail.
#
#   bench/bench_predict_batch.sh [ROWS] [BUILD]
set -u
cd "$(dirname "$0")/.." || exit 1
ROWS=${1:-1000000}
BUILD=${2:-build}
BIN=$PWD/$BUILD/mlopsd
SHARED=${MLOPSD_SHARED:-$(tests/shared_dir.sh)}
REQ=$SHARED/data/credit/predict_requests.jsonl
T=$(mktemp -d /tmp/bench_predict_batch.XXXXXX)
trap 'rm -rf "$T"' EXIT
[ -x "$BIN" ] && [ -x "$BUILD/tests/integration/test_serve" ] ||
  { echo "build first: make tests-build"; exit 1; }
"$BUILD/tests/integration/test_serve" --make-registry "$T/reg" >/dev/null 2>&1 ||
  { echo "could not build the registry"; exit 1; }
printf 'models: {registry_dir: %s, specs_dir: %s/config/models}\n' \
  "$T/reg" "$PWD" >"$T/c.yaml"
export MLOPSD_CONFIG=$T/c.yaml

python3 - "$REQ" "$ROWS" "$T/in.jsonl" "$T/in.csv" <<'EOF'
import csv, json, sys
src = [json.loads(l)["data"] for l in open(sys.argv[1])]
n = int(sys.argv[2])
cols = sorted({k for r in src for k in r})
with open(sys.argv[3], "w") as j, open(sys.argv[4], "w", newline="") as c:
    w = csv.writer(c)
    w.writerow(cols)
    for i in range(n):
        r = dict(src[i % len(src)], customer_id=1000000 + i)
        j.write(json.dumps(r, separators=(",", ":")) + "\n")
        w.writerow(["" if r.get(k) is None else r[k] for k in cols])
EOF
echo "rows=$ROWS jsonl_mb=$(( $(stat -c %s "$T/in.jsonl") >> 20 )) csv_mb=$(( $(stat -c %s "$T/in.csv") >> 20 )) load=$(cut -d' ' -f1-3 /proc/loadavg)"
for f in jsonl csv; do
  /usr/bin/time -f "%e %M %U %S" -o "$T/time" "$BIN" predict \
    credit_score_classification --input "$T/in.$f" --format $f \
    --output "$T/out" 2>"$T/err" >/dev/null || { cat "$T/err"; exit 1; }
  read -r wall rss user sys <"$T/time"
  lines=$(wc -l <"$T/out")
  echo "format=$f rows=$lines wall_s=$wall rows_per_s=$(python3 -c "print(round($lines/$wall))") cpu_us_per_row=$(python3 -c "print(round(($user+$sys)*1e6/$lines,2))") peak_rss_mb=$((rss / 1024)) $(tail -1 "$T/err" | sed 's/^mlopsd: predict: //')"
done
# the same on a tenth of the rows: the peak RSS must be the same
head -n $((ROWS / 10)) "$T/in.jsonl" >"$T/small.jsonl"
/usr/bin/time -f "%M" -o "$T/time" "$BIN" predict credit_score_classification \
  --input "$T/small.jsonl" --output "$T/out" 2>/dev/null
echo "format=jsonl rows=$((ROWS / 10)) peak_rss_mb=$(( $(cat "$T/time") / 1024 )) (a tenth of the input)"
