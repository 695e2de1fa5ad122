#!/bin/sh
# check-deps.sh [ROOT] - check the module include graph of mlopsd.
#
# A module is a file-name prefix: src/admin_dags.c, src/admin_int.h and
# include/mlopsd/admin.h all belong to module "admin" (the name up to the
# first '_' or '.').  Every #include "..." of a project header in src/*.c,
# src/*.h and include/mlopsd/*.h is an edge from the including module to
# the included one.  The check fails (exit 1) when
#   - the graph has a cycle (each cycle found is printed as a path), or
#   - the top is not on top: nothing may include main, and daemon.h may be
#     included only by main and cli (the commands that run the daemon):
#     the daemon wires the modules, they never call back into it.
# With -v the edges are printed too ("from -> to  (file)").
#
# Why grep and awk: the graph is what the files say, with no build
# needed, so `make check-deps` runs anywhere in a second.
set -eu
VERBOSE=0
if [ "${1:-}" = "-v" ]; then VERBOSE=1; shift; fi
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT"

# "from to file" lines, one per include of a project header (one awk
# pass over every file: no process per include)
local_h=""
for f in src/*.h; do [ -e "$f" ] && local_h="$local_h ${f#src/}"; done
set --
for f in src/*.c src/*.h include/mlopsd/*.h; do [ -e "$f" ] && set -- "$@" "$f"; done
if [ $# = 0 ]; then
  echo "check-deps: no src/*.c, src/*.h or include/mlopsd/*.h under $ROOT" >&2
  exit 1
fi
edges=$(awk -v local_h="$local_h " '
  function module(path,   n, a) {
    n = path; sub(/.*\//, "", n); split(n, a, /[_.]/); return a[1]
  }
  /^[ \t]*#[ \t]*include[ \t]+"/ {
    inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
    if (inc ~ /^mlopsd\//) sub(/^mlopsd\//, "", inc)
    else if (inc ~ /\// || index(local_h, " " inc " ") == 0) next
    from = module(FILENAME); to = module(inc)
    if (from != to) print from, to, FILENAME
  }' "$@" | sort -u)

if [ "$VERBOSE" = 1 ]; then
  printf '%s\n' "$edges" | awk '{ printf "%-10s -> %-10s (%s)\n", $1, $2, $3 }'
fi

printf '%s\n' "$edges" | awk '
function dfs(u,   i, v, k, path) {
  state[u] = 1; stack[++depth] = u
  for (i = 1; i <= nout[u]; i++) {
    v = out[u, i]
    if (state[v] == 1) {             # back edge: the cycle is on the stack
      path = ""
      for (k = 1; k <= depth; k++)
        if (stack[k] == v) break
      for (; k <= depth; k++) path = path stack[k] " -> "
      print "check-deps: cycle: " path v " (" via[u, v] ")"
      bad = 1
    } else if (state[v] == 0) {
      dfs(v)
    }
  }
  depth--; state[u] = 2
}
NF >= 3 {
  if (!(($1, $2) in seen)) {
    seen[$1, $2] = 1; out[$1, ++nout[$1]] = $2; via[$1, $2] = $3
  }
  mod[$1] = 1; mod[$2] = 1
  if ($2 == "main") { print "check-deps: " $3 " includes main"; bad = 1 }
  if ($2 == "daemon" && $1 != "main" && $1 != "cli") {
    print "check-deps: " $3 " includes daemon.h: modules are wired by the " \
          "daemon and never call back into it"
    bad = 1
  }
}
END {
  for (m in mod) if (state[m] == 0) dfs(m)
  n = 0; for (m in mod) n++
  if (bad) { print "check-deps: FAILED"; exit 1 }
  print "check-deps: " n " modules, no cycle, daemon and main on top"
}'
