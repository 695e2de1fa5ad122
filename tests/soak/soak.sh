#!/bin/bash
# tests/soak/soak.sh - a 10-minute soak of `mlopsd serve` with mixed
# traffic, RSS and open file descriptors of the daemon sampled every 10 s.
# Not part of `make test` (it takes SOAK_SECONDS, default 600).
#
#   tests/soak/soak.sh [OUTDIR]         (after `make`; as root or a user)
#
# Traffic, all at once:
#   - predictions: wrk (2 threads, 4 connections, SOAK_DELAY_MS between
#     the requests of a connection: about 500-800 requests/s), every
#     request with its own customer_id (tests/soak/soak.lua);
#   - admin API calls every 2 s (DAGs, runs, a task log, models, serving
#     figures, metrics) with the Bearer token;
#   - a DAG every minute (schedule "* * * * *"): sql insert, shell, http
#     GET of the daemon's /healthz;
#   - two model swaps through the admin API (promote at 1/3 and 2/3 of
#     the run).
# Sampled every 10 s into OUTDIR/soak.csv: seconds, RSS (kB), open fds,
# threads, requests answered so far, prediction rows logged so far.
#
# At the end the daemon is stopped with SIGTERM and the run is checked:
# daemon exit 0; every prediction answered 200 logged exactly once (rows
# = 200 answers, up to the requests in flight when wrk stopped); every
# minute's DAG run succeeded; fds at the end <= fds after warm-up (the
# first sample at 60 s or later) + 8; RSS at the end <= RSS + 10% of the
# first sample 60 s after the last model swap (each swap loads a model
# and may leave the heap larger, so the bound is on the steady part; the
# end sample is taken with wrk stopped, the daemon still up).
# Exit 0 when all hold.  Uses the MariaDB of MLOPSD_DATABASE_* if set,
# else starts a private one (tests/mariadb.sh) and stops it at the end.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC" || exit 1
export MLOPSD_SRC=$SRC
export MLOPSD_BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
SECS=${SOAK_SECONDS:-600}
DELAY=${SOAK_DELAY_MS:-4}
OUT=${1:-$SRC/build/soak}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
OWN_DB=""
if [ -z "${MLOPSD_DATABASE_HOST:-}" ]; then
  OWN_DB=$(mktemp -d /tmp/mlopsd-soak-db.XXXXXX)
  eval "$(tests/mariadb.sh start "$OWN_DB")" || exit 1
fi
. "$SRC/tests/integration/lib_fault.sh"
lf_init soak
TOK="soak-admin-token"
WRK=""; ADMIN=""; SAMPLER=""
LF_CLEANUP_EXTRA='for p in $WRK $ADMIN $SAMPLER; do kill $p 2>/dev/null; done;
  cp "$T/daemon.log" "$OUT/daemon.log" 2>/dev/null;
  [ -n "$OWN_DB" ] && { "$SRC/tests/mariadb.sh" stop "$OWN_DB"; rm -rf "$OWN_DB"; }'
log() { echo "[$(date +%T)] $*"; }

# ---- set-up: data, three versions (the first in production), the DAG
log "set-up in $T (database $DB), results in $OUT"
lf_fast_spec "{max_depth: [4, 6]}" 60
lf_config
lf_db_prepare || exit 1
"$BIN" models train $MODEL --date 2025-09-01 --run-id soak_v1 >"$T/train.log" 2>&1 &&
"$BIN" models train $MODEL --date 2025-09-01 --run-id soak_v2 >>"$T/train.log" 2>&1 &&
"$BIN" models train $MODEL --date 2025-09-01 --run-id soak_v3 >>"$T/train.log" 2>&1 &&
"$BIN" models promote $MODEL 1 >>"$T/train.log" 2>&1 || { cat "$T/train.log"; exit 1; }
sql "$DB" -e "CREATE TABLE soak_ticks (id INT AUTO_INCREMENT PRIMARY KEY,
  run_id VARCHAR(250), ds VARCHAR(10), at DATETIME DEFAULT CURRENT_TIMESTAMP)"
cat >"$T/dags/soak.yaml" <<EOF
dag_id: soak_minutely
schedule: "* * * * *"
start_date: 2025-01-01
catchup: false
max_active_runs: 1
tasks:
  - id: tick
    type: sql
    sql: INSERT INTO soak_ticks (run_id, ds) VALUES ('{{ run_id }}', '{{ ds }}');
  - id: shell
    type: shell
    depends_on: [tick]
    command: echo "tick {{ run_id }}"; ls / | wc -l
  - id: health
    type: http
    depends_on: [shell]
    url: "http://127.0.0.1:$PORT/healthz"
EOF

lf_start MLOPSD_ADMIN_TOKEN=$TOK
lf_wait_ready 60 || { tail -20 "$T/daemon.log"; exit 1; }
DAEMON=$(cat "$T/mlopsd.pid")
log "daemon pid $DAEMON on port $PORT"

# ---- sampler
echo "t_s,rss_kb,fds,threads,http_200,log_rows" >"$OUT/soak.csv"
sample() {
  local t=$1 rss fds thr n200 rows
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status" 2>/dev/null)
  thr=$(awk '/^Threads/ {print $2}' "/proc/$DAEMON/status" 2>/dev/null)
  fds=$(ls "/proc/$DAEMON/fd" 2>/dev/null | wc -l)
  n200=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '
    /^mlopsd_http_requests_total\{/ && /route="\/predict"/ && /status="200"/ {s += $2}
    END {print s + 0}')
  rows=$(sql "$DB" -e "SELECT COUNT(*) FROM credit_predictions_api_log" 2>/dev/null)
  echo "$t,${rss:-},$fds,${thr:-},$n200,${rows:-}" >>"$OUT/soak.csv"
}
( t0=$SECONDS
  while kill -0 "$DAEMON" 2>/dev/null; do
    sample $((SECONDS - t0)); sleep 10
  done ) &
SAMPLER=$!

# ---- predictions
wrk -t2 -c4 -d"${SECS}s" --timeout 10s -s "$SRC/tests/soak/soak.lua" \
  "http://127.0.0.1:$PORT/predict" -- "$BODY" "$DELAY" >"$OUT/wrk.txt" 2>&1 &
WRK=$!

# ---- admin calls every 2 s, two promotions
api() {
  curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' "$@"
}
( n=0; t0=$SECONDS; p2=0; p3=0
  while [ $((SECONDS - t0)) -lt "$SECS" ]; do
    {
      api "http://127.0.0.1:$PORT/api/v2/dags"
      api "http://127.0.0.1:$PORT/api/v2/dags/soak_minutely/dagRuns?limit=5"
      run=$(curl -s -H "Authorization: Bearer $TOK" \
        "http://127.0.0.1:$PORT/api/v2/dags/soak_minutely/dagRuns?limit=1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["dag_runs"]; print(r[0]["dag_run_id"] if r else "")' 2>/dev/null)
      [ -n "$run" ] && api "http://127.0.0.1:$PORT/api/v2/dags/soak_minutely/dagRuns/$run/taskInstances/shell/logs/1"
      api "http://127.0.0.1:$PORT/api/v2/models"
      api "http://127.0.0.1:$PORT/api/v2/models/$MODEL"
      api "http://127.0.0.1:$PORT/api/v2/serving"
      api "http://127.0.0.1:$PORT/metrics"
      if [ $p2 = 0 ] && [ $((SECONDS - t0)) -ge $((SECS / 3)) ]; then
        p2=1; echo "promote 2: $(api -X POST -d '{"version": 2}' \
          "http://127.0.0.1:$PORT/api/v2/models/$MODEL/promote") at $((SECONDS - t0)) s" >&2
      fi
      if [ $p3 = 0 ] && [ $((SECONDS - t0)) -ge $((2 * SECS / 3)) ]; then
        p3=1; echo "promote 3: $(api -X POST -d '{"version": 3}' \
          "http://127.0.0.1:$PORT/api/v2/models/$MODEL/promote") at $((SECONDS - t0)) s" >&2
      fi
    } >>"$OUT/admin_codes.txt" 2>>"$OUT/promotions.txt"
    n=$((n + 1)); sleep 2
  done ) &
ADMIN=$!

log "running for ${SECS}s (wrk, admin calls, DAG every minute, two promotions)"
wait $WRK; WRK=""
wait $ADMIN; ADMIN=""
sleep 2
sample end
log "stopping the daemon"
lf_term
wait $SAMPLER 2>/dev/null; SAMPLER=""

# ---- results
cat "$OUT/wrk.txt"
ok200=$(sed -n 's/^soak: 200=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")
non200=$(sed -n 's/^soak: .*other=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")
rows=$(sql "$DB" -e "SELECT COUNT(*) FROM credit_predictions_api_log")
distinct=$(sql "$DB" -e "SELECT COUNT(DISTINCT customer_id) FROM credit_predictions_api_log")
versions=$(sql "$DB" -e "SELECT GROUP_CONCAT(DISTINCT model_version ORDER BY model_version) FROM credit_predictions_api_log")
runs=$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE dag_id='soak_minutely'")
runs_ok=$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE dag_id='soak_minutely' AND state='success'")
ticks=$(sql "$DB" -e "SELECT COUNT(*), COUNT(DISTINCT run_id) FROM soak_ticks" | tr '\t' '/')
admin_total=$(wc -l <"$OUT/admin_codes.txt")
admin_bad=$(grep -vc '^200$' "$OUT/admin_codes.txt")
promos=$(tr '\n' ';' <"$OUT/promotions.txt")
read -r _ rss0 fd0 thr0 _ <<<"$(sed -n 2p "$OUT/soak.csv" | tr ',' ' ')"
read -r tw rssw fdw thrw _ <<<"$(awk -F, 'NR > 1 && $1 != "end" && $1 >= 60 {print; exit}' \
  "$OUT/soak.csv" | tr ',' ' ')"
read -r _ rss1 fd1 thr1 _ <<<"$(grep '^end,' "$OUT/soak.csv" | tr ',' ' ')"
# after the last swap settled: the first sample >= 2/3 of the run + 60 s
read -r tl rssl fdl _ <<<"$(awk -F, -v t=$(( 2 * SECS / 3 + 60 )) \
  'NR > 1 && $1 != "end" && $1 >= t {print; exit}' "$OUT/soak.csv" | tr ',' ' ')"
rssmax=$(awk -F, 'NR > 1 && $2 > m {m = $2} END {print m}' "$OUT/soak.csv")
fdmax=$(awk -F, 'NR > 1 && $3 > m {m = $3} END {print m}' "$OUT/soak.csv")
cat <<EOF | tee "$OUT/summary.txt"
soak: ${SECS}s, daemon exit $DRC
predictions: 200 answers $ok200, other answers $non200, log rows $rows ($distinct distinct customer_ids), model versions served $versions
admin calls: $admin_total, non-200: $admin_bad; promotions: $promos
DAG soak_minutely: $runs runs, $runs_ok success; ticks rows/runs $ticks
RSS kB: start $rss0, after warm-up ($tw s) $rssw, after the last swap ($tl s) $rssl, end $rss1, max $rssmax
open fds: start $fd0, after warm-up $fdw, end $fd1, max $fdmax; threads start $thr0, end $thr1
samples: $OUT/soak.csv
EOF
okall=1
chk() { if eval "$2"; then echo "ok $1"; else echo "not ok $1"; okall=0; fi; }
chk daemon_exit_0 '[ "$DRC" = 0 ]'
chk no_duplicate_rows '[ "$rows" = "$distinct" ]'
chk rows_match_answers '[ "$rows" -ge "${ok200:-0}" ] && [ "$rows" -le $(( ${ok200:-0} + 4 )) ]'
chk all_200 '[ "${non200:-1}" = 0 ]'
chk dag_every_minute '[ "$runs" -ge $(( SECS / 60 - 1 )) ] && [ "$runs_ok" -ge $(( runs - 1 )) ]'
chk admin_all_200 '[ "$admin_bad" = 0 ]'
chk two_swaps '[ "$(grep -c " 200 at " "$OUT/promotions.txt")" = 2 ]'
chk fds_bounded '[ "$fd1" -le $(( fdw + 8 )) ]'
chk rss_flat_after_last_swap '[ "$rss1" -le $(( rssl + rssl / 10 )) ]'
[ "$okall" = 1 ]
