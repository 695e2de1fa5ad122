#!/bin/bash
# bench/callgrind_serve.sh - instructions per logged /predict request (one
# item), counted by callgrind: load-independent, unlike the CPU times of
# bench_serve.sh on a shared machine (issue 16).
#
# Starts MariaDB (tests/mariadb.sh) and a registry as bench_serve.sh does,
# runs `mlopsd serve` under valgrind --tool=callgrind, instrumentation off,
# sends WARM requests, switches instrumentation on, sends N requests one after
# the other on one keep-alive connection (the course's request bodies, in
# turn), waits until the log stored them (the flusher's insert is part of
# the count), switches it off and prints:
#
#   - instructions per request: the whole daemon (every thread: HTTP,
#     flusher, ticker) and the HTTP handler alone (on_request, inclusive);
#   - the top functions by their own instructions (callgrind_annotate).
#
#   bench/callgrind_serve.sh [N]    (default 2000; WARM=200)
#   CALLGRIND_KEEP=FILE             keep the callgrind output
#
# Environment as bench_serve.sh (BUILD, MLOPSD_SRC, MLOPSD_BIN).  Needs
# valgrind (scripts/install-deps.sh) and python3.  Prints figures only.
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-build}
BIN=${MLOPSD_BIN:-$SRC/$BUILD/mlopsd}
N=${1:-2000}
WARM=${WARM:-200}
MLOPSD_SHARED=${MLOPSD_SHARED:-$("$SRC/tests/shared_dir.sh")}
export MLOPSD_SHARED
DATA=${MLOPSD_DATA:-$MLOPSD_SHARED/data/credit/predict_requests.jsonl}
cd "$SRC" || exit 1
command -v valgrind >/dev/null || { echo "callgrind_serve: valgrind not installed" >&2; exit 1; }
make -s BUILD="$BUILD" "$BUILD/mlopsd" "$BUILD/tests/integration/test_serve" >&2 || exit 1

. bench/lib.sh
VPID=""
bench_stop() { bench_kill "$VPID"; }
bench_serve_start callgrind_serve mlopsd-callgrind
cat >"$T/mlopsd.yaml" <<EOF
server:
  listen: "127.0.0.1:$PORT"
  threads: 2
  spool_dir: $T/spool
database:
  name: callgrind_serve
models:
  specs_dir: $SRC/config/models
  registry_dir: $T/registry
scheduler:
  dags_dir: $T/dags
logging:
  level: warn
EOF
bench_serve_registry callgrind_serve
bench_serve_db_init callgrind_serve

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$T/cg.out" \
  "$BIN" -c "$T/mlopsd.yaml" serve >"$T/daemon.log" 2>&1 &
VPID=$!
bench_wait_http "http://127.0.0.1:$PORT/readyz" 600 ||
  { echo "callgrind_serve: daemon not ready" >&2; tail "$T/daemon.log" >&2; exit 1; }

# send COUNT: COUNT requests, one keep-alive connection, bodies in turn;
# exits 1 unless every answer was 200
send() {
  python3 - "$PORT" "$DATA" "$1" <<'EOF'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
bodies = [l.strip().encode() for l in open(path) if l.strip()]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
bad = 0
for i in range(n):
    c.request("POST", "/predict", bodies[i % len(bodies)],
              {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    bad += r.status != 200
sys.exit(1 if bad else 0)
EOF
}
send "$WARM" || { echo "callgrind_serve: warm-up answers not 200" >&2; exit 1; }
sleep 1
callgrind_control -i on "$VPID" >/dev/null 2>&1
send "$N" || { echo "callgrind_serve: answers not 200" >&2; exit 1; }
sleep 1 # the flusher stores the last rows (every 50 ms)
callgrind_control -i off "$VPID" >/dev/null 2>&1
kill "$VPID"; wait "$VPID" 2>/dev/null; VPID=""
[ -n "${CALLGRIND_KEEP:-}" ] && cp "$T/cg.out" "$CALLGRIND_KEEP"

# callgrind 3.19 writes "summary: 0" when instrumentation starts off and
# the real count on the "totals:" line; annotate lines read
# "COUNT (PCT%)  FILE:FUNCTION [OBJECT]" (with "( 6.17%)" for small PCT)
total=$(awk '/^totals:/ {t = $2} /^summary:/ && $2 > 0 && !t {t = $2}
  END {print t + 0}' "$T/cg.out")
echo "callgrind_serve: $N logged /predict requests (one item each), load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v t="$total" -v n="$N" 'BEGIN { printf "  whole daemon: %.0f instructions per request\n", t / n }'
# fn: the function of an annotate line ("file:function" -> function)
FN='function fn(s) { sub(/^.*:/, "", s); return s } { gsub(/\( +/, "(") }'
callgrind_annotate --inclusive=yes "$T/cg.out" 2>/dev/null |
  awk -v n="$N" "$FN"'
    $1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ && $3 ~ /:(on_request|flush_job|do_predict|store_db)$/ {
      v = $1; gsub(",", "", v); printf "  inclusive %-24s %8.0f per request\n", fn($3), v / n }' |
  head -8
echo "  top functions, own instructions per request:"
callgrind_annotate "$T/cg.out" 2>/dev/null |
  awk -v n="$N" "$FN"'
    $1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ && NF >= 3 { v = $1; gsub(",", "", v);
    printf "  %8.0f %s %s\n", v / n, fn($3), $NF }' | head -"${CALLGRIND_TOP:-25}"
