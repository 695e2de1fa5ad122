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
#   tl_db_course DB DS    drop and create DB (db init, db seed) and fill
#                         its features for the date DS; logs in $T/*.log
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

tl_db_course() {
  sql -e "DROP DATABASE IF EXISTS $1" &&
    MLOPSD_DATABASE_NAME=$1 "$BIN" db init >"$T/init.log" 2>&1 &&
    MLOPSD_DATABASE_NAME=$1 "$BIN" db seed >"$T/seed.log" 2>&1 &&
    sed "s/{{ ds }}/$2/g" sql/features.sql | sql "$1"
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
