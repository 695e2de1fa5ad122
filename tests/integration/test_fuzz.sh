#!/bin/bash
# test_fuzz.sh - the libFuzzer targets as a regression test (issue 9).
#
# Builds build/fuzz when needed (make fuzz-build: clang, ASan + UBSan),
# then runs every target over its corpus (tests/fuzz/corpus/T: seeds and
# the inputs of crashes fixed) and mutates for FUZZ_TEST_SECONDS (3) more
# with a fixed libFuzzer seed, in a throwaway work corpus.  Each target is
# one test.  Needs no database; run by tests/run.sh in the integration
# phase.  `make fuzz` is the long run.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC"
SECS=${FUZZ_TEST_SECONDS:-3}

if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
  echo "test_fuzz: clang not found (scripts/install-deps.sh installs it)"
  echo "check: 0 passed, 1 failed"
  exit 1
fi
log=$(mktemp /tmp/mlopsd-fuzz-build.XXXXXX)
work=$(mktemp -d /tmp/mlopsd-fuzz-work.XXXXXX)
trap 'rm -rf "$log" "$work"' EXIT
if ! make -s fuzz-build >"$log" 2>&1; then
  echo "test_fuzz: make fuzz-build failed:"
  tail -30 "$log"
  echo "check: 0 passed, 1 failed"
  exit 1
fi

out=$(FUZZ_WORK=$work FUZZ_SEED=1 tests/fuzz/run.sh build/fuzz "$SECS" 2>&1)
rc=$?
echo "$out"
passed=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
failed=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$passed" ]; then
  passed=0
  failed=1
fi
[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
echo "check: $passed passed, $failed failed"
[ "$failed" = 0 ]
