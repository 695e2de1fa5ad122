#!/bin/bash
# test_roles.sh - `mlopsd serve --role api|scheduler|all` (server.role,
# MLOPSD_SERVER_ROLE; docs/scale-out.md).  Real daemons ($MLOPSD_BIN)
# against the test MariaDB, database it_roles:
#   api        /readyz names the role, /predict answers, the admin API is
#              routed, a queued DAG run is not started (no scheduler)
#   scheduler  --role wins over the file; /readyz names the role, /predict
#              /metadata and /api/v2 are 404, /metrics and /healthz answer,
#              the run queued while only the api ran finishes
#   not_ready  a scheduler whose database cannot be reached: /readyz 503
#              with the role and the database error
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
if lf_db_prepare && lf_train_promote 1; then ok setup; else
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

section bad_role
expect flag_refused 2 "$BIN" serve --role worker
has flag_names_values "$T/err" "expected all, api or scheduler"
MLOPSD_SERVER_ROLE=worker "$BIN" serve >"$T/out" 2>"$T/err"
check env_refused test $? != 0
has env_names_key "$T/err" "MLOPSD_SERVER_ROLE"
lf_done
