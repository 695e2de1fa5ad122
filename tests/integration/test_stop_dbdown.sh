#!/bin/bash
# test_stop_dbdown.sh - SIGTERM while MariaDB is down: the daemon must stop
# well inside Docker's 30 s grace period, not sit through the scheduler's
# 5-s connection retries one DB step after another.  Real daemon
# ($MLOPSD_BIN), database it_stop_dbdown, a scheduled DAG so every
# scheduler step (DAG rows, creating runs, lease check, sweep, claim) has
# database work.  MariaDB is started again afterwards, also on failure
# (lib_fault.sh's EXIT trap restarts it when it does not answer).
#
# The 10 s bound is a contract bound (a third of the 30 s before
# SIGKILL), not a performance figure.
. "$(dirname "$0")/lib_fault.sh"
lf_init stop_dbdown
LF_CLEANUP_EXTRA='lf_dbstart'

section setup
lf_fast_spec
lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi
cat >"$T/dags/tick.yaml" <<EOF
dag_id: stop_dbdown_tick
schedule: "* * * * *"
start_date: 2025-01-01
catchup: false
tasks:
  - {id: noop, type: shell, command: "true"}
EOF

lf_start
lf_wait_ready 30 && ok ready || bad ready

section "MariaDB stopped, then SIGTERM"
lf_dbstop
sleep 7 # the scheduler is in its steady outage loop: every step retrying
t0=$(date +%s.%N)
lf_term
t1=$(date +%s.%N)
secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
echo "  stopped in $secs s (exit $DRC)"
LF_FIGURES="stop_s=$secs"
eq exit_code_0 "$DRC" 0
check stopped_within_10s python3 -c "import sys; sys.exit($t1 - $t0 >= 10)"
has scheduler_stopped "$T/daemon.log" "scheduler stopped"

section "MariaDB back"
lf_dbstart
check db_back sql -e 'SELECT 1'
lf_done
