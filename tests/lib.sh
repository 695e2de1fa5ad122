# tests/lib.sh - checks and fixtures the shell tests share (sourced, never
# run; tests/integration/lib_fault.sh builds on it).
#
# Counting: the unit is the scenario, as a TEST function is in the C tests
# (tests/check.h).  `scenario NAME` opens one; every check after it belongs
# to it until the next; a scenario passes when all its checks passed.
# Checks before the first `scenario` belong to one named "setup".  Each
# check still prints "ok NAME" / "not ok NAME" for the reader.
#
#   tl_init NAME          cd to the source tree, BIN, a temp dir $T (also
#                         $tmp), an EXIT trap that stops $daemon_pid and
#                         removes $T (MLOPSD_KEEP_TMP=1 keeps it) and runs
#                         $TL_CLEANUP_EXTRA first
#   scenario NAME         open a scenario (closing the one before)
#   ok NAME / bad NAME [WHY]           a check passed / failed
#   check NAME CMD...     ok when CMD succeeds
#   eq NAME GOT WANT      ok when the strings are equal
#   expect NAME RC CMD... ok when CMD exits RC (output in $T/out, $T/err)
#   has / hasnt NAME FILE TEXT         FILE contains / lacks TEXT
#   skip NAME WHY         a scenario that cannot run here: "check: skip
#                         NAME: WHY" (tests/run.sh lists it; a failure
#                         under CI=true)
#   tl_done               close the last scenario, print "check: N passed,
#                         N failed, N skipped"; returns 1 if any failed
#   finish                tl_done, then exit with its status (also to
#                         stop early after a failed set-up step)
#   sql [ARGS...]         the mariadb client on the test server (batch,
#                         no column names)
#   free_port             a free TCP port on 127.0.0.1
#   wait_http URL [S]     0 when URL answers 2xx within S seconds (30);
#                         gives up early when $daemon_pid has exited
#   tl_config PORT DB SPECS [YAML...]  $T/mlopsd.yaml: the daemon on
#                         127.0.0.1:PORT (2 threads, spool $T/spool),
#                         database DB, specs SPECS, registry $T/registry,
#                         DAGs $T/dags, level warn; YAML lines appended
#   tl_sched_config DIR PORT DB SPECS  DIR/mlopsd.yaml: one of several
#                         scheduler daemons on one database (its own
#                         spool and registry under DIR, DAGs $T/dags, one
#                         training thread, tick 200 ms, level info)
#   tl_db_seeded DB       drop and create DB (db init, db seed); logs in
#                         $T/init.log, $T/seed.log
#   tl_db_course DB DS    tl_db_seeded DB, then its features for the date
#                         DS
#   tl_spec_copy OUT KEY=VALUE...  the course spec ($MODEL) with each
#                         KEY's value replaced (num_boost_round=20,
#                         'max_depth=[4]')
#   tl_pair_config DB SPECS  two scheduler daemons on DB ($T/a, $T/b on
#                         $port_a, $port_b; tl_sched_config); the clean-up
#                         also stops $pid_b; the CLI's environment names DB
#                         and SPECS
#   tl_pair_start         start both ($daemon_pid, $pid_b); checks
#                         daemon_a_up, daemon_b_up
#   tl_pair_version FILE  versions/1 of $MODEL in whichever daemon's
#                         registry holds FILE ("" when neither)
#   tl_replay FILE        the "ok NAME" / "not ok NAME [WHY]" lines a helper
#                         (a python check script) wrote to FILE, as checks
#   tl_predict_rows MODEL:V  `mlopsd predict` of $T/body.json: the answer
#                         in $T/answer.json, the preprocessed rows
#                         (--print-rows) in $T/rows.json
#   tl_check_db CMD...    the check database_ready: CMD (tl_db_seeded DB,
#                         tl_db_course DB DS) succeeds, else the logs in
#                         $T are shown; its status
#   tl_served_version URL the model_version URL/metadata shows, or "-"
#   tl_wait_served URL V [S]  up to S seconds (15) until URL serves V;
#                         prints the version it saw last
#   tl_model_env DB [SPECS]  the CLI's environment: database DB, registry
#                         $T/registry, specs SPECS (config/models)
#   tl_need_pyxgb         0 when $PY (python3) imports xgboost and numpy, else
#                         a failed check python_xgboost_available and 1
#   tl_optional_spec IN OUT  the model spec IN with every feature
#                         `required: false` (nulls are missing values)
#   tl_sample_body VDIR N MODEL:V  $T/body.json: the first N rows of the
#                         version's sample.json as one /predict batch, with
#                         the rows `mlopsd predict MODEL:V` refuses dropped
#                         (three tries); its last answer in $T/answer.json
#                         and $T/predict.err, its status returned
set -u
pass=0; fail=0; skipped=0
TL_SCEN=""; TL_SCEN_FAILED=0; TL_SCEN_CHECKS=0
T=""; tmp=""; daemon_pid=""; TL_CLEANUP_EXTRA=""

tl_close_scenario() {
  [ -n "$TL_SCEN" ] || return 0
  if [ "$TL_SCEN_FAILED" != 0 ]; then
    fail=$((fail + 1))
    echo "not ok scenario $TL_SCEN ($TL_SCEN_FAILED of $TL_SCEN_CHECKS checks failed)"
  elif [ "$TL_SCEN_CHECKS" != 0 ]; then
    pass=$((pass + 1))
  fi
  TL_SCEN=""; TL_SCEN_FAILED=0; TL_SCEN_CHECKS=0
}
scenario() {
  tl_close_scenario
  TL_SCEN=$1
  echo "## $1 (t=${SECONDS}s)"
}
tl_check_done() {  # tl_check_done FAILED(0|1)
  [ -n "$TL_SCEN" ] || TL_SCEN=setup
  TL_SCEN_CHECKS=$((TL_SCEN_CHECKS + 1))
  TL_SCEN_FAILED=$((TL_SCEN_FAILED + $1))
}
ok()  { tl_check_done 0; echo "ok $1"; }
bad() { tl_check_done 1; echo "not ok $1${2:+: $2}"; }
check() { local n=$1; shift; if "$@"; then ok "$n"; else bad "$n"; fi; }
eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}
expect() {
  local name=$1 want=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok "$name"; else
    echo "  rc=$rc want=$want"
    sed 's/^/  | /' "$T/out" "$T/err" | head -30
    bad "$name"
  fi
}
has() {
  if grep -qF -- "$3" "$2"; then ok "$1"; else
    echo "  '$3' not in $2:"; sed 's/^/  | /' "$2" | head -30; bad "$1"; fi
}
hasnt() {
  if ! grep -qF -- "$3" "$2"; then ok "$1"; else
    echo "  '$3' found in $2:"; grep -nF -- "$3" "$2" | head -5 |
      sed 's/^/  | /'; bad "$1"; fi
}
skip() { skipped=$((skipped + 1)); echo "check: skip $1: $2"; }

tl_done() {
  tl_close_scenario
  echo "check: $pass passed, $fail failed, $skipped skipped"
  [ "$fail" = 0 ]
}

finish() { tl_done; exit $?; }

sql() {
  MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-} mariadb --protocol=TCP \
    -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" -P "${MLOPSD_DATABASE_PORT:-3306}" \
    -u "${MLOPSD_DATABASE_USER:-root}" -N -B "$@"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {
  local i n=$(( ${2:-30} * 10 ))
  for i in $(seq 1 $n); do
    curl -sf -o /dev/null "$1" && return 0
    if [ -n "$daemon_pid" ] && ! kill -0 "$daemon_pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

tl_config() {
  local port=$1 db=$2 specs=$3; shift 3
  mkdir -p "$T/dags" "$T/spool"
  {
    cat <<EOF
server:
  listen: "127.0.0.1:$port"
  threads: 2
  spool_dir: $T/spool
  default_model: ${MODEL:-credit_score_classification}
database:
  name: $db
models:
  specs_dir: $specs
  registry_dir: $T/registry
logging:
  level: warn
scheduler:
  dags_dir: $T/dags
EOF
    local l
    for l in "$@"; do echo "$l"; done
  } >"$T/mlopsd.yaml"
}

tl_sched_config() {
  cat >"$1/mlopsd.yaml" <<EOF
server:
  listen: "127.0.0.1:$2"
  threads: 2
  spool_dir: $1/spool
database:
  name: $3
models:
  specs_dir: $4
  registry_dir: $1/registry
  train_parallel: 1
logging:
  level: info
scheduler:
  dags_dir: $T/dags
  tick_ms: 200
EOF
}

tl_db_seeded() {
  sql -e "DROP DATABASE IF EXISTS $1" &&
    MLOPSD_DATABASE_NAME=$1 "$BIN" db init >"$T/init.log" 2>&1 &&
    MLOPSD_DATABASE_NAME=$1 "$BIN" db seed >"$T/seed.log" 2>&1
}

tl_db_course() {
  tl_db_seeded "$1" && sed "s/{{ ds }}/$2/g" sql/features.sql | sql "$1"
}

tl_served_version() {
  curl -s "$1/metadata" | python3 -c '
import json, sys
try: print(json.load(sys.stdin).get("model_version") or "-")
except Exception: print("-")'
}

tl_wait_served() {
  local v _
  for _ in $(seq 1 $(( ${3:-15} * 10 ))); do
    v=$(tl_served_version "$1")
    [ "$v" = "$2" ] && { echo "$v"; return; }
    sleep 0.1
  done
  echo "$v"
}

tl_need_pyxgb() {
  "${PY:-python3}" -c 'import xgboost, numpy' 2>/dev/null && return 0
  echo "${PY:-python3} cannot import xgboost and numpy (package python3-xgboost)"
  bad python_xgboost_available
  return 1
}

tl_optional_spec() {
  sed 's/{name: \([a-z_]*\)/{name: \1, required: false/' "$1" >"$2"
}

tl_sample_body() {
  local vdir=$1 n=$2 mv=$3 attempt rc=1
  "${PY:-python3}" - "$vdir/sample.json" "$T/body.json" "$n" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
json.dump({"data": rows[:int(sys.argv[3])]}, open(sys.argv[2], "w"))
EOF
  for attempt in 1 2 3; do
    "$BIN" predict "$mv" --file "$T/body.json" >"$T/answer.json" \
      2>"$T/predict.err" && return 0
    rc=$?
    # drop the items named in the 400 body and try again
    "${PY:-python3}" - "$T/body.json" "$T/answer.json" <<'EOF'
import json, re, sys
body = json.load(open(sys.argv[1])); ans = json.load(open(sys.argv[2]))
badidx = {int(m.group(1)) for k in ans.get("fields", {})
          for m in [re.match(r"data\[(\d+)\]", k)] if m}
body["data"] = [r for i, r in enumerate(body["data"]) if i not in badidx]
json.dump(body, open(sys.argv[1], "w"))
EOF
  done
  return $rc
}

tl_spec_copy() {
  local out=$1 kv args=(); shift
  for kv in "$@"; do args+=(-e "s/^( *${kv%%=*}:).*/\\1 ${kv#*=}/"); done
  sed -E "${args[@]}" "config/models/${MODEL:-credit_score_classification}.yaml" >"$out"
}

tl_pair_config() {
  export MLOPSD_DATABASE_NAME=$1 MLOPSD_MODELS_SPECS_DIR=$2
  mkdir -p "$T/a" "$T/b" "$T/dags"
  port_a=$(free_port)
  port_b=$(free_port)
  tl_sched_config "$T/a" "$port_a" "$1" "$2"
  tl_sched_config "$T/b" "$port_b" "$1" "$2"
  pid_b=""
  TL_CLEANUP_EXTRA='[ -n "$pid_b" ] && kill "$pid_b" 2>/dev/null && wait "$pid_b" 2>/dev/null'
}

tl_pair_start() {
  "$BIN" -c "$T/a/mlopsd.yaml" serve >"$T/a/daemon.log" 2>&1 &
  daemon_pid=$!
  "$BIN" -c "$T/b/mlopsd.yaml" serve >"$T/b/daemon.log" 2>&1 &
  pid_b=$!
  check daemon_a_up wait_http "http://127.0.0.1:$port_a/healthz" 30
  check daemon_b_up wait_http "http://127.0.0.1:$port_b/healthz" 30
}

tl_pair_version() {
  local d v=""
  for d in a b; do
    [ -f "$T/$d/registry/${MODEL:-credit_score_classification}/versions/1/$1" ] &&
      v=$T/$d/registry/${MODEL:-credit_score_classification}/versions/1
  done
  echo "$v"
}

tl_replay() {
  local l
  while read -r l; do
    case $l in
      "ok "*) ok "${l#ok }" ;;
      "not ok "*)
        l=${l#not ok }
        if [ "${l#* }" = "$l" ]; then bad "$l"; else bad "${l%% *}" "${l#* }"; fi ;;
    esac
  done <"$1"
}

tl_model_env() {
  export MLOPSD_DATABASE_NAME=$1
  export MLOPSD_MODELS_REGISTRY_DIR=$T/registry
  export MLOPSD_MODELS_SPECS_DIR=${2:-config/models}
}

tl_predict_rows() {
  "$BIN" predict "$1" --file "$T/body.json" >"$T/answer.json" &&
    "$BIN" predict "$1" --file "$T/body.json" --print-rows >"$T/rows.json"
}

tl_check_db() {
  "$@" && { ok database_ready; return 0; }
  cat "$T"/*.log; bad database_ready; return 1
}

tl_cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  [ -n "$TL_CLEANUP_EXTRA" ] && eval "$TL_CLEANUP_EXTRA"
  if [ -n "$T" ] && [ -z "${MLOPSD_KEEP_TMP:-}" ]; then rm -rf "$T"
  elif [ -n "$T" ]; then echo "kept $T"; fi
}

tl_init() {
  cd "${MLOPSD_SRC:-$(dirname "${BASH_SOURCE[0]}")/..}" || exit 1
  SRC=$(pwd)
  BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
  T=$(mktemp -d "/tmp/it_$1.XXXXXX")
  tmp=$T
  trap tl_cleanup EXIT
  trap 'exit 130' INT TERM
}
