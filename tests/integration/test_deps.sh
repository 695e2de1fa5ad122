#!/bin/bash
# test_deps.sh - the module include graph (scripts/check-deps.sh): the
# project's own graph has no cycle with daemon and main on top, and the
# check really fails on a cycle and on a module including daemon.h; the
# length caps (scripts/check-size.sh): no src/*.c over 1,500 lines or
# function over 150, and the check really fails on either (synthetic
# trees in a temp dir).  This is how make test (CI) runs `make check-deps`.
# No database needed.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CHECK="$SRC/scripts/check-deps.sh"
SIZE="$SRC/scripts/check-size.sh"
. "$SRC/tests/lib.sh"  # scenario, ok, bad, tl_done
tmp=$(mktemp -d /tmp/mlopsd-deps.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# expect_fail NAME CHECK DIR REGEX: CHECK over DIR must fail and say REGEX
expect_fail() {
  local out
  if out=$("$2" "$3" 2>&1); then bad "$1" "passed: $out"
  elif grep -Eq "$4" <<<"$out"; then ok "$1"
  else bad "$1" "not said ($4): $out"; fi
}

# 1. the project itself
scenario project_graph
if out=$("$CHECK" "$SRC" 2>&1); then ok project_graph
else bad project_graph "$out"; fi

# 2. a cycle a -> b -> a (through a friend header) fails and is printed
scenario cycle_fails
mkdir -p "$tmp/cyc/src" "$tmp/cyc/include/mlopsd"
printf '#include "mlopsd/b.h"\n' >"$tmp/cyc/src/a.c"
printf '#include "b_int.h"\n' >"$tmp/cyc/src/b.c"
printf '#include "mlopsd/a.h"\n' >"$tmp/cyc/src/b_int.h"
: >"$tmp/cyc/include/mlopsd/a.h"; : >"$tmp/cyc/include/mlopsd/b.h"
expect_fail cycle_fails "$CHECK" "$tmp/cyc" 'cycle: (a -> b -> a|b -> a -> b)'

# 3. a module calling back into the daemon fails, naming the file
scenario daemon_on_top
mkdir -p "$tmp/up/src" "$tmp/up/include/mlopsd"
printf '#include "mlopsd/daemon.h"\n' >"$tmp/up/src/admin.c"
printf '#include "mlopsd/admin.h"\n' >"$tmp/up/src/daemon.c"
: >"$tmp/up/include/mlopsd/daemon.h"; : >"$tmp/up/include/mlopsd/admin.h"
expect_fail daemon_on_top "$CHECK" "$tmp/up" 'src/admin.c includes daemon.h'

# 4. a layered tree passes (the check is not always failing)
scenario layered_passes
mkdir -p "$tmp/ok/src" "$tmp/ok/include/mlopsd"
printf '#include "mlopsd/daemon.h"\n' >"$tmp/ok/src/main.c"
printf '#include "mlopsd/admin.h"\n#include "mlopsd/err.h"\n' >"$tmp/ok/src/daemon.c"
printf '#include "mlopsd/err.h"\n' >"$tmp/ok/src/admin_dags.c"
: >"$tmp/ok/include/mlopsd/daemon.h"; : >"$tmp/ok/include/mlopsd/admin.h"
: >"$tmp/ok/include/mlopsd/err.h"
if out=$("$CHECK" "$tmp/ok" 2>&1) && grep -q '4 modules, no cycle' <<<"$out"
then ok layered_passes; else bad layered_passes "$out"; fi

# 5. the project's files and functions are within the caps
scenario project_size
if out=$("$SIZE" "$SRC" 2>&1); then ok project_size
else bad project_size "$out"; fi

# 6. a 151-line function and a 1,501-line file fail, each named with its
# length; a 150-line function in a 1,500-line file passes
scenario size_fails
mkdir -p "$tmp/long/src" "$tmp/fit/src"
body() { # $1 lines of body between the braces
  i=0; while [ "$i" -lt "$1" ]; do echo "  x++;"; i=$((i + 1)); done
}
{ printf 'static int x;\nvoid far(void)\n{\n'; body 148; echo '}'; } \
  >"$tmp/long/src/a.c"
{ printf 'void near(void)\n{\n'; body 147; echo '}'; body 1350; } \
  >"$tmp/long/src/b.c"
if out=$("$SIZE" "$tmp/long" 2>&1); then bad size_fails "passed: $out"
elif ! grep -q 'src/a.c:2: far: 151 lines (at most 150)' <<<"$out"; then
  bad size_fails "far not named: $out"
elif grep -q 'src/b.c' <<<"$out"; then
  bad size_fails "the 1,500-line file or its 150-line function failed: $out"
else ok size_fails; fi

scenario size_file_fails
{ printf 'void near(void)\n{\n'; body 147; echo '}'; body 1351; } \
  >"$tmp/fit/src/c.c"
expect_fail size_file_fails "$SIZE" "$tmp/fit" \
  '^src/c.c: 1501 lines \(at most 1500\)$'

tl_done
