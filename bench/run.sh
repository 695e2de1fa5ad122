#!/bin/bash
# bench/run.sh [BUILD] [NAME...] - run the benchmarks and print their figures.
#
# Runs every built benchmark binary BUILD/bench/bench_* (from bench/bench_*.c,
# see the Makefile; `make bench` builds them and calls this script), then
# every script bench/*.sh other than this one and report.sh (which runs
# bench_serve.sh and prints the README's headline table).  With NAMEs, runs only those
# (NAME is the file name without directory or .sh: bench_queue, bench_db).
# Extra arguments for a benchmark can be passed as BENCH_ARGS_<name>, e.g.
# BENCH_ARGS_bench_queue=50000.
#
# Scripts get BUILD, MLOPSD_SRC (repo root) and MLOPSD_BIN (the daemon) in
# their environment; a script that needs MariaDB starts its own (see
# tests/mariadb.sh) and stops it on exit.
#
# Benchmarks print figures; nothing here judges them.  The exit status is 1
# only if a benchmark itself failed (non-zero exit, crash), so a broken
# benchmark does not go unnoticed.
set -u
BUILD=${1:-build}
[ $# -gt 0 ] && shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
cd "$SRC" || exit 1
export BUILD MLOPSD_SRC=$SRC MLOPSD_BIN=$SRC/$BUILD/mlopsd

wanted() {  # wanted NAME: is NAME selected on the command line?
  [ ${#SELECT[@]} -eq 0 ] && return 0
  local s
  for s in "${SELECT[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}
SELECT=("$@")

ran=0; failed=""
run_one() {  # run_one NAME CMD...
  local name=$1; shift
  local var="BENCH_ARGS_${name//[^A-Za-z0-9_]/_}"
  local extra=${!var:-}
  echo "== $name"
  local t0 t1 rc
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086  # BENCH_ARGS_* is a word list on purpose
  "$@" $extra
  rc=$?
  t1=$(date +%s.%N)
  printf -- '-- %s: exit %d, %.1f s\n\n' "$name" "$rc" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
  ran=$((ran + 1))
  [ "$rc" != 0 ] && failed="$failed $name"
}

for b in "$BUILD"/bench/bench_*; do
  if [ ! -f "$b" ] || [ ! -x "$b" ]; then continue; fi
  case "$b" in *.d|*.o) continue ;; esac
  name=$(basename "$b")
  wanted "$name" && run_one "$name" "$b"
done
for s in bench/*.sh; do
  [ -f "$s" ] || continue
  case "$(basename "$s")" in run.sh|report.sh|lib.sh) continue ;; esac  # drivers, lib
  name=$(basename "$s" .sh)
  wanted "$name" && run_one "$name" bash "$s"
done

if [ "$ran" = 0 ]; then
  if [ ${#SELECT[@]} -gt 0 ]; then
    echo "bench/run.sh: no benchmark named: ${SELECT[*]}" >&2
  else
    echo "bench/run.sh: no benchmark found under $BUILD/bench or" \
         "bench/*.sh (build them with: make bench)" >&2
  fi
  exit 1
fi
if [ -n "$failed" ]; then
  echo "benchmarks that failed:$failed" >&2
  exit 1
fi
echo "$ran benchmark(s) run"
