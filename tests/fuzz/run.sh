#!/bin/bash
# tests/fuzz/run.sh BUILD SECONDS [TARGET...] - run the libFuzzer targets.
#
# Builds nothing: `make fuzz-build` puts the targets in BUILD (build/fuzz).
# Each target BUILD/fuzz_T first runs every input of tests/fuzz/corpus/T
# (the seeds and the regression inputs of crashes fixed; sqlsplit also
# every .sql file of sql/ and tests/unit/data, read in place) and then, when
# SECONDS > 0, mutates them for SECONDS seconds (-max_total_time).
# SECONDS = 0 replays the corpus only.  TARGETs are names like "spool"
# (default: every BUILD/fuzz_* binary).
#
# New inputs go to a work corpus (FUZZ_WORK, default BUILD/work/T, kept
# between runs so later runs start from what earlier ones found; the seed
# corpus in the tree is never written), crashes to BUILD/artifacts/T/.
# One line per target: executions, seconds, executions per second, work
# corpus size, result; the last line is "fuzz: N passed, M failed".
# Exit status 0 only when every target passed.
#
# Environment: FUZZ_JOBS (targets at once, default 1), FUZZ_SEED (libFuzzer
# -seed, default 0 = random), FUZZ_WORK (see above), FUZZ_ARGS (more
# libFuzzer flags), VERBOSE=1 (print each target's log).
set -u
BUILD=${1:-build/fuzz}
SECONDS_EACH=${2:-60}
shift 2 2>/dev/null || shift $#
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"
export MLOPSD_SRC=$SRC
JOBS=${FUZZ_JOBS:-1}
SEED=${FUZZ_SEED:-0}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for b in "$BUILD"/fuzz_*; do
    case "$b" in *.d|*.o) continue ;; esac
    [ -x "$b" ] && targets+=("${b##*/fuzz_}")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "run.sh: no fuzz targets in $BUILD (make fuzz-build)" >&2
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

RES=$(mktemp -d /tmp/mlopsd-fuzz-run.XXXXXX)
trap 'rm -rf "$RES"' EXIT
mkdir -p "$BUILD/logs"

# Seeds read straight from the project's own files instead of committed
# copies (so they follow the files): the SQL splitter's are every script
# the project ships or tests with.
real_seeds() {  # real_seeds NAME -> one path a line
  case $1 in
    sqlsplit) { ls sql/*.sql sql/migrations/*.sql
                find tests/unit/data -name '*.sql'; } | sort ;;
  esac
}

run_target() {  # run_target NAME -> writes $RES/NAME
  local t=$1 bin="$BUILD/fuzz_$1" seeds="tests/fuzz/corpus/$1"
  local log="$BUILD/logs/$t.log" art="$BUILD/artifacts/$t/"
  local work=${FUZZ_WORK:-$BUILD/work}/$t
  if [ ! -x "$bin" ]; then
    echo "$t - - - - MISSING($bin)" >"$RES/$t"
    return
  fi
  mkdir -p "$work" "$art" "$seeds"
  local t0 t1 rc
  t0=$(date +%s.%N)
  if [ "$SECONDS_EACH" = 0 ]; then
    # replay: every corpus file once, no mutation
    local files=()
    while IFS= read -r -d '' f; do files+=("$f"); done \
      < <(find "$seeds" -type f -print0 | sort -z)
    while IFS= read -r f; do files+=("$f"); done < <(real_seeds "$t")
    if [ ${#files[@]} -eq 0 ]; then
      echo "$t 0 0 0 ok" >"$RES/$t"
      return
    fi
    "$bin" -print_final_stats=1 -artifact_prefix="$art" ${FUZZ_ARGS:-} \
      "${files[@]}" </dev/null >"$log" 2>&1
    rc=$?
  else
    local f
    while IFS= read -r f; do
      cp "$f" "$work/real-$(echo "$f" | tr / -)"
    done < <(real_seeds "$t")
    "$bin" -max_total_time="$SECONDS_EACH" -seed="$SEED" -timeout=25 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art" \
      ${FUZZ_ARGS:-} "$work" "$seeds" </dev/null >"$log" 2>&1
    rc=$?
  fi
  t1=$(date +%s.%N)
  # scratch dirs of targets that crashed (abort skips their clean-up)
  local d
  for d in /dev/shm/mlopsd-fuzz-"$t"-* /tmp/mlopsd-fuzz-"$t"-*; do
    [ -d "$d" ] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
  done
  local execs corpus secs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(grep -c '^Executed ' "$log")
  corpus=$(find "$work" -type f | wc -l)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  local status=ok
  [ "$rc" = 0 ] || status="FAILED(rc=$rc)"
  echo "$t $execs $secs $corpus $status" >"$RES/$t"
}

running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n 2>/dev/null || wait
    running=$((running - 1))
  fi
done
wait

passed=0; failed=0
printf '%-10s %12s %8s %10s %7s  %s\n' target executions seconds exec/s corpus result
for t in "${targets[@]}"; do
  read -r name execs secs corpus status <"$RES/$t"
  rate=$(awk -v n="$execs" -v s="$secs" \
    'BEGIN{if (s > 0 && n ~ /^[0-9]+$/) printf "%.0f", n/s; else print "-"}')
  printf '%-10s %12s %8s %10s %7s  %s\n' "$name" "$execs" "$secs" "$rate" \
    "$corpus" "$status"
  if [ "$status" = ok ]; then
    passed=$((passed + 1))
    [ -n "${VERBOSE:-}" ] && sed 's/^/    | /' "$BUILD/logs/$t.log"
  else
    failed=$((failed + 1))
    grep -E 'invariant failed|ERROR:|SUMMARY:|Test unit written|^    #[0-9]+ .* in [^_]' \
      "$BUILD/logs/$t.log" | grep -v 'in fuzzer::' | head -40 | sed 's/^/    | /'
    echo "    | full log: $BUILD/logs/$t.log"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
