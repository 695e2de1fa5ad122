#!/bin/bash
# test_sched_backfill.sh - `mlopsd dags backfill` against MariaDB (database
# it_sched_backfill) and a real daemon, with shell-task DAGs:
#   - --help, usage errors (exit 2), unknown DAG (exit 1)
#   - --local: cron fire times of a scheduled DAG in [from, to] (a plain
#     --to takes the whole day), run_type backfill, conf reaches the
#     tasks, a failed date is reported with its task's error and the next
#     date still runs (exit 1); a second backfill over a wider range skips
#     the existing runs and runs only the new date
#   - --local replaces a run left `running` by a dead process
#   - daemon mode: a DAG without schedule gets one run a day; --wait prints
#     a line per run; max_active_runs 1 is honoured (no two runs overlap,
#     started in logical-date order); a failing run prints the failed
#     task's attempt line and exits 1; without --wait the runs are queued
#   - --local waits while max_active_runs runs of the DAG run in a daemon
. "$(dirname "$0")/../lib.sh"
tl_init sched_backfill

export MLOPSD_DATABASE_NAME=it_sched_backfill
export MLOPSD_SCHEDULER_DAGS_DIR=$tmp/dags
export MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-}
q() {
  mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
    -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" \
    -N -B it_sched_backfill -e "$1"
}
mkdir -p "$tmp/dags" "$tmp/spool"
cat >"$tmp/dags/bf_sched.yaml" <<'EOF'
dag_id: bf_sched
schedule: "0 3 * * *"
start_date: 2030-01-01      # a backfill is not limited by start_date
max_active_runs: 2
tasks:
  - id: one
    type: shell
    command: "echo ds={{ ds }} conf={{ conf.x }}"
  - id: two
    type: shell
    depends_on: [one]
    command: "test {{ ds }} != 2025-09-03"
EOF
cat >"$tmp/dags/bf_daily.yaml" <<'EOF'
dag_id: bf_daily
schedule: null
max_active_runs: 1
tasks:
  - id: work
    type: shell
    command: "sleep 0.3; echo {{ ds }}"
EOF
cat >"$tmp/dags/bf_fail.yaml" <<'EOF'
dag_id: bf_fail
schedule: null
tasks:
  - id: broken
    type: shell
    command: "echo no good >&2; exit 3"
EOF
cat >"$tmp/dags/bf_slow.yaml" <<'EOF'
dag_id: bf_slow
schedule: null
max_active_runs: 1
tasks:
  - id: nap
    type: shell
    command: "sleep 2"
EOF
if mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
     -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" \
     -e "DROP DATABASE IF EXISTS it_sched_backfill" &&
   "$BIN" db init >"$tmp/init.log" 2>&1; then ok database_ready
else cat "$tmp/init.log"; bad database_ready; fi

# ---- help and usage
scenario help_and_usage
expect help 0 "$BIN" dags backfill --help
has help_text "$tmp/out" "dags backfill DAG_ID --from DATE --to DATE"
expect usage_no_dag 2 "$BIN" dags backfill
expect usage_no_range 2 "$BIN" dags backfill bf_sched --from 2025-09-01
expect usage_bad_date 2 "$BIN" dags backfill bf_sched --from 2025-13-01 \
  --to 2025-09-02
expect usage_reversed 2 "$BIN" dags backfill bf_sched --from 2025-09-02 \
  --to 2025-09-01
has usage_reversed_msg "$tmp/err" "--to is before --from"
expect usage_bad_conf 2 "$BIN" dags backfill bf_sched --from 2025-09-01 \
  --to 2025-09-02 --conf '[1]'
expect usage_verbose_daemon 2 "$BIN" dags backfill bf_sched \
  --from 2025-09-01 --to 2025-09-02 --verbose
expect usage_timeout_nowait 2 "$BIN" dags backfill bf_sched \
  --from 2025-09-01 --to 2025-09-02 --timeout 5
expect usage_unknown_opt 2 "$BIN" dags backfill bf_sched --frm 2025-09-01
# trigger, test and backfill share one parser: each takes only its options
expect usage_trigger_no_dag 2 "$BIN" dags trigger
has usage_trigger_no_dag_msg "$tmp/err" "trigger needs a DAG_ID"
expect usage_test_no_dag 2 "$BIN" dags test
has usage_test_no_dag_msg "$tmp/err" "test needs a DAG_ID"
expect usage_test_no_wait 2 "$BIN" dags test bf_sched --wait
has usage_test_no_wait_msg "$tmp/err" "unknown option '--wait'"
expect usage_trigger_no_from 2 "$BIN" dags trigger bf_sched --from 2025-09-01
expect usage_backfill_no_date 2 "$BIN" dags backfill bf_sched \
  --date 2025-09-01 --from 2025-09-01 --to 2025-09-02
has usage_backfill_no_date_msg "$tmp/err" "unknown option '--date'"
# a --timeout without its value names no other option's value
expect usage_timeout_value 2 "$BIN" dags trigger bf_sched --date 2025-09-01 \
  --timeout
has usage_timeout_value_msg "$tmp/err" "--timeout needs seconds (try"
expect unknown_dag 1 "$BIN" dags backfill nosuch --from 2025-09-01 \
  --to 2025-09-02 --local
has unknown_dag_msg "$tmp/err" "no DAG 'nosuch'"

# ---- --local, scheduled DAG: fire times, conf, a failed date goes on
scenario local_scheduled_dag_fire_times_conf
expect local_first 1 "$BIN" dags backfill bf_sched --from 2025-09-01 \
  --to 2025-09-04 --local --conf '{"x": "hi"}'
has local_header "$tmp/out" "backfill bf_sched: 4 logical date(s)"
for d in 01 02 04; do
  has "local_ok_$d" "$tmp/out" \
    "2025-09-${d}T03:00:00+09:00  success"
done
has local_failed_03 "$tmp/out" "2025-09-03T03:00:00+09:00  failed"
has local_failed_why "$tmp/out" "    two: command exited with status 1"
has local_summary "$tmp/out" "3 run(s) succeeded, 1 failed, 0 already had a run"
eq local_rows "$(q "SELECT GROUP_CONCAT(CONCAT(run_type, ' ', state,
  ' ', DATE_FORMAT(logical_date, '%d %H')) ORDER BY logical_date
  SEPARATOR ', ') FROM dag_run WHERE dag_id = 'bf_sched'")" \
  "backfill success 31 18, backfill success 01 18, backfill failed 02 18, backfill success 03 18"
eq local_conf_reached_task "$(q "SELECT COUNT(*) FROM task_log WHERE
  run_id LIKE 'bf_sched__backfill__%' AND task_id = 'one' AND stream =
  'stdout' AND line LIKE 'ds=2025-09-0_ conf=hi'")" 4
eq local_conf_stored "$(q "SELECT COUNT(*) FROM dag_run WHERE dag_id =
  'bf_sched' AND JSON_VALUE(conf, '$.x') = 'hi'")" 4
# a backfill's runs were not triggered from outside (external_trigger 0)
eq local_not_external "$(q "SELECT COUNT(*) FROM dag_run WHERE dag_id =
  'bf_sched' AND run_type = 'backfill' AND external_trigger = 0")" 4
expect local_again 0 "$BIN" dags backfill bf_sched --from 2025-09-01 \
  --to 2025-09-05 --local --conf '{"x": "again"}'
has local_again_exists "$tmp/out" \
  "2025-09-03T03:00:00+09:00  exists          -  bf_sched__backfill__2025-09-03T03:00:00+09:00 (failed)"
has local_again_new "$tmp/out" "2025-09-05T03:00:00+09:00  success"
has local_again_summary "$tmp/out" \
  "1 run(s) succeeded, 0 failed, 4 already had a run (skipped)"
eq local_again_rows "$(q "SELECT COUNT(*) FROM dag_run WHERE dag_id =
  'bf_sched'")" 5

# ---- --local replaces a run left running by a process that is gone
scenario local_replaces_a_run_left_running
host=$(hostname)
q "INSERT INTO dag_run (run_id, dag_id, logical_date, run_type, state,
   queued_at, start_date, external_trigger, claimed_by, heartbeat_at)
   VALUES ('bf_sched__backfill__2025-09-06T03:00:00+09:00', 'bf_sched',
   '2025-09-05 18:00:00', 'backfill', 'running', UTC_TIMESTAMP(6),
   UTC_TIMESTAMP(6), 0, 'test:$host:4194000:dead', UTC_TIMESTAMP(6))"
expect local_orphan 0 "$BIN" dags backfill bf_sched --from 2025-09-06 \
  --to 2025-09-06 --local --conf '{"x": 1}'
has local_orphan_replaced "$tmp/out" "left by a process that is gone"
eq local_orphan_state "$(q "SELECT state FROM dag_run WHERE dag_id =
  'bf_sched' AND logical_date = '2025-09-05 18:00:00'")" success

# ---- a daemon
scenario a_daemon
port=$(free_port)
MLOPSD_SERVER_LISTEN=127.0.0.1:$port MLOPSD_SERVER_SPOOL_DIR=$tmp/spool \
  MLOPSD_MODELS_REGISTRY_DIR=$tmp/registry MLOPSD_SCHEDULER_TICK_MS=100 \
  MLOPSD_LOGGING_LEVEL=warn "$BIN" serve >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
check daemon_up wait_http "http://127.0.0.1:$port/healthz" 30

expect daemon_wait 0 "$BIN" dags backfill bf_daily --from 2025-09-01 \
  --to 2025-09-04 --wait --timeout 60
has daemon_wait_header "$tmp/out" "(no schedule: one a day), max_active_runs 1, queued for the daemons"
eq daemon_wait_lines "$(grep -c '^2025-09-0[1-4]T00:00:00+09:00  success ' "$tmp/out")" 4
has daemon_wait_summary "$tmp/out" "4 run(s) succeeded, 0 failed"
eq daemon_no_overlap "$(q "SELECT COUNT(*) FROM dag_run a JOIN dag_run b ON
  a.dag_id = b.dag_id AND a.id < b.id AND a.start_date < b.end_date AND
  b.start_date < a.end_date WHERE a.dag_id = 'bf_daily'")" 0
eq daemon_in_date_order "$(q "SELECT GROUP_CONCAT(DATE_FORMAT(logical_date,
  '%d') ORDER BY start_date SEPARATOR ' ') FROM dag_run WHERE dag_id =
  'bf_daily'")" "31 01 02 03"
expect daemon_fail 1 "$BIN" dags backfill bf_fail --from 2025-09-01 \
  --to 2025-09-01 --wait --timeout 60
has daemon_fail_line "$tmp/out" "2025-09-01T00:00:00+09:00  failed"
has daemon_fail_why "$tmp/out" \
  "    broken: attempt 1 failed: command exited with status 3"
expect daemon_queue 0 "$BIN" dags backfill bf_daily --from 2025-09-03 \
  --to 2025-09-06
has daemon_queue_exists "$tmp/out" "2025-09-04T00:00:00+09:00  exists"
has daemon_queue_queued "$tmp/out" "2025-09-06T00:00:00+09:00  queued"
has daemon_queue_summary "$tmp/out" "2 run(s) queued, 2 already had a run"

# ---- --local waits for a daemon's run (max_active_runs 1)
scenario local_waits_for_a_daemon_s
expect slow_queue 0 "$BIN" dags backfill bf_slow --from 2025-09-01 \
  --to 2025-09-01
for _ in $(seq 1 100); do
  [ "$(q "SELECT state FROM dag_run WHERE dag_id = 'bf_slow'")" = running ] && break
  sleep 0.05
done
expect slow_local 0 "$BIN" dags backfill bf_slow --from 2025-09-02 \
  --to 2025-09-02 --local
has slow_local_waited "$tmp/out" "waiting: 1 run(s) of bf_slow running (max_active_runs 1)"
eq slow_no_overlap "$(q "SELECT COUNT(*) FROM dag_run a JOIN dag_run b ON
  a.dag_id = b.dag_id AND a.id < b.id AND a.start_date < b.end_date AND
  b.start_date < a.end_date WHERE a.dag_id = 'bf_slow'")" 0
eq slow_both_done "$(q "SELECT GROUP_CONCAT(state) FROM dag_run WHERE
  dag_id = 'bf_slow'")" "success,success"

tl_done
