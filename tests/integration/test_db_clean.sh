#!/bin/bash
# test_db_clean.sh - `mlopsd db clean`, the db_clean task type of the
# shipped maintenance DAG, and the daemon's side of the prediction log's
# upkeep (issue 20).  Real daemon ($MLOPSD_BIN), database it_db_clean.
#
#   clean       runs of several ages (100, 40, 20, 5 and 1 days; a DAG
#               whose only run is old), their task instances and 1,500 log
#               lines each, drift reports of two models: --dry-run prints
#               exactly what goes and changes nothing; the real run, in
#               batches of 500 rows, while a DAG of the daemon is running
#               and logging (its run made 100 days old, and not its DAG's
#               newest), removes exactly those rows and not the running
#               one; the running DAG finishes with all its lines;
#               no DELETE took longer than the lock-wait bound (2 s) plus
#               slack; a second run removes nothing
#   task        the shipped mlopsd_maintenance DAG's db_clean task, run by
#               `dags test`, removes an old run and says so in its log
#   usage       bad ages and arguments exit 2 with the reason
#   partitions  the daemon (logging.partition_s 10, maintenance_s 1) makes
#               partitions ahead; /metrics and the console's
#               /api/v2/serving show the log's size, partitions and free
#               space of the spool's and MariaDB's disks
#   readyz      server.spool_min_free_bytes above the free space: /readyz
#               503 naming the spool's disk
. "$(dirname "$0")/lib_fault.sh"
lf_init db_clean

section setup
lf_config
printf '  partition_s: 10\n  maintenance_s: 1\n' >>"$T/mlopsd.yaml"
# a DAG that runs ~6 s and logs a line every 0.2 s
printf '%s\n' 'dag_id: slow' 'schedule: null' 'start_date: 2025-01-01' \
  'tasks:' '  - id: work' '    type: shell' \
  '    command: "for i in $(seq 1 30); do echo line $i; sleep 0.2; done"' \
  >"$T/dags/slow.yaml"
if sql -e "DROP DATABASE IF EXISTS $DB" &&
   "$BIN" db init >"$T/init.log" 2>&1; then ok setup
else cat "$T/init.log"; bad setup; lf_done; exit 1; fi

# run NAME DAG AGE_DAYS STATE: a run with 3 task instances and 1500 lines
run() {
  local name=$1 dag=$2 age=$3 state=$4
  sql "$DB" -e "
    INSERT INTO dag_run (run_id, dag_id, logical_date, run_type, state,
      queued_at, start_date, end_date)
    VALUES ('$name', '$dag', UTC_TIMESTAMP() - INTERVAL $age DAY, 'manual',
      '$state', UTC_TIMESTAMP() - INTERVAL $age DAY,
      UTC_TIMESTAMP() - INTERVAL $age DAY,
      IF('$state' IN ('success', 'failed'),
         UTC_TIMESTAMP() - INTERVAL $age DAY + INTERVAL 1 MINUTE, NULL));
    INSERT INTO task_instance (run_id, dag_id, task_id, try_number, state)
    VALUES ('$name', '$dag', 'a', 1, 'success'),
           ('$name', '$dag', 'b', 1, 'success'),
           ('$name', '$dag', 'c', 1, 'failed');
    INSERT INTO task_log (run_id, task_id, try_number, ts, line)
    SELECT '$name', 'a', 1, UTC_TIMESTAMP() - INTERVAL $age DAY,
           CONCAT('old line ', seq) FROM seq_1_to_1500;"
}
run a_100 dag_a 100 success
run a_40 dag_a 40 failed
run a_20 dag_a 20 success
run a_1 dag_a 1 success
run b_100 dag_b 100 success
run b_40 dag_b 40 success
run b_5 dag_b 5 success
run lone dag_lone 100 success  # dag_lone's only run: stays
run s_old slow 100 success     # slow's only run until the daemon runs it
sql "$DB" -e "
  INSERT INTO drift_report (model, version, window_rows, verdict, created_at)
  VALUES ('m1', 1, 10, 'ok', UTC_TIMESTAMP() - INTERVAL 100 DAY),
         ('m1', 1, 10, 'ok', UTC_TIMESTAMP() - INTERVAL 40 DAY),
         ('m1', 1, 10, 'ok', UTC_TIMESTAMP() - INTERVAL 5 DAY),
         ('m2', 1, 10, 'ok', UTC_TIMESTAMP() - INTERVAL 100 DAY);"
counts() {
  sql "$DB" -e "SELECT (SELECT COUNT(*) FROM dag_run),
    (SELECT COUNT(*) FROM task_instance), (SELECT COUNT(*) FROM task_log),
    (SELECT COUNT(*) FROM drift_report)" | tr '\t' ' '
}
eq seeded "$(counts)" "9 27 13500 4"

section usage
expect no_age 2 "$BIN" db clean
has no_age_says "$T/err" "--older-than AGE is required"
expect bad_age 2 "$BIN" db clean --older-than 3x
has bad_age_says "$T/err" "--older-than '3x'"
expect zero_age 2 "$BIN" db clean --older-than 0
expect bad_batch 2 "$BIN" db clean --older-than 30 --batch 0
expect bad_arg 2 "$BIN" db clean --older-than 30 --force

section dry_run
expect dry 0 "$BIN" db clean --older-than 30 --dry-run
has dry_runs "$T/out" "dag_run: would remove 4 rows"
has dry_tis "$T/out" "task_instance: would remove 12 rows"
has dry_logs "$T/out" "task_log: would remove 6000 rows"
has dry_drift "$T/out" "drift_report: would remove 2 rows"
has dry_nothing "$T/out" "dry run, nothing changed"
eq dry_unchanged "$(counts)" "9 27 13500 4"

section clean_while_a_dag_runs
lf_start MLOPSD_ADMIN_TOKEN=dbclean-token
if lf_wait_up 30; then ok up; else bad up; fi
if "$BIN" dags trigger slow --date 2026-01-01 >"$T/trigger.out" 2>&1; then
  ok triggered; else cat "$T/trigger.out"; bad triggered; fi
slow_lines() {
  sql "$DB" -e "SELECT COUNT(*) FROM task_log l JOIN dag_run r
    ON r.run_id = l.run_id WHERE r.dag_id = 'slow' AND l.line LIKE 'line %'"
}
for _ in $(seq 1 150); do
  n=$(slow_lines)
  [ "${n:-0}" -ge 3 ] && break; sleep 0.1
done
slow_state() {
  sql "$DB" -e "SELECT state FROM dag_run WHERE dag_id = 'slow'
    AND run_id <> 's_old' AND run_id <> 's_new'"
}
eq slow_running "$(slow_state)" running
# the running run looks 100 days old, and a newer finished run of its DAG
# exists: only its state keeps it; s_old is no longer slow's newest
sql "$DB" -e "UPDATE dag_run SET queued_at = UTC_TIMESTAMP() - INTERVAL 100 DAY,
  start_date = UTC_TIMESTAMP() - INTERVAL 100 DAY
  WHERE dag_id = 'slow' AND state = 'running'"
run s_new slow 1 success
expect clean 0 "$BIN" db clean --older-than 30 --batch 500
sed 's/^/  | /' "$T/out"
has clean_runs "$T/out" "dag_run: removed 5 rows"
has clean_tis "$T/out" "task_instance: removed 15 rows"
has clean_logs "$T/out" "task_log: removed 7500 rows"
has clean_drift "$T/out" "drift_report: removed 2 rows"
eq slow_still_running "$(slow_state)" running
# 7500 lines at 500 per DELETE: at least 15 statements for the logs alone
stmts=$(sed -n 's/.* in \([0-9]*\) statements.*/\1/p' "$T/out")
check batched [ "${stmts:-0}" -ge 16 ]
longest=$(sed -n 's/.*longest \([0-9]*\) ms.*/\1/p' "$T/out")
LF_FIGURES="db clean: ${stmts:-?} statements, longest ${longest:-?} ms"
# the bound: a DELETE waits at most 2 s for a lock before it is retried
check lock_wait_bound [ "${longest:-99999}" -lt 4000 ]
eq clean_left "$(counts | cut -d' ' -f4)" 2
eq runs_left "$(sql "$DB" -e "SELECT GROUP_CONCAT(run_id ORDER BY run_id)
  FROM dag_run WHERE dag_id <> 'slow' OR run_id LIKE 's\_%'")" \
  "a_1,a_20,b_5,lone,s_new"
eq tis_left "$(sql "$DB" -e "SELECT COUNT(*) FROM task_instance
  WHERE run_id IN ('a_1', 'a_20', 'b_5', 'lone', 's_new')")" 15
eq logs_left "$(sql "$DB" -e "SELECT COUNT(*) FROM task_log
  WHERE run_id IN ('a_1', 'a_20', 'b_5', 'lone', 's_new')")" 7500
eq drift_left "$(sql "$DB" -e "SELECT GROUP_CONCAT(CONCAT(model, ':',
  DATEDIFF(UTC_TIMESTAMP(), created_at)) ORDER BY id) FROM drift_report")" \
  "m1:5,m2:100"
# the DAG that ran meanwhile is whole
s=""
for _ in $(seq 1 300); do
  s=$(slow_state)
  [ "$s" = running ] || [ "$s" = queued ] || break; sleep 0.1
done
eq slow_success "$s" success
eq slow_lines "$(slow_lines)" 30
expect again 0 "$BIN" db clean --older-than 30
has again_nothing "$T/out" "dag_run: removed 0 rows"

section partitions
a=""
for _ in $(seq 1 50); do
  a=$(lf_metric mlopsd_plog_partitions_ahead)
  [ -n "$a" ] && [ "${a%.*}" -ge 3 ] && break; sleep 0.2
done
check partitions_ahead [ "${a%.*}" -ge 3 ]
n=$(sql "$DB" -e "SELECT COUNT(*) FROM information_schema.PARTITIONS
  WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'credit_predictions_api_log'
  AND PARTITION_DESCRIPTION <> 'MAXVALUE'")
check partitions_in_table [ "${n:-0}" -ge 4 ]
curl -s "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
for m in mlopsd_plog_table_bytes mlopsd_plog_table_rows \
  mlopsd_plog_table_growth_bytes_per_hour mlopsd_plog_partitions \
  mlopsd_spool_disk_free_bytes mlopsd_db_disk_free_bytes \
  mlopsd_plog_spool_bytes; do
  has "metric_$m" "$T/metrics" "$m "
done
sf=$(lf_metric mlopsd_spool_disk_free_bytes)
check spool_free_positive awk -v v="$sf" 'BEGIN { exit !(v + 0 > 0) }'
dbf=$(lf_metric mlopsd_db_disk_free_bytes)
check db_free_positive awk -v v="$dbf" 'BEGIN { exit !(v + 0 > 0) }'
# the console's serving page gets the same figures
for _ in $(seq 1 50); do
  curl -s -H "Authorization: Bearer dbclean-token" \
    "http://127.0.0.1:$PORT/api/v2/serving" >"$T/serving.json"
  python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["log"]
sys.exit(0 if l.get("table_bytes") is not None and l.get("spool_disk_free_bytes") else 1)' \
    "$T/serving.json" 2>/dev/null && break
  sleep 0.2
done
check serving_log_figures python3 -c 'import json,sys
l = json.load(open(sys.argv[1]))["log"]
assert l["table_bytes"] >= 0 and l["spool_disk_free_bytes"] > 0
assert l["db_disk_free_bytes"] > 0 and "table_growth_bytes_per_hour" in l' \
  "$T/serving.json"
lf_term
eq exit_code_0 "$DRC" 0

section task
# only now: the running daemon would have scheduled it at start
cp config/dags/mlopsd_maintenance.yaml "$T/dags/"
run t_100 dag_t 100 success
run t_1 dag_t 1 success
"$BIN" dags test mlopsd_maintenance --date 2026-01-01 >"$T/task.out" 2>&1
eq task_rc "$?" 0
has task_says "$T/task.out" "removed older than"
has task_counts "$T/task.out" "dag_run 1, task_instance 3, task_log 1500"
eq task_removed "$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE run_id = 't_100'")" 0

section readyz
lf_start MLOPSD_SERVER_SPOOL_MIN_FREE_BYTES=1099511627776
if lf_wait_up 30; then ok up2; else bad up2; fi
code=$(curl -s -o "$T/readyz" -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")
eq readyz_503 "$code" 503
has readyz_says "$T/readyz" "nearly full"
lf_term
lf_done
