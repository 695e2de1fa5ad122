# lib_fault.sh - helpers shared by test_security.sh, test_fault_*.sh and
# tests/soak/soak.sh (sourced, not run: run.sh only runs test_*.sh).
#
# Each test gets its own temp dir ($T), its own database ($DB), a config
# file ($T/mlopsd.yaml) with its own port, spool, registry, DAG and spec
# directories, and starts the real daemon ($MLOPSD_BIN) against the test
# MariaDB that tests/run.sh started (MLOPSD_DATABASE_*, MLOPSD_TEST_DB_DIR).
#
#   lf_init NAME            temp dir, database name it_NAME, cleanup trap
#   lf_fast_spec            $T/models: the course spec with a small grid
#   lf_config [YAML...]     write $T/mlopsd.yaml (extra lines appended)
#   lf_db_prepare           drop/create $DB, db init, db seed, features of
#                           2025-09-01
#   lf_train_promote N      train N versions with `models train`, promote
#                           version 1
#   lf_start [ENV=V...]     start the daemon ($DPID, log $T/daemon.log)
#   lf_wait_ready [S]       wait for /readyz 200
#   lf_term / lf_kill9      graceful stop (exit code in $DRC) / SIGKILL
#   lf_trigger DAG DATE     queue a run (RUN=its id)
#   lf_load NAME START      the load generator in the background (LOAD)
#   lf_wait_run RUN [S]     a DAG run's final state
#   lf_drained [S]          0 once the spool and the log's backlog are empty
#   lf_metric NAME          a value from /metrics (first matching series)
#   lf_predict ID           POST /predict with customer_id ID; prints
#                           the status code
#   section NAME            a scenario (the unit tests/run.sh counts)
#   ok/bad/skip/expect/has/hasnt/eq/check, sql, free_port: tests/lib.sh
#   lf_done                 sanitizer reports in the daemons' logs, the
#                           figures line and the summary line
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "${MLOPSD_SRC:-$(dirname "${BASH_SOURCE[0]}")/../..}" || exit 1
SRC=$(pwd)
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
MODEL=credit_score_classification
BODY=$SRC/sql/data/predict_example.json
DPID=""; DRC=""; T=""; DB=""; PORT=""
LF_CLEANUP_EXTRA=""

section() { scenario "$@"; }   # the fault tests' word for a scenario

lf_done() {
  # under `make asan` / `make tsan` the daemons' reports land in their logs
  local f
  for f in "$T"/daemon*.log; do
    [ -f "$f" ] || continue
    if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$f"; then
      grep -m3 -A12 -E 'Sanitizer|runtime error:' "$f" | sed 's/^/  | /'
      bad "sanitizer_report_in_$(basename "$f")"
    fi
  done
  echo "figures: ${LF_FIGURES:-}"
  tl_done
}

lf_cleanup() {
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then lf_kill9; fi
  [ -n "$LF_CLEANUP_EXTRA" ] && eval "$LF_CLEANUP_EXTRA"
  # the test MariaDB must be up for the next test, whatever happened here
  if [ -n "${MLOPSD_TEST_DB_DIR:-}" ] &&
     ! sql -e 'SELECT 1' >/dev/null 2>&1; then
    "$SRC/tests/mariadb.sh" start "$MLOPSD_TEST_DB_DIR" >/dev/null 2>&1
  fi
  if [ -n "$T" ] && [ -z "${MLOPSD_KEEP_TMP:-}" ]; then
    sql -e "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    rm -rf "$T"
  elif [ -n "$T" ]; then
    echo "kept $T (database $DB)"
  fi
}

lf_init() {  # lf_init NAME
  if [ -z "${MLOPSD_DATABASE_HOST:-}" ]; then
    echo "needs the test MariaDB (tests/run.sh sets MLOPSD_DATABASE_*)"
    echo "check: 0 passed, 1 failed"; exit 1
  fi
  T=$(mktemp -d "/tmp/it_$1.XXXXXX")
  chmod 755 "$T"
  DB=it_$1
  PORT=$(free_port)
  mkdir -p "$T/dags" "$T/spool" "$T/registry"
  trap lf_cleanup EXIT
  trap 'exit 130' INT TERM
  export MLOPSD_CONFIG=$T/mlopsd.yaml
  export MLOPSD_DATABASE_NAME=$DB
  unset MLOPSD_MODELS_REGISTRY_DIR MLOPSD_SERVER_SPOOL_DIR \
    MLOPSD_SCHEDULER_DAGS_DIR MLOPSD_MODELS_SPECS_DIR MLOPSD_SERVER_LISTEN
}

# The course spec with a small grid (GRID: yaml flow map, default one
# trial) and few rounds, so training takes about a second per trial.
lf_fast_spec() {  # lf_fast_spec [GRID] [ROUNDS] [EARLY_STOPPING]
  local grid=${1:-"{max_depth: [4]}"} rounds=${2:-40} es=${3:-10}
  mkdir -p "$T/models"
  python3 - "$SRC/config/models/$MODEL.yaml" "$T/models/$MODEL.yaml" \
    "$grid" "$rounds" "$es" <<'EOF'
import re, sys
src, dst, grid, rounds, es = sys.argv[1:6]
t = open(src).read()
t = re.sub(r"num_boost_round: \d+", "num_boost_round: " + rounds, t)
t = re.sub(r"early_stopping_rounds: \d+", "early_stopping_rounds: " + es, t)
t = re.sub(r"search:\n  grid:.*?\n((    .*\n)+)", "search:\n  grid: " + grid
           + "\n", t)
open(dst, "w").write(t)
EOF
}

lf_config() {  # lf_config [EXTRA YAML LINES...]: sections may be repeated
  {                 # as flow maps only by the caller, so keep it simple
    cat <<EOF
server:
  listen: "127.0.0.1:$PORT"
  threads: 2
  spool_dir: $T/spool
  default_model: $MODEL
  idle_timeout: ${LF_IDLE_TIMEOUT:-30}
  max_connections: ${LF_MAX_CONNECTIONS:-1024}
  log_full_policy: ${LF_POLICY:-reject}
  spool_max_bytes: ${LF_SPOOL_MAX:-268435456}
database:
  name: $DB
  connect_timeout: 2
models:
  specs_dir: ${LF_SPECS_DIR:-$T/models}
  registry_dir: ${LF_REGISTRY_DIR:-$T/registry}
scheduler:
  dags_dir: $T/dags
  tick_ms: 200
  lease_s: ${LF_LEASE_S:-5}
logging:
  level: ${LF_LOG_LEVEL:-info}
EOF
  } >"$T/mlopsd.yaml"
}

lf_db_prepare() {
  sql -e "DROP DATABASE IF EXISTS $DB" &&
    "$BIN" db init >"$T/init.log" 2>&1 &&
    "$BIN" db seed >>"$T/init.log" 2>&1 &&
    sed 's/{{ ds }}/2025-09-01/g' sql/features.sql | sql "$DB" &&
    return 0
  cat "$T/init.log"
  return 1
}

lf_train_promote() {  # lf_train_promote N
  local i
  for i in $(seq 1 "$1"); do
    "$BIN" models train $MODEL --date 2025-09-01 --run-id "setup_v$i" \
      >>"$T/train.log" 2>&1 || { cat "$T/train.log"; return 1; }
  done
  "$BIN" models promote $MODEL 1 >>"$T/train.log" 2>&1 ||
    { cat "$T/train.log"; return 1; }
}

# The course's CT DAG (extract -> train -> validate -> deploy) as the fault
# tests need it: the SQL file by absolute path, RETRIES retries 1 s apart.
# Written here, not copied from config/dags, so the tests do not depend on
# edits of the shipped file.
lf_ct_dag() {  # lf_ct_dag FILE RETRIES
  cat >"$1" <<EOF
dag_id: credit_score_classification_ct
schedule: null
start_date: 2025-01-01
catchup: false
max_active_runs: 1
params: {model: $MODEL}
default_args: {retries: $2, retry_delay: 1s, timeout: 1h}
tasks:
  - {id: data_extraction, type: sql, sql_file: $SRC/sql/features.sql,
     transaction: true}
  - {id: model_training, type: train, depends_on: [data_extraction],
     model: "{{ params.model }}"}
  - {id: model_validation, type: validate, depends_on: [model_training],
     model: "{{ params.model }}", metric: accuracy, tolerance: 0.005}
  - {id: model_deployment, type: deploy, depends_on: [model_validation],
     model: "{{ params.model }}"}
EOF
}

LF_NSTART=0
lf_start() {  # lf_start [ENV=VALUE...]: the daemon in the background
  # (LF_PREFIX: a command to run it under, e.g. strace)
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    echo "  (lf_start: the previous daemon was still running: killed)"
    lf_kill9
  fi
  LF_NSTART=$((LF_NSTART + 1))
  echo "---- start $LF_NSTART $(date +%T.%N)" >>"$T/daemon.log"
  # shellcheck disable=SC2086  # LF_PREFIX: a command such as strace
  (cd "$T" && exec env "$@" ${LF_PREFIX:-} "$BIN" serve \
    --pid-file "$T/mlopsd.pid") \
    >>"$T/daemon.log" 2>&1 &
  DPID=$!
}

# 0 when /readyz (/healthz) answers 200 within SECONDS (30); 1 at once
# when the daemon has exited
lf_wait_ready() { daemon_pid=$DPID wait_http "http://127.0.0.1:$PORT/readyz" "${1:-30}"; }
lf_wait_up()    { daemon_pid=$DPID wait_http "http://127.0.0.1:$PORT/healthz" "${1:-30}"; }

lf_trigger() {  # lf_trigger DAG DATE: queue a run; RUN=its id ("" if none)
  "$BIN" dags trigger "$1" --date "$2" >"$T/out" 2>&1
  RUN=$(sed -n 's/^queued run //p' "$T/out")
}

lf_load() {  # lf_load NAME START [ARGS...]: lib_load.py in the background,
  # 2 threads at 100 requests/s for up to 10 minutes (ARGS may override);
  # answers in $T/NAME.ans, its summary in $T/NAME.out, LOAD=its pid
  local name=$1 start=$2; shift 2
  python3 "$SRC/tests/integration/lib_load.py" --port "$PORT" \
    --out "$T/$name.ans" --start "$start" --threads 2 --rate 100 \
    --seconds 600 "$@" >"$T/$name.out" &
  LOAD=$!
}

lf_wait_run() {  # lf_wait_run RUN_ID [SECONDS]: the run's final state
  local i st=""   # (success or failed; what it was at the timeout, 60 s)
  for i in $(seq 1 $(( ${2:-60} * 5 ))); do
    st=$(sql "$DB" -e "SELECT state FROM dag_run WHERE run_id='$1'")
    case "$st" in success|failed) break ;; esac
    sleep 0.2
  done
  echo "$st"
}

lf_drained() {  # lf_drained [SECONDS]: 0 once spool and backlog are empty
  local i
  for i in $(seq 1 $(( ${1:-30} * 10 ))); do
    [ "$(lf_metric mlopsd_plog_spool_records)" = 0 ] &&
      [ "$(lf_metric mlopsd_plog_backlog_rows)" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

lf_term() {  # graceful stop; exit status in DRC (-1: needed SIGKILL)
  DRC=-1
  [ -n "$DPID" ] || return
  kill -TERM "$DPID" 2>/dev/null
  local i
  for i in $(seq 1 600); do
    if ! kill -0 "$DPID" 2>/dev/null; then
      wait "$DPID"; DRC=$?; DPID=""; return
    fi
    sleep 0.1
  done
  kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=""
}

lf_kill9() {  # SIGKILL the daemon (also when it runs under LF_PREFIX)
  [ -n "$DPID" ] || return
  local p; p=$(cat "$T/mlopsd.pid" 2>/dev/null)
  [ -n "$p" ] && [ "$p" != "$DPID" ] && kill -KILL "$p" 2>/dev/null
  kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""
  local i  # a daemon run under LF_PREFIX is not our child: wait for it
  for i in $(seq 1 100); do
    [ -n "$p" ] && [ -d "/proc/$p" ] || break
    grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && break
    sleep 0.05
  done
}

lf_metric() {  # lf_metric NAME [LABEL-SUBSTRING]: value or empty
  curl -s "http://127.0.0.1:$PORT/metrics" |
    awk -v n="$1" -v l="${2:-}" '
      ($1 == n || index($1, n "{") == 1) && index($1, l) { print $2; exit }'
}

lf_body() {  # lf_body ID: the example body with customer_id ID
  sed "s/\"customer_id\": 4096/\"customer_id\": $1/" "$BODY"
}

lf_predict() {  # lf_predict ID [PATH]: prints the HTTP status
  lf_body "$1" | curl -s -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary @- \
    "http://127.0.0.1:$PORT${2:-/predict}"
}

lf_dbstop()  { "$SRC/tests/mariadb.sh" stop "$MLOPSD_TEST_DB_DIR" >/dev/null 2>&1; }
lf_dbstart() { "$SRC/tests/mariadb.sh" start "$MLOPSD_TEST_DB_DIR" >/dev/null 2>&1; }

# Rows of the prediction log per customer_id of a load run, compared with
# the answers the load generator recorded ("ID STATUS" lines).  Prints
# "answered200=N found=N lost=N dup=N phantom=N".
lf_exactly_once() {  # lf_exactly_once ANSWERS_FILE [ID_MIN ID_MAX]
  local lo=${2:-0} hi=${3:-9999999999}
  sql "$DB" -e "SELECT customer_id, COUNT(*) FROM credit_predictions_api_log
    WHERE CAST(customer_id AS UNSIGNED) BETWEEN $lo AND $hi
    GROUP BY customer_id" >"$T/rows.tsv" || { echo "query failed"; return 1; }
  python3 - "$1" "$T/rows.tsv" <<'EOF'
import sys
ans = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) >= 2:
        ans[p[0]] = p[1]
rows = {}
for line in open(sys.argv[2]):
    p = line.split("\t")
    if len(p) == 2:
        rows[p[0]] = int(p[1])
ok200 = [i for i, s in ans.items() if s == "200"]
lost = sum(1 for i in ok200 if rows.get(i, 0) == 0)
dup = sum(max(0, n - 1) for n in rows.values())
phantom = sum(1 for i in rows if ans.get(i) not in ("200", "000", "ERR"))
print(f"answered200={len(ok200)} found={sum(1 for i in ok200 if i in rows)}"
      f" lost={lost} dup={dup} phantom={phantom}")
EOF
}

# Spool/registry helpers
lf_registry_consistent() {  # lf_registry_consistent REGDIR: 0 if every
  python3 - "$1/$MODEL" <<'EOF'  # version is complete and parses
import json, os, sys
root = sys.argv[1]
vdir = os.path.join(root, "versions")
vs = sorted(int(v) for v in os.listdir(vdir)) if os.path.isdir(vdir) else []
bad = []
for v in vs:
    d = os.path.join(vdir, str(v))
    for f in ("model.ubj", "meta.json", "preprocess.json"):
        p = os.path.join(d, f)
        if not os.path.isfile(p) or os.path.getsize(p) == 0:
            bad.append(f"{v}/{f} missing or empty")
    for f in ("meta.json", "preprocess.json"):
        try:
            json.load(open(os.path.join(d, f)))
        except Exception as ex:
            bad.append(f"{v}/{f}: {ex}")
if vs and vs != list(range(1, len(vs) + 1)):
    bad.append(f"version numbers {vs} have gaps")
alias = os.path.join(root, "aliases", "production")
if os.path.exists(alias):
    a = int(open(alias).read().strip())
    if a not in vs:
        bad.append(f"production -> {a}, not a version")
print(f"versions={vs}")
for b in bad:
    print("BAD", b)
sys.exit(1 if bad else 0)
EOF
}
