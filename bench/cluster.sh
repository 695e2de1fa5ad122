#!/bin/bash
# bench/cluster.sh - figures for docs/scale-out.md (issue 14), on this
# machine only (2 cores: more replicas cannot add CPU; read the CPU per
# request, not the throughput, as what scales on real hosts).
#
#   A. POST /predict through haproxy to 1, 2 and 3 `api` replicas (one
#      MariaDB, tests/mariadb.sh): wrk -t2 -c32 for BENCH_SECONDS (10)
#      each; requests/s, p99, and CPU microseconds per request of haproxy,
#      of the replicas together, of MariaDB (the log rows) and of wrk.
#   B. Insert cost per logged row, single MariaDB vs the three-node Galera
#      cluster (tests/galera.sh): build/bench/bench_plog_insert against
#      one server, then against Galera node 1, with the CPU of every
#      mariadbd process of the run summed and divided by the rows stored.
#
#   make tests-build build/bench/bench_plog_insert && bench/cluster.sh
# BENCH_PARTS="A B" (default both).  Prints the load average with each line.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BIN=$BUILD/mlopsd
SECS=${BENCH_SECONDS:-10}
PARTS=${BENCH_PARTS:-"A B"}
MLOPSD_SHARED=${MLOPSD_SHARED:-$(tests/shared_dir.sh)}
export MLOPSD_SHARED MLOPSD_SRC=$PWD
T=$(mktemp -d /tmp/bench_cluster.XXXXXX); chmod 755 "$T"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  tests/mariadb.sh stop "$T/db" >/dev/null 2>&1
  [ -d "$T/galera" ] && tests/galera.sh stop "$T/galera" >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
ticks() {  # ticks PID...: utime+stime of the processes, in clock ticks
  local p s=0 v
  for p in "$@"; do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    s=$((s + v))
  done
  echo "$s"
}
HZ=$(getconf CLK_TCK)
load() { cut -d' ' -f1-3 /proc/loadavg; }

part_a() {
  envs=$(tests/mariadb.sh start "$T/db") || { echo "MariaDB did not start"; return 1; }
  eval "$envs"
  export MLOPSD_DATABASE_NAME=bench_cluster
  local dbpid; dbpid=$(cat "$T/db/mysqld.pid")
  mkdir -p "$T/models" "$T/registry" "$T/dags"
  cat >"$T/mlopsd.yaml" <<EOF
models: {specs_dir: $PWD/config/models, registry_dir: $T/registry}
scheduler: {dags_dir: $T/dags}
logging: {level: warn}
EOF
  export MLOPSD_CONFIG=$T/mlopsd.yaml
  "$BIN" db init >/dev/null && "$BIN" db seed >/dev/null &&
    sed 's/{{ ds }}/2025-09-01/g' sql/features.sql | mariadb --no-defaults \
      -h127.0.0.1 -P"$MLOPSD_DATABASE_PORT" -umlops -pmlops-test-pw bench_cluster &&
    "$BIN" models train credit_score_classification --date 2025-09-01 \
      >"$T/train.log" 2>&1 &&
    "$BIN" models promote credit_score_classification 1 >/dev/null ||
    { echo "setup failed"; tail "$T/train.log"; return 1; }
  local ap=() i
  for i in 0 1 2; do
    ap[$i]=$(free_port)
    mkdir -p "$T/api$i"
    cat >"$T/api$i/mlopsd.yaml" <<EOF
server: {listen: "127.0.0.1:${ap[$i]}", threads: 2, spool_dir: $T/api$i}
models: {specs_dir: $PWD/config/models, registry_dir: $T/registry}
scheduler: {dags_dir: $T/dags}
logging: {level: warn}
EOF
    "$BIN" -c "$T/api$i/mlopsd.yaml" serve --role api >"$T/api$i.log" 2>&1 &
    PIDS+=($!); APID[$i]=$!
  done
  for i in 0 1 2; do
    for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:${ap[$i]}/readyz" && break; sleep 0.1; done
  done
  echo "A. /predict through haproxy (wrk -t2 -c32 ${SECS}s; us = CPU microseconds per request)"
  echo "   replicas  req/s   p99_ms  haproxy_us  replicas_us  mariadb_us  wrk_us  load"
  local n lb
  for n in 1 2 3; do
    lb=$(free_port)
    {
      printf 'global\n    maxconn 4000\n    nbthread 1\ndefaults\n    mode http\n'
      printf '    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n'
      printf 'frontend api\n    bind 127.0.0.1:%s\n    default_backend api\n' "$lb"
      printf 'backend api\n    balance roundrobin\n    http-reuse always\n'
      for i in $(seq 0 $((n - 1))); do
        printf '    server a%s 127.0.0.1:%s\n' "$i" "${ap[$i]}"
      done
    } >"$T/haproxy.cfg"
    haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
    local hp=$!
    sleep 0.5
    local h0 r0 d0 r1 h1 d1 out
    h0=$(ticks $hp); r0=$(ticks "${APID[@]}"); d0=$(ticks "$dbpid")
    out=$(BODIES=$MLOPSD_SHARED/data/credit/predict_requests.jsonl \
      /usr/bin/time -f "%U %S" -o "$T/wrk.time" \
      wrk -t2 -c32 -d"${SECS}s" -s bench/bench_serve.lua "http://127.0.0.1:$lb/predict" |
      grep RESULT)
    sleep 2   # let the log rows reach MariaDB
    h1=$(ticks $hp); r1=$(ticks "${APID[@]}"); d1=$(ticks "$dbpid")
    kill "$hp"; wait "$hp" 2>/dev/null
    local reqs rps p99 non2xx wrk_s
    reqs=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$out")
    rps=$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$out")
    p99=$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$out")
    non2xx=$(sed 's/.*non2xx=\([0-9]*\).*/\1/' <<<"$out")
    wrk_s=$(awk '{print $1 + $2}' "$T/wrk.time")
    awk -v n="$n" -v q="$reqs" -v r="$rps" -v p="$p99" -v hz="$HZ" \
      -v h=$((h1 - h0)) -v a=$((r1 - r0)) -v d=$((d1 - d0)) -v w="$wrk_s" \
      -v x="$non2xx" -v l="$(load)" 'BEGIN {
        u = 1e6 / hz / (q > 0 ? q : 1)
        printf "   %8d  %6d  %6.2f  %10.1f  %11.1f  %10.1f  %6.1f  %s%s\n",
          n, r, p, h * u, a * u, d * u, w * 1e6 / (q > 0 ? q : 1), l,
          (x > 0 ? "  non2xx=" x : "") }'
  done
  for i in 0 1 2; do kill -TERM "${APID[$i]}"; done
  wait "${APID[@]}" 2>/dev/null
  tests/mariadb.sh stop "$T/db" >/dev/null 2>&1
}

plog_run() {  # plog_run LABEL PIDS...: bench_plog_insert + CPU of PIDS
  local label=$1; shift
  local c0 c1 t0 t1 out rows ways
  c0=$(ticks "$@"); t0=$(date +%s.%N)
  out=$(BENCH_PLOG_ROWS=${BENCH_PLOG_ROWS:-20000} BENCH_PLOG_REPS=1 \
    "$BUILD/bench/bench_plog_insert") || { echo "$out"; return 1; }
  c1=$(ticks "$@"); t1=$(date +%s.%N)
  echo "$out" | sed 's/^/     | /'
  ways=$(grep -c 'us/row' <<<"$out")
  rows=$(( ways * (${BENCH_PLOG_ROWS:-20000} + 1000) ))
  awk -v l="$label" -v c=$((c1 - c0)) -v hz="$HZ" -v r="$rows" \
    -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" -v ld="$(load)" \
    'BEGIN { printf "   %-26s every mariadbd: %6.1f us/row over %d rows (%.1f s)  load %s\n",
      l, c / hz * 1e6 / r, r, s, ld }'
}

part_b() {
  [ -x "$BUILD/bench/bench_plog_insert" ] ||
    { echo "B skipped: $BUILD/bench/bench_plog_insert not built"; return 0; }
  echo "B. Prediction log insert cost (bench_plog_insert, 1 run per way)"
  envs=$(tests/mariadb.sh start "$T/db1") || return 1
  (eval "$envs"; plog_run "single MariaDB" "$(cat "$T/db1/mysqld.pid")")
  tests/mariadb.sh stop "$T/db1" >/dev/null 2>&1
  envs=$(tests/galera.sh start "$T/galera") || { echo "Galera did not start"; return 1; }
  (eval "$envs"; plog_run "Galera, 3 nodes (via n1)" \
    "$(cat "$T/galera/n1/mysqld.pid")" "$(cat "$T/galera/n2/mysqld.pid")" \
    "$(cat "$T/galera/n3/mysqld.pid")")
}

echo "bench/cluster.sh: $(nproc) cores, load $(load)"
for p in $PARTS; do
  case $p in A) part_a ;; B) part_b ;; esac
done
