#!/bin/bash
# tests/run.sh BUILD MODE - run the test binaries of BUILD and sum them up.
#
# MODE: unit | integration | all | tsan
#   unit         build/tests/unit/test_*           (no database)
#   integration  build/tests/integration/test_*    and tests/integration/*.sh
#   all          both
#   tsan         the tests whose source says "check: tsan" (concurrency)
#   cluster      tests/cluster/test_*.sh (make test-cluster): each starts
#                its own Galera cluster (tests/galera.sh), no shared MariaDB
#
# For integration tests a private MariaDB is started in a temp dir on a free
# port (tests/mariadb.sh) and always stopped and removed on exit, also on
# failure or Ctrl-C.  Each test gets MLOPSD_DATABASE_* in its environment,
# MLOPSD_BIN (the daemon binary) and MLOPSD_SRC (the source tree).
# Every test is killed after MLOPSD_TEST_TIMEOUT seconds (default 600).
# MLOPSD_TESTS=REGEX runs only the tests whose name matches.
#
# The unit counted everywhere is the scenario: one TEST function of a C
# test (tests/check.h), one `scenario` (lib_fault.sh: `section`) of a
# shell test (tests/lib.sh), one fuzz target (test_fuzz.sh).  A scenario
# passes when every check in it passed; each check still prints its own
# "ok NAME" / "not ok NAME" line for the reader.
#
# What a test prints (stdout or stderr, both are read):
#   check: N passed, N failed[, N skipped]   its summary, once, at the end
#   check: skip NAME: REASON                 one line per skipped scenario
# A test that exits non-zero without a failure counted (crash, timeout,
# sanitizer report) counts one failure.
#
# Skips are never silent: each one is counted and listed with its reason
# before the last line.  Under CI=true (.ci/run sets it) every skip also
# counts as a failure: CI installs every dependency a test needs
# (scripts/install-deps.sh) and runs as root, so a skip there means a
# missing install step, not a machine that cannot run the test.
# The last line is "N passed, N failed, N skipped" for the whole run.
set -u
BUILD=${1:-build}; MODE=${2:-all}
SRC=$(cd "$(dirname "$0")/.." && pwd)
cd "$SRC"
export MLOPSD_SRC=$SRC
export MLOPSD_BIN=$SRC/$BUILD/mlopsd
# The shared sample data: shared/ beside the clone, as CI lays it out, or
# beside the main checkout of a git worktree (tests/shared_dir.sh).
MLOPSD_SHARED=$(tests/shared_dir.sh) || MLOPSD_SHARED=$SRC/../shared
export MLOPSD_SHARED
TIMEOUT=${MLOPSD_TEST_TIMEOUT:-600}
passed=0; failed=0; skipped=0; failed_names=""; skip_lines=""
CI_STRICT=0; [ "${CI:-}" = true ] && CI_STRICT=1
DBDIR=""; S3DIR=""

cleanup() {
  if [ -n "$S3DIR" ]; then
    tests/s3.sh stop "$S3DIR" >/dev/null 2>&1 || true
    rm -rf "$S3DIR"
    S3DIR=""
  fi
  if [ -n "$DBDIR" ]; then
    tests/mariadb.sh stop "$DBDIR" >/dev/null 2>&1 || true
    rm -rf "$DBDIR"
    DBDIR=""
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

start_db() {
  DBDIR=$(mktemp -d /tmp/mlopsd-test-db.XXXXXX)
  local envs
  if ! envs=$(tests/mariadb.sh start "$DBDIR"); then
    echo "run.sh: could not start MariaDB: integration tests cannot run" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
  eval "$envs"
  export MLOPSD_DATABASE_NAME=mlops_test
}

# The S3 store (tests/s3.sh, a local Swift) for the tests named *s3*,
# started once before the first of them; if it cannot start they skip
# with the reason (MLOPSD_TEST_S3_* unset).
start_s3() {
  [ -n "$S3DIR" ] && return 0
  S3DIR=$(mktemp -d /tmp/mlopsd-test-s3.XXXXXX)
  local envs
  if envs=$(tests/s3.sh start "$S3DIR"); then
    eval "$envs"
  else
    echo "run.sh: could not start the S3 store (tests/s3.sh): the *s3* tests skip" >&2
  fi
}

run_one() {  # run_one NAME CMD...
  local name=$1; shift
  # MLOPSD_TESTS=REGEX: only the tests whose name matches (make valgrind)
  [ -n "${MLOPSD_TESTS:-}" ] && ! [[ "$name" =~ $MLOPSD_TESTS ]] && return
  case "$name" in integration/*s3*) start_s3 ;; esac
  local out; out=$(mktemp)
  local t0; t0=$(date +%s.%N)
  timeout --kill-after=10 "$TIMEOUT" "$@" >"$out" 2>&1
  local rc=$?
  local t1; t1=$(date +%s.%N)
  local line p f s sk
  line=$(grep -E '^check: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^check: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^check: [0-9]+ passed, ([0-9]+) failed.*/\1/')
  else
    p=0; f=0
  fi
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi   # crash, timeout, sanitizer
  sk=$(grep -E '^check: skip ' "$out" | sed -E 's/^check: skip //')
  s=0; [ -n "$sk" ] && s=$(printf '%s\n' "$sk" | wc -l)
  if [ "$s" != 0 ]; then
    skip_lines="$skip_lines$(printf '%s\n' "$sk" | sed "s|^|  $name: |")
"
    # CI=true: a skip is a missing install step, so it fails the run
    [ "$CI_STRICT" = 1 ] && f=$((f + s))
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  printf '%-44s %4s passed %3s failed %3s skipped  %6.1fs%s\n' "$name" "$p" "$f" "$s" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$([ "$rc" = 124 ] && echo '  TIMEOUT')"
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    failed_names="$failed_names $name"
    # the failed checks first (the tail below may not reach back to them)
    grep -E '^ *not ok' "$out" | head -20 | sed 's/^/    ! /'
    sed 's/^/    | /' "$out" | tail -60
  elif [ -n "${VERBOSE:-}" ]; then
    sed 's/^/    | /' "$out"
  fi
  rm -f "$out"
}

units=(); ints=(); shells=(); clusters=()
case "$MODE" in
  unit|all)
    for b in "$BUILD"/tests/unit/test_*; do [ -x "$b" ] && [ ! -d "$b" ] && units+=("$b"); done ;;
esac
case "$MODE" in
  integration|all)
    for b in "$BUILD"/tests/integration/test_*; do
      case "$b" in *.d|*.o) continue ;; esac
      [ -x "$b" ] && [ ! -d "$b" ] && ints+=("$b"); done
    for s in tests/integration/test_*.sh; do [ -f "$s" ] && shells+=("$s"); done ;;
  cluster)
    for s in tests/cluster/test_*.sh; do [ -f "$s" ] && clusters+=("$s"); done ;;
  tsan)
    for src in tests/unit/test_*.c tests/integration/test_*.c; do
      [ -f "$src" ] || continue
      grep -q 'check: tsan' "$src" || continue
      b="$BUILD/${src%.c}"
      case "$src" in tests/integration/*) ints+=("$b") ;; *) units+=("$b") ;; esac
    done ;;
esac

for b in "${units[@]+"${units[@]}"}"; do run_one "${b#"$BUILD"/tests/}" "$b"; done
if [ ${#ints[@]} -gt 0 ] || [ ${#shells[@]} -gt 0 ]; then
  start_db
  for b in "${ints[@]+"${ints[@]}"}"; do run_one "${b#"$BUILD"/tests/}" "$b"; done
  for s in "${shells[@]+"${shells[@]}"}"; do run_one "${s#tests/}" bash "$s"; done
fi

for s in "${clusters[@]+"${clusters[@]}"}"; do run_one "${s#tests/}" bash "$s"; done

[ -n "$failed_names" ] && echo "failed:$failed_names"
if [ -n "$skip_lines" ]; then
  if [ "$CI_STRICT" = 1 ]; then
    echo "skipped (counted as failed: CI=true):"
  else
    echo "skipped (each fails under CI=true):"
  fi
  printf '%s' "$skip_lines"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
