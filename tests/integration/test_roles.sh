#!/bin/bash
# test_roles.sh - `mlopsd serve --role api|scheduler|all` (server.role,
# MLOPSD_SERVER_ROLE; docs/scale-out.md).  Real daemons ($MLOPSD_BIN)
# against the test MariaDB, database it_roles:
#   api        /readyz names the role, /predict answers, the admin API is
#              routed, a queued DAG run is not started (no scheduler)
#   follow     an api replica follows production through table deployment
#              (models.follow_ms): a promotion recorded by "another host"
#              (a row only; this host's alias file untouched) is served
#              within the bound, without a restart; the time is printed
#   scheduler  --role wins over the file; /readyz names the role, /predict
#              /metadata and /api/v2 are 404, /metrics and /healthz answer,
#              the run queued while only the api ran finishes
#   not_ready  a scheduler whose database cannot be reached: /readyz 503
#              with the role and the database error
#   api_db_down an api replica whose database cannot be reached stays
#              ready (its rows spool) and answers /predict
#   bad_role   --role worker and MLOPSD_SERVER_ROLE=worker are refused with
#              the expected values named
. "$(dirname "$0")/lib_fault.sh"
lf_init roles

section setup
lf_fast_spec
lf_config
cat >"$T/dags/it_roles.yaml" <<EOF
dag_id: it_roles
schedule: null
start_date: 2025-01-01
tasks:
  - {id: work, type: shell, command: "echo role-test"}
EOF
if lf_db_prepare && lf_train_promote 2; then ok setup; else
  bad setup; lf_done; exit 1; fi
URL=http://127.0.0.1:$PORT

section api
lf_start MLOPSD_SERVER_ROLE=api
lf_wait_ready 60 && ok api_ready || bad api_ready
curl -s "$URL/readyz" >"$T/r.json"
has readyz_role_api "$T/r.json" '"role":"api"'
eq api_predict_200 "$(lf_predict 11)" 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/dags")
check admin_api_routed test "$code" != 404
"$BIN" dags unpause it_roles >/dev/null 2>&1
lf_trigger it_roles 2025-09-01
check run_queued test -n "$RUN"
sleep 2
st=$(sql "$DB" -e "SELECT state FROM dag_run WHERE run_id='$RUN'")
eq api_runs_no_dag "$st" queued
has log_role_api "$T/daemon.log" "role=api"

section follow
model_version() {
  curl -s "$URL/metadata" | python3 -c \
    'import json,sys; print(json.load(sys.stdin).get("model_version"))'
}
eq serves_v1 "$(model_version)" 1
sql "$DB" -e "INSERT INTO deployment (model, alias, from_version, to_version,
  action, actor, created_at) VALUES ('$MODEL', 'production', 1, 2, 'promote',
  'test:another-host', UTC_TIMESTAMP(6))"
v=""
for _ in $(seq 1 100); do
  v=$(model_version); [ "$v" = 2 ] && break; sleep 0.1
done
eq follows_row_v2 "$v" 2
# the bound: from the row's commit (created_at) to the daemon's swap line
row=$(sql "$DB" -e "SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%f')
  FROM deployment WHERE actor = 'test:another-host'")
swap=$(grep -m1 'version=2 swapped in' "$T/daemon.log" | cut -d' ' -f1)
ms=$(python3 -c 'import sys, datetime as d
a = d.datetime.fromisoformat(sys.argv[1])
b = d.datetime.fromisoformat(sys.argv[2].rstrip("Z"))
print(int((b - a).total_seconds() * 1000))' "$row" "$swap")
echo "  promotion row -> swapped in: ${ms} ms (follow_ms 1000; $(uptime | sed 's/.*load/load/'))"
LF_FIGURES="follow_ms=$ms"
check within_bound test "$ms" -lt 5000  # follow_ms + load, with slack for a loaded machine
eq alias_file_untouched "$(cat "$T/registry/$MODEL/aliases/production")" 1
eq predict_after_follow "$(lf_predict 13)" 200
lf_term
eq api_exit_0 "$DRC" 0

section scheduler
echo "---- scheduler $(date +%T.%N)" >>"$T/daemon.log"
(cd "$T" && exec "$BIN" serve --role scheduler) >>"$T/daemon.log" 2>&1 &
DPID=$!
lf_wait_ready 30 && ok sched_ready || bad sched_ready
curl -s "$URL/readyz" >"$T/r.json"
has readyz_role_scheduler "$T/r.json" '"role":"scheduler"'
has readyz_ready "$T/r.json" '"status":"ready"'
for p in /metadata /api/v2/dags /; do
  eq "sched_404_$p" "$(curl -s -o /dev/null -w '%{http_code}' "$URL$p")" 404
done
eq sched_predict_404 "$(lf_predict 12)" 404
eq sched_metrics_200 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" 200
eq sched_healthz_200 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" 200
eq queued_run_finishes "$(lf_wait_run "$RUN" 30)" success
has log_role_scheduler "$T/daemon.log" "role=scheduler"
lf_term
eq sched_exit_0 "$DRC" 0

section not_ready
dead=$(free_port)
echo "---- not ready $(date +%T.%N)" >>"$T/daemon.log"
(cd "$T" && exec env MLOPSD_DATABASE_PORT="$dead" \
  MLOPSD_DATABASE_HOST=127.0.0.1 "$BIN" serve --role=scheduler) \
  >>"$T/daemon.log" 2>&1 &
DPID=$!
lf_wait_up 30 && ok up || bad up
code=503
for _ in $(seq 1 100); do   # the first acquire gives up after its wait
  code=$(curl -s -o "$T/r.json" -w '%{http_code}' "$URL/readyz")
  grep -q 'not reachable' "$T/r.json" && break
  sleep 0.2
done
eq readyz_503 "$code" 503
has not_ready_role "$T/r.json" '"role":"scheduler"'
has not_ready_reason "$T/r.json" 'scheduler: database not reachable'
lf_term

section api_db_down
echo "---- api db down $(date +%T.%N)" >>"$T/daemon.log"
(cd "$T" && exec env MLOPSD_DATABASE_PORT="$dead" \
  MLOPSD_DATABASE_HOST=127.0.0.1 "$BIN" serve --role api) \
  >>"$T/daemon.log" 2>&1 &
DPID=$!
lf_wait_ready 30 && ok api_ready_without_db || bad api_ready_without_db
curl -s "$URL/readyz" >"$T/r.json"
has api_db_down_role "$T/r.json" '"role":"api"'
eq api_db_down_predict_200 "$(lf_predict 14)" 200
lf_kill9

section bad_role
expect flag_refused 2 "$BIN" serve --role worker
has flag_names_values "$T/err" "expected all, api or scheduler"
MLOPSD_SERVER_ROLE=worker "$BIN" serve >"$T/out" 2>"$T/err"
check env_refused test $? != 0
has env_names_key "$T/err" "MLOPSD_SERVER_ROLE"
lf_done
