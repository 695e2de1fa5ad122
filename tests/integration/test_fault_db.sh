#!/bin/bash
# test_fault_db.sh - MariaDB stopped under the daemon, during a DAG run and
# during serving at the same time (tests/mariadb.sh stop/start of the
# shared test server; tests run one after another, so nothing else uses
# it meanwhile).  Real daemon ($MLOPSD_BIN), database it_fault_db.
#
# A request stream runs the whole time (each request its own
# customer_id).  A DAG run (shell -> sql insert -> shell) is in its first
# task when MariaDB stops for OUTAGE seconds (5; 30 with
# MLOPSD_LONG_TESTS=1).  During the outage: /predict keeps answering 200,
# /healthz 200, /readyz 503 naming the database, the admin API 503, the
# CLI fails with a clear message.  Afterwards: the run finishes with
# success, its SQL row exactly once, one task instance per task, and
# after a graceful stop every 200 answer is in the prediction log
# exactly once (rows went to the spool and were replayed).
. "$(dirname "$0")/lib_fault.sh"
lf_init fault_db
OUTAGE=$([ "${MLOPSD_LONG_TESTS:-0}" = 1 ] && echo 30 || echo 5)
TOK="fault-db-token"

section setup
lf_fast_spec
LF_LEASE_S=5 lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi
sql "$DB" -e "CREATE TABLE fault_marks (id INT AUTO_INCREMENT PRIMARY KEY,
  run_id VARCHAR(250) NOT NULL, ds VARCHAR(10) NOT NULL)"
cat >"$T/dags/outage.yaml" <<EOF
dag_id: fault_outage
schedule: null
start_date: 2025-01-01
default_args: {retries: 5, retry_delay: 2s}
tasks:
  - id: before
    type: shell
    command: echo start >> $T/side_before; sleep 3; echo end >> $T/side_before
  - id: mark
    type: sql
    depends_on: [before]
    transaction: true
    sql: INSERT INTO fault_marks (run_id, ds) VALUES ('{{ run_id }}', '{{ ds }}');
  - id: after
    type: shell
    depends_on: [mark]
    command: echo after >> $T/side_after
EOF

lf_start MLOPSD_ADMIN_TOKEN=$TOK
lf_wait_ready 30 && ok ready || bad ready
python3 "$SRC/tests/integration/lib_load.py" --port "$PORT" --out "$T/load.ans" \
  --start 3000000 --threads 3 --rate 300 --seconds 600 >"$T/load.out" &
LOAD=$!
"$BIN" dags trigger fault_outage --date 2025-09-01 >"$T/out" 2>&1
RUN=$(sed -n 's/^queued run //p' "$T/out")
for _ in $(seq 1 100); do [ -s "$T/side_before" ] && break; sleep 0.1; done
check task_started test -s "$T/side_before"

section "MariaDB stopped"
lf_dbstop
t0=$SECONDS
sleep 1.5
eq outage_predict "$(lf_predict 1)" 200
eq outage_healthz "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" 200
code=$(curl -s -o "$T/readyz" -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")
eq outage_readyz_503 "$code" 503
has outage_readyz_reason "$T/readyz" "database"
code=$(curl -s -o "$T/admin" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
  "http://127.0.0.1:$PORT/api/v2/dags/fault_outage/dagRuns")
eq outage_admin_503 "$code" 503
expect outage_cli_fails 1 "$BIN" runs list fault_outage
has outage_cli_message "$T/err" "cannot connect"
spooled=""
for _ in $(seq 1 50); do
  spooled=$(lf_metric mlopsd_plog_spool_records)
  [ "${spooled:-0}" -gt 0 ] && break; sleep 0.1
done
check outage_rows_spooled bash -c "[ ${spooled:-0} -gt 0 ]"
sleep $(( OUTAGE - (SECONDS - t0) > 0 ? OUTAGE - (SECONDS - t0) : 0 ))
lf_dbstart
echo "  MariaDB was down for $((SECONDS - t0)) s"

section "MariaDB back"
eq run_success "$(for _ in $(seq 1 300); do
  st=$(sql "$DB" -e "SELECT state FROM dag_run WHERE run_id='$RUN'" 2>/dev/null)
  case "$st" in success|failed) break ;; esac; sleep 0.2; done; echo "$st")" success
eq mark_once "$(sql "$DB" -e "SELECT COUNT(*) FROM fault_marks WHERE run_id='$RUN'")" 1
eq after_once "$(cat "$T/side_after" 2>/dev/null)" after
eq task_instances "$(sql "$DB" -e "SELECT COUNT(*) FROM task_instance WHERE run_id='$RUN'")" 3
sql "$DB" -e "SELECT task_id, state, try_number FROM task_instance WHERE run_id='$RUN'
  ORDER BY task_id" >"$T/ti"
echo "  task instances: $(tr '\t\n' ' ;' <"$T/ti")"
for _ in $(seq 1 100); do
  [ "$(lf_metric mlopsd_plog_spool_records)" = 0 ] && break; sleep 0.1
done
eq spool_drained "$(lf_metric mlopsd_plog_spool_records)" 0
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1
done
eq readyz_back "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" 200
sleep 1
kill -TERM $LOAD; wait $LOAD
replayed=$(lf_metric mlopsd_plog_rows_replayed_total)
lf_term
eq clean_exit "$DRC" 0
read -r load_summary <"$T/load.out"
r=$(lf_exactly_once "$T/load.ans" 3000000 3999999)
echo "  prediction log: $r; replayed from the spool: $replayed; load: $load_summary"
n200=$(grep -c ' 200$' "$T/load.ans")
nall=$(wc -l <"$T/load.ans")
eq all_answered_200 "$n200" "$nall"
eq exactly_once "$r" "answered200=$n200 found=$n200 lost=0 dup=0 phantom=0"
check wrote_through_outage bash -c "[ ${replayed:-0} -gt 0 ]"
LF_FIGURES="outage ${OUTAGE}s; requests during the test: $nall, answered 200: $n200; $r; rows replayed from the spool: $replayed; task instances: $(tr '\t\n' ' ;' <"$T/ti")"
lf_done
