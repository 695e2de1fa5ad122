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
# and skips.  Never judges them; exit 1 only if the replay itself could not
# run (no database, the backfill crashed or printed no summary).
#
#   REPLAY_FROM / REPLAY_TO   the range (default 2025-09-01 / 2025-10-05)
#   REPLAY_VERBOSE=1          print every task log line (backfill --verbose)
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
