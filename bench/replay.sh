#!/bin/bash
# replay.sh - replay the course's history day by day (issue 7, "Replay"):
#
#   mlopsd dags backfill credit_score_classification_ct \
#     --from 2025-09-01 --to 2025-10-05 --local
#
# on freshly seeded data: a MariaDB of its own (tests/mariadb.sh in a temp
# dir), `db init` + `db seed` (the course tables from sql/data), an empty
# registry in a temp dir, the repo's config/dags and config/models (the
# full 27-point grid, the DAG's validate tolerance).  Each logical date
# extracts the month before it (sql/features.sql), trains, validates and
# deploys only a model that passes; dates whose window has no rows fail
# their train task and the replay goes on with the next date.
#
# Prints the backfill's line per date, `mlopsd models history`, and the
# figures: wall time, runs succeeded / failed, versions registered, deploys
# and skips.  Then one line per logical date (version trained or why not,
# the gate's decision and its reason) and, for every deployed version, its
# accuracy and calibration error on customers no version trained on
# (bench/unseen.py: the 4,628 August Kaggle customers outside the course
# tables, with their labels, from ../shared/data/credit) beside the
# version it replaced, flagging a drop of more than the spec's
# validate.max_regression.  Never judges the replay otherwise; exit 1
# only if the replay itself could not run (no database, the backfill
# crashed or printed no summary, the unseen data missing).
#
#   REPLAY_FROM / REPLAY_TO   the range (default 2025-09-01 / 2025-10-05)
#   REPLAY_VERBOSE=1          print every task log line (backfill --verbose)
#   REPLAY_MAX_TRIALS=N       only the first N grid points per version (a
#                             copy of the spec with a cut grid; the figures
#                             then say so)
#   bash bench/replay.sh      (or bench/run.sh build replay)
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
FROM=${REPLAY_FROM:-2025-09-01}
TO=${REPLAY_TO:-2025-10-05}
DAG=credit_score_classification_ct
MODEL=credit_score_classification
TMP=$(mktemp -d /tmp/mlopsd-replay.XXXXXX)
DBDIR=""

cleanup() {
  [ -n "$DBDIR" ] && "$SRC/tests/mariadb.sh" stop "$DBDIR" >/dev/null 2>&1
  rm -rf "$TMP" "$DBDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$BIN" ]; then
  echo "replay: $BIN not built (make)" >&2
  exit 1
fi
cd "$SRC" || exit 1   # the CT DAG's sql_file is relative to the cwd
DBDIR=$(mktemp -d /tmp/mlopsd-replay-db.XXXXXX)
eval "$("$SRC/tests/mariadb.sh" start "$DBDIR")" || exit 1
export MLOPSD_DATABASE_NAME=replay
export MLOPSD_SQL_DIR=$SRC/sql/migrations
export MLOPSD_MODELS_REGISTRY_DIR=$TMP/registry
export MLOPSD_MODELS_SPECS_DIR=$SRC/config/models
if [ -n "${REPLAY_MAX_TRIALS:-}" ]; then
  # the first N grid points: keep the first N values of the first axis
  # and the first value of the others (the DAG's train task has no
  # max_trials)
  mkdir -p "$TMP/specs"
  python3 - "$SRC/config/models/$MODEL.yaml" "$TMP/specs/$MODEL.yaml" \
      "$REPLAY_MAX_TRIALS" <<'PY' || exit 1
import re, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out, in_grid, first = [], False, True
for line in open(src):
    if re.match(r"^  grid:", line):
        in_grid = True
    elif in_grid and not re.match(r"^    \w+: \[", line):
        in_grid = False
    m = re.match(r"^(    \w+: )\[(.*)\](.*)$", line) if in_grid else None
    if m:
        vals = [v.strip() for v in m.group(2).split(",")]
        vals = vals[:n] if first else vals[:1]
        first = False
        line = "%s[%s]\n" % (m.group(1), ", ".join(vals))
    out.append(line)
open(dst, "w").write("".join(out))
PY
  export MLOPSD_MODELS_SPECS_DIR=$TMP/specs
  echo "grid cut to $REPLAY_MAX_TRIALS trial(s) per version (REPLAY_MAX_TRIALS)"
fi
export MLOPSD_SCHEDULER_DAGS_DIR=$SRC/config/dags
export MLOPSD_LOGGING_LEVEL=warn
export MYSQL_PWD=$MLOPSD_DATABASE_PASSWORD
SQL() {
  mariadb -h "$MLOPSD_DATABASE_HOST" -P "$MLOPSD_DATABASE_PORT" \
    -u "$MLOPSD_DATABASE_USER" -N -B replay -e "$1"
}

"$BIN" db init >"$TMP/init.log" 2>&1 || { cat "$TMP/init.log"; exit 1; }
"$BIN" db seed >"$TMP/seed.log" 2>&1 || { cat "$TMP/seed.log"; exit 1; }
echo "seeded: $(SQL "SELECT COUNT(*) FROM credit_score") labels, $(SQL \
  "SELECT COUNT(*) FROM credit_score_features") feature rows"
echo

verbose=()
[ -n "${REPLAY_VERBOSE:-}" ] && verbose=(--verbose)
t0=$(date +%s.%N)
"$BIN" dags backfill $DAG --from "$FROM" --to "$TO" --local \
  "${verbose[@]+"${verbose[@]}"}" | tee "$TMP/backfill.out"
rc=${PIPESTATUS[0]}
t1=$(date +%s.%N)
if ! grep -q "^backfill $DAG: .* date(s): " "$TMP/backfill.out" ||
   [ "$rc" -gt 1 ]; then
  echo "replay: the backfill did not complete (exit $rc)" >&2
  exit 1
fi

echo
"$BIN" models history $MODEL
echo
dates=$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*  (success|failed) ' \
  "$TMP/backfill.out")
ok=$(SQL "SELECT COUNT(*) FROM dag_run WHERE dag_id = '$DAG' AND
  run_type = 'backfill' AND state = 'success'")
bad=$(SQL "SELECT COUNT(*) FROM dag_run WHERE dag_id = '$DAG' AND
  run_type = 'backfill' AND state = 'failed'")
versions=$(find "$TMP/registry/$MODEL/versions" -mindepth 1 -maxdepth 1 \
  -type d 2>/dev/null | wc -l)
deploys=$(SQL "SELECT COUNT(*) FROM deployment WHERE model = '$MODEL' AND
  action = 'deploy'")
skips=$(SQL "SELECT COUNT(*) FROM deployment WHERE model = '$MODEL' AND
  action = 'skip'")
notrain=$(SQL "SELECT COUNT(*) FROM task_instance t JOIN dag_run r ON
  r.run_id = t.run_id WHERE r.dag_id = '$DAG' AND r.run_type = 'backfill'
  AND t.task_id = 'model_training' AND t.state = 'failed'")
trials=$(python3 -c '
import glob, json, sys
t = [json.load(open(f))["trial_count"] for f in glob.glob(sys.argv[1])]
print("%d-%d" % (min(t), max(t)) if t else "-")' \
  "$TMP/registry/$MODEL/versions/*/meta.json")
prod=$(cat "$TMP/registry/$MODEL/aliases/production" 2>/dev/null || echo -)
awk -v a="$t0" -v b="$t1" -v n="$dates" -v ok="$ok" -v bad="$bad" \
    -v ver="$versions" -v dep="$deploys" -v sk="$skips" -v nt="$notrain" \
    -v prod="$prod" -v from="$FROM" -v to="$TO" -v tr="$trials" 'BEGIN {
  s = b - a
  printf "replay %s..%s: %d logical dates in %.1f s (%d min %02d s, %.1f s a date)\n",
         from, to, n, s, int(s / 60), int(s % 60), n ? s / n : 0
  printf "  runs: %d succeeded, %d failed (%d of them: no training rows)\n",
         ok, bad, nt
  printf "  versions trained: %d (grid trials per version: %s); deployed: %d; kept out by validate: %d; production: %s\n",
         ver, tr, dep, sk, prod
}'

# ---- per date: trained or why not, and the gate's decision --------------
echo
echo "per logical date:"
SQL "SELECT LEFT(SUBSTRING_INDEX(r.run_id, '__', -1), 10), t.state,
       COALESCE((SELECT d.action FROM deployment d WHERE d.dag_run_id = r.id
                 AND d.action IN ('pass', 'skip', 'deploy')
                 ORDER BY d.id LIMIT 1), '-'),
       COALESCE((SELECT d.to_version FROM deployment d WHERE
                 d.dag_run_id = r.id ORDER BY d.id LIMIT 1), ''),
       COALESCE((SELECT LEFT(d.reason, 150) FROM deployment d WHERE
                 d.dag_run_id = r.id AND d.action IN ('skip', 'pass')
                 ORDER BY d.id LIMIT 1), ''),
       COALESCE((SELECT LEFT(REPLACE(l.line, '\n', ' '), 150) FROM task_log l
                 WHERE l.run_id = r.run_id AND l.task_id = 'model_training'
                 AND (l.line LIKE '%train_window%' OR l.line LIKE
                      '%no training rows%' OR l.line LIKE '%version %')
                 ORDER BY l.id DESC LIMIT 1), '')
  FROM dag_run r JOIN task_instance t ON t.run_id = r.run_id
   AND t.task_id = 'model_training'
 WHERE r.dag_id = '$DAG' AND r.run_type = 'backfill'
 ORDER BY r.logical_date" 2>"$TMP/perdate.err" |
  awk -F'\t' '{ printf "  %s train=%-7s gate=%-6s %s %s\n", $1, $2, $3,
                  ($4 != "" ? "v" $4 : ""), ($5 != "" ? $5 : $6) }'
[ -s "$TMP/perdate.err" ] && sed 's/^/  (per-date query: /; s/$/)/' \
  "$TMP/perdate.err"

# ---- unseen customers: every version deployed to production -------------
echo
maxreg=$(python3 -c '
import re, sys
m = re.search(r"max_regression:\s*([0-9.]+)", open(sys.argv[1]).read())
print(m.group(1) if m else "0.02")' "$MLOPSD_MODELS_SPECS_DIR/$MODEL.yaml")
# every version trained, deployed or not: how the refused compare
trained=$(find "$TMP/registry/$MODEL/versions" -mindepth 1 -maxdepth 1 \
  -type d -printf '%f\n' 2>/dev/null | sort -n | tr '\n' ' ')
deployed=$(SQL "SELECT to_version FROM deployment WHERE model = '$MODEL'
  AND alias = 'production' AND action IN ('deploy', 'promote') ORDER BY id")
if [ -z "$deployed" ]; then
  echo "unseen customers: no version was deployed"
  exit 0
fi
echo "unseen customers (bench/unseen.py; max_regression $maxreg):"
python3 "$SRC/bench/unseen.py" "$BIN" "$MODEL" $trained \
  >"$TMP/unseen.all" || exit 1
for v in $deployed; do
  grep " v$v: " "$TMP/unseen.all"
done >"$TMP/unseen.out"
awk -v mr="$maxreg" '
  { v = $3; sub(/^v/, "", v); acc = ""; ece = ""; er = ""
    for (i = 4; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "accuracy") acc = kv[2]
      if (kv[1] == "ece") ece = kv[2]
      if (kv[1] == "ece_raw") er = kv[2]
      if (kv[1] == "n") n = kv[2]
    }
    verdict = "first deployed"
    if (NR > 1) {
      d = acc - prev
      verdict = sprintf("vs v%s %+.4f: %s", pv, d,
                        d < -mr ? "WORSE by more than max_regression" : "ok")
      if (d < -mr) worse++
    }
    printf "  v%-3s n=%d accuracy=%.4f ECE %.4f -> %.4f (calibrated)  %s\n",
           v, n, acc, er, ece, verdict
    prev = acc; pv = v; cnt++
  }
  END { printf "  deployed versions: %d; worse than the one they replaced by more than %s: %d\n",
               cnt, mr, worse + 0 }' "$TMP/unseen.out"
# the versions kept out, on the same customers, against the first
# deployed version (production for most of the replay)
first=$(echo $deployed | cut -d' ' -f1)
awk -v first="$first" -v dep=" $(echo $deployed) " -v mr="$maxreg" '
  { v = $3; sub(/^v/, "", v); sub(/:$/, "", v)
    for (i = 4; i <= NF; i++) { split($i, kv, "="); f[v, kv[1]] = kv[2] }
    vs[++n] = v }
  END {
    base = f[first, "accuracy"]
    for (i = 1; i <= n; i++) {
      v = vs[i]
      if (index(dep, " " v " ")) continue
      a = f[v, "accuracy"]; k++; s += a
      if (k == 1 || a < lo) lo = a
      if (k == 1 || a > hi) hi = a
      if (a < base - mr) w++
      if (a > base) b++
    }
    if (k)
      printf "  kept out: %d versions, unseen accuracy %.4f-%.4f (mean %.4f); worse than v%s (%.4f) by more than %s: %d; better than it: %d\n",
             k, lo, hi, s / k, first, base, mr, w + 0, b + 0
  }' "$TMP/unseen.all"
