#!/bin/bash
# tests/cluster/test_cluster.sh - mlopsd past one machine, on loopback
# (issue 14, docs/scale-out.md): a three-node Galera cluster
# (tests/galera.sh), haproxy in front of it (node 1 active, nodes 2 and 3
# backup: writes through one node at a time) and in front of three `api`
# replicas, and two `scheduler` daemons connected to different Galera
# nodes directly.  Run by `make test-cluster` (not by `make test`).
#
# Scenarios (each a count in the summary):
#   db_init_two_hosts   `db init` through node 1 and node 2 at once: each
#                       migration applied once
#   promote_followed    a promotion through replica 1's admin API is served
#                       by all three replicas; the time is printed
#   runs_exactly_once   two schedulers on different nodes, 50 runs x 5
#                       tasks: every task ran exactly once
#   takeover            kill -9 of the scheduler holding a long task: the
#                       other takes it over within the lease (+ slack)
#   api_kill9           kill -9 of one replica under load through haproxy:
#                       the others answer, the replica restarts, every 200
#                       is in credit_predictions_api_log exactly once
#   galera_node_kill    kill -9 of Galera node 1 (haproxy's active) during
#                       a CT run and a request stream: the run finishes, no
#                       task ran twice, no answered prediction lost; the
#                       node rejoins
. "$(dirname "$0")/../integration/lib_fault.sh"

command -v haproxy >/dev/null || {
  echo "check: skip cluster: haproxy not installed (scripts/install-deps.sh)"
  echo "check: 0 passed, 0 failed, 1 skipped"; exit 0; }
GD=$(mktemp -d /tmp/cluster-galera.XXXXXX)
HAPID=""; APIDS=(); SPIDS=()
cl_stop_all() {
  local p
  for p in "${APIDS[@]}" "${SPIDS[@]}" $HAPID; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null
  done
  "$SRC/tests/galera.sh" stop "$GD" >/dev/null 2>&1
  [ -z "${MLOPSD_KEEP_TMP:-}" ] && rm -rf "$GD"
}
t_galera=$SECONDS
if ! envs=$("$SRC/tests/galera.sh" start "$GD"); then
  cl_stop_all
  echo "check: 0 passed, 1 failed"; exit 1
fi
eval "$envs"
t_galera=$((SECONDS - t_galera))
read -r P1 P2 P3 <<<"$GALERA_PORTS"
lf_init cluster
LF_CLEANUP_EXTRA=cl_stop_all
lf_config   # $T/mlopsd.yaml: what the CLI commands below use
export MLOPSD_ADMIN_TOKEN=cluster-test-token
echo "galera: 3 nodes synced in ${t_galera}s ($(uptime | sed 's/.*load/load/'))"
LF_FIGURES="galera_start_s=$t_galera"

# ---- haproxy ----------------------------------------------------------
DBP=$(free_port); LBP=$(free_port)
AP=("$(free_port)" "$(free_port)" "$(free_port)")
cat >"$T/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    timeout connect 2s
    timeout client 120s
    timeout server 120s
# MariaDB: node 1 takes every connection while it is up; 2 and 3 wait as
# backups (writes through one node at a time, docs/scale-out.md)
frontend db
    mode tcp
    bind 127.0.0.1:$DBP
    default_backend galera
backend galera
    mode tcp
    option tcp-check
    default-server inter 500 fall 2 rise 2 on-marked-down shutdown-sessions
    server n1 127.0.0.1:$P1 check
    server n2 127.0.0.1:$P2 check backup
    server n3 127.0.0.1:$P3 check backup
# the api replicas: a request is retried elsewhere only when the
# connection failed, never after it may have been answered
frontend api
    mode http
    bind 127.0.0.1:$LBP
    default_backend api
backend api
    mode http
    balance roundrobin
    option httpchk GET /readyz
    retries 2
    option redispatch
    retry-on conn-failure
    default-server inter 500 fall 2 rise 2
    server a1 127.0.0.1:${AP[0]} check
    server a2 127.0.0.1:${AP[1]} check
    server a3 127.0.0.1:${AP[2]} check
EOF
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HAPID=$!

# ---- daemons ----------------------------------------------------------
lf_fast_spec
cl_config() {  # cl_config NAME HTTP_PORT DB_PORT: $T/NAME/mlopsd.yaml
  mkdir -p "$T/$1/spool"
  cat >"$T/$1/mlopsd.yaml" <<EOF
server:
  listen: "127.0.0.1:$2"
  threads: 2
  spool_dir: $T/$1/spool
  default_model: $MODEL
database:
  port: $3
  name: $DB
  connect_timeout: 2
models:
  specs_dir: $T/models
  registry_dir: $T/registry
  follow_ms: 1000
scheduler:
  dags_dir: $T/dags
  tick_ms: 200
  lease_s: 5
  workers: 2
logging:
  level: info
EOF
}
start_api() {  # start_api I (0..2)
  cl_config "api$1" "${AP[$1]}" "$DBP"
  (cd "$T/api$1" && exec "$BIN" -c "$T/api$1/mlopsd.yaml" serve --role api) \
    >>"$T/daemon-api$1.log" 2>&1 &
  APIDS[$1]=$!
}
start_sched() {  # start_sched I DBPORT
  cl_config "sched$1" "$(free_port)" "$2"
  (cd "$T/sched$1" && exec "$BIN" -c "$T/sched$1/mlopsd.yaml" serve \
    --role scheduler) >>"$T/daemon-sched$1.log" 2>&1 &
  SPIDS[$1]=$!
}
ready() {  # ready PORT [S]
  daemon_pid="" wait_http "http://127.0.0.1:$1/readyz" "${2:-60}"
}

section db_init_two_hosts
# one of them applies every migration, the other waits for the schema
# lock and finds nothing to do (or they share the work); never twice
MLOPSD_DATABASE_PORT=$P1 "$BIN" db init >"$T/init1.log" 2>&1 & i1=$!
MLOPSD_DATABASE_PORT=$P2 "$BIN" db init >"$T/init2.log" 2>&1; r2=$?
wait $i1; r1=$?
eq init1_ok "$r1" 0; eq init2_ok "$r2" 0
nmig=$(ls sql/migrations/*.sql | wc -l)
napplied=$(cat "$T/init1.log" "$T/init2.log" | grep -c '^applied ')
eq each_migration_applied_once "$napplied" "$nmig"
dup=$(sql -P "$P3" "$DB" -e "SELECT COUNT(*) FROM (SELECT version FROM
  schema_version GROUP BY version HAVING COUNT(*) > 1) d")
eq no_duplicate_versions_on_node3 "$dup" 0
export MLOPSD_DATABASE_PORT=$DBP   # from here on: through haproxy
if "$BIN" db seed >"$T/seed.log" 2>&1 &&
   sed 's/{{ ds }}/2025-09-01/g' sql/features.sql | sql "$DB" &&
   lf_train_promote 2; then ok seeded_trained; else
  bad seeded_trained; cat "$T/seed.log" | tail -5; fi

section start
for i in 0 1 2; do start_api $i; done
start_sched 0 "$P1"; start_sched 1 "$P2"
for i in 0 1 2; do ready "${AP[$i]}" 90 && ok "api$i ready" || bad "api$i ready"; done
for i in 0 1; do
  p=$(sed -n 's/^  listen: "127.0.0.1:\(.*\)"/\1/p' "$T/sched$i/mlopsd.yaml")
  SP[$i]=$p
  ready "$p" 60 && ok "sched$i ready" || bad "sched$i ready"
done
ready "$LBP" 30 && ok lb_ready || bad lb_ready

section promote_followed
mdv() {  # model version served by the replica on port $1
  curl -s "http://127.0.0.1:$1/metadata" | python3 -c \
    'import json,sys; print(json.load(sys.stdin).get("model_version"))' 2>/dev/null
}
for i in 0 1 2; do eq "api$i serves v1" "$(mdv "${AP[$i]}")" 1; done
code=$(curl -s -o "$T/promote.json" -w '%{http_code} %{time_total}' -X POST \
  -H "Authorization: Bearer $MLOPSD_ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"version": 2, "reason": "cluster test"}' \
  "http://127.0.0.1:${AP[0]}/api/v2/models/$MODEL/promote")
eq promote_200 "${code% *}" 200
echo "  the promote request took ${code#* } s"
for i in 0 1 2; do
  for _ in $(seq 1 150); do [ "$(mdv "${AP[$i]}")" = 2 ] && break; sleep 0.1; done
  eq "api$i serves v2" "$(mdv "${AP[$i]}")" 2
done
# the bound: from the deployment row's commit to each replica's swap line
row=$(sql "$DB" -e "SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%f')
  FROM deployment WHERE to_version = 2 AND action = 'promote'")
worst=0
for i in 0 1 2; do
  swap=$(grep -m1 'version=2 swapped in' "$T/daemon-api$i.log" | cut -d' ' -f1)
  ms=$(python3 -c 'import sys, datetime as d
a = d.datetime.fromisoformat(sys.argv[1])
b = d.datetime.fromisoformat(sys.argv[2].rstrip("Z"))
print(int((b - a).total_seconds() * 1000))' "$row" "$swap" 2>/dev/null || echo 99999)
  echo "  api$i: deployment row -> swapped in: $ms ms"
  [ "$ms" -gt "$worst" ] && worst=$ms
done
echo "  promotion served by all three within ${worst} ms of the row (bound:" \
  "follow_ms 1000 + poll 500 + load; $(uptime | sed 's/.*load/load/'))"
check all3_within_bound test "$worst" -lt 5000
LF_FIGURES="$LF_FIGURES promote_all3_ms=$worst"

section runs_exactly_once
cat >"$T/dags/cl_chain.yaml" <<EOF
dag_id: cl_chain
schedule: null
start_date: 2025-01-01
max_active_runs: 50
tasks:
  - {id: t1, type: shell, command: "echo {{ run_id }} t1 >> $T/exec.log"}
  - {id: t2, type: shell, command: "echo {{ run_id }} t2 >> $T/exec.log", depends_on: [t1]}
  - {id: t3, type: shell, command: "echo {{ run_id }} t3 >> $T/exec.log", depends_on: [t1]}
  - {id: t4, type: shell, command: "echo {{ run_id }} t4 >> $T/exec.log", depends_on: [t2, t3]}
  - {id: t5, type: shell, command: "echo {{ run_id }} t5 >> $T/exec.log", depends_on: [t4]}
EOF
sleep 3   # both schedulers rescan the DAG directory (every 2 s)
"$BIN" dags unpause cl_chain >/dev/null 2>&1
t0=$SECONDS
for d in $(seq 1 50); do
  "$BIN" dags trigger cl_chain --date "2025-10-01T00:$(printf %02d $((d / 60))):$(printf %02d $((d % 60)))" \
    >/dev/null 2>&1 || bad "trigger $d"
done
for _ in $(seq 1 600); do
  left=$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE dag_id='cl_chain'
    AND state NOT IN ('success','failed')")
  [ "$left" = 0 ] && break; sleep 0.5
done
eq all_runs_done "$left" 0
eq all_50_success "$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE
  dag_id='cl_chain' AND state='success'")" 50
eq lines_250 "$(wc -l <"$T/exec.log")" 250
eq no_task_twice "$(sort "$T/exec.log" | uniq -d | wc -l)" 0
eq all_try_1 "$(sql "$DB" -e "SELECT COUNT(*) FROM task_instance WHERE
  dag_id='cl_chain' AND try_number <> 1")" 0
by=$(sql "$DB" -e "SELECT COUNT(DISTINCT pid) FROM task_instance WHERE dag_id='cl_chain'")
echo "  50 runs x 5 tasks in $((SECONDS - t0)) s, claimed by $by scheduler(s)"
check both_schedulers_claimed test "$by" = 2
LF_FIGURES="$LF_FIGURES runs50x5_s=$((SECONDS - t0))"

section takeover
cat >"$T/dags/cl_long.yaml" <<EOF
dag_id: cl_long
schedule: null
start_date: 2025-01-01
default_args: {retries: 2, retry_delay: 1s}
tasks:
  - {id: slow, type: shell, command: "echo start >> $T/long.log; sleep 6; echo end >> $T/long.log"}
EOF
sleep 3
"$BIN" dags unpause cl_long >/dev/null 2>&1
lf_trigger cl_long 2025-10-02
owner=""
for _ in $(seq 1 100); do
  owner=$(sql "$DB" -e "SELECT pid FROM task_instance WHERE dag_id='cl_long'
    AND state='running'")
  [ -n "$owner" ] && break; sleep 0.1
done
check claimed test -n "$owner"
victim=""; for i in 0 1; do [ "${SPIDS[$i]}" = "$owner" ] && victim=$i; done
check owner_is_a_scheduler test -n "$victim"
t0=$(date +%s%N)
kill -9 "$owner"
new=""
for _ in $(seq 1 300); do
  new=$(sql "$DB" -e "SELECT pid FROM task_instance WHERE dag_id='cl_long'
    AND state='running' AND pid <> $owner")
  [ -n "$new" ] && break; sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check taken_over test -n "$new"
echo "  kill -9 of the claiming scheduler -> running elsewhere after ${ms} ms (lease 5 s)"
check within_lease_plus_slack test "$ms" -lt 12000
LF_FIGURES="$LF_FIGURES takeover_ms=$ms"
eq long_run_success "$(lf_wait_run "$RUN" 60)" success
start_sched "$victim" "$([ "$victim" = 0 ] && echo "$P1" || echo "$P2")"

section api_kill9
python3 "$SRC/tests/integration/lib_load.py" --port "$LBP" --out "$T/k.ans" \
  --start 5000000 --threads 2 --rate 100 --seconds 12 >"$T/k.out" &
LOAD=$!
sleep 4
kill -9 "${APIDS[1]}"
sleep 4
start_api 1
wait $LOAD
cat "$T/k.out"
ready "${AP[1]}" 60 && ok restarted || bad restarted
n200=$(awk '$2==200' "$T/k.ans" | wc -l)
nother=$(awk '$2!=200' "$T/k.ans" | wc -l)
echo "  answers: 200=$n200 other=$nother"
check most_answered test "$n200" -gt 500
for i in 0 1 2; do PORT=${AP[$i]} lf_drained 60 || bad "drained api$i"; done
if lf_exactly_once "$T/k.ans" 5000000 5999999; then ok every_200_once; else bad every_200_once; fi

section galera_node_kill
lf_ct_dag "$T/dags/cl_ct.yaml" 2
sed -i 's/dag_id: credit_score_classification_ct/dag_id: cl_ct/' "$T/dags/cl_ct.yaml"
sleep 3
"$BIN" dags unpause cl_ct >/dev/null 2>&1
python3 "$SRC/tests/integration/lib_load.py" --port "$LBP" --out "$T/g.ans" \
  --start 6000000 --threads 2 --rate 50 --seconds 600 >"$T/g.out" &
LOAD=$!
lf_trigger cl_ct 2025-09-01
sleep 3
"$SRC/tests/galera.sh" kill "$GD" 1
echo "  node 1 killed at $(date +%T)"
st=$(MLOPSD_DATABASE_PORT=$P2 lf_wait_run "$RUN" 240)
eq ct_run_success "$st" success
kill -TERM $LOAD; wait $LOAD; cat "$T/g.out"
awk '{print $2}' "$T/g.ans" | sort | uniq -c | sed 's/^/  outcome /'
echo "  what the replicas logged while node 1 was away (last lines):"
grep -h ' WARN \| ERROR ' "$T"/daemon-api*.log | tail -6 | cut -c1-220 | sed 's/^/  | /'
eq ct_no_task_twice "$(sql -P "$P2" "$DB" -e "SELECT COUNT(*) FROM task_instance
  WHERE dag_id='cl_ct' AND try_number <> 1")" 0
for i in 0 1 2; do PORT=${AP[$i]} lf_drained 60 || bad "drained api$i"; done
if lf_exactly_once "$T/g.ans" 6000000 6999999; then ok no_prediction_lost; else bad no_prediction_lost; fi
t0=$SECONDS
"$SRC/tests/galera.sh" join "$GD" 1 >/dev/null 2>&1 && ok node1_rejoined || bad node1_rejoined
echo "  node 1 rejoined in $((SECONDS - t0)) s; cluster size $("$SRC/tests/galera.sh" size "$GD" 1)"

section stop
for i in 0 1 2; do kill -TERM "${APIDS[$i]}" 2>/dev/null; done
for i in 0 1; do kill -TERM "${SPIDS[$i]}" 2>/dev/null; done
sleep 3
for f in "$T"/daemon-*.log; do
  hasnt "no_crash_$(basename "$f")" "$f" "AddressSanitizer"
done
lf_done
