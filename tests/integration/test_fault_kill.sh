#!/bin/bash
# test_fault_kill.sh - kill -9 of the daemon (and of `models train`) at the
# worst moments, then restart and check that nothing is lost, duplicated
# or corrupt.  Real daemon ($MLOPSD_BIN), test MariaDB (database
# it_fault_kill), registry and spool in a temp dir.
#
#   training    a CT run (extract -> train -> validate -> deploy) with a
#               request stream going on; the daemon is killed while the
#               grid search runs, and once more (strace fault injection)
#               exactly at the rename that commits the new version.  After
#               the restarts the run succeeds: extract ran once, train was
#               retried, exactly one new version, every version complete,
#               no stale drafts, no prediction row twice.
#   registry    `models train` / `models promote` killed at every rename
#               and at several fsyncs of a registry write (strace
#               -e inject=...:signal=KILL): the registry stays consistent
#               (versions complete, numbers without gaps, the alias old
#               or new) and the next write works and cleans up.
#   spool       MariaDB stopped, predictions answered and spooled, kill -9;
#               MariaDB started, the daemon restarted and killed again
#               right after the first replayed batch was inserted and
#               before the spool cursor was saved; after a last restart
#               every 200 answer is in the table exactly once.
#   DAG run     a shell-task chain killed in its middle task: after the
#               restart the finished task is not run again, the
#               interrupted one is retried, the run succeeds, no duplicate
#               task instances.
#
# MLOPSD_LONG_TESTS=1 adds every fsync of the registry write as a crash
# point and a larger spool.  Needs strace for the injected kills (those
# parts are skipped with a message without it).
. "$(dirname "$0")/lib_fault.sh"
lf_init fault_kill
LONG=${MLOPSD_LONG_TESTS:-0}
# One training thread: the crash points are counted per thread (strace's
# inject=...:when=N counts the syscalls of each thread), and with parallel
# trials (models.train_parallel) which thread writes which trial's files
# changes from run to run; the commit's rename is then not the Nth of the
# thread that makes it.  Parallel trials have their own tests
# (test_pipeline: parallel_trials_match_sequential, parallel_cancel...).
export MLOPSD_MODELS_TRAIN_PARALLEL=1
HAVE_STRACE=0
if command -v strace >/dev/null &&
   strace -f -o /dev/null true 2>/dev/null; then HAVE_STRACE=1; fi
RENAMES=rename,renameat,renameat2
REG=$T/registry/$MODEL

ti_state() {  # ti_state RUN_ID TASK_ID: "state try_number"
  sql "$DB" -e "SELECT CONCAT(state, ' ', try_number) FROM task_instance
    WHERE run_id='$1' AND task_id='$2'"
}
run_state() { sql "$DB" -e "SELECT state FROM dag_run WHERE run_id='$1'"; }
wait_log() {  # wait_log RUN_ID TEXT SECONDS: 0 once task_log has TEXT
  local i
  for i in $(seq 1 $(( $3 * 10 ))); do
    [ "$(sql "$DB" -e "SELECT COUNT(*) FROM task_log WHERE run_id='$1'
      AND line LIKE '%$2%'")" -gt 0 ] && return 0
    sleep 0.1
  done
  return 1
}
section setup
lf_fast_spec "{max_depth: [5, 6]}" 60 60
LF_LEASE_S=3 lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi
lf_ct_dag "$T/dags/ct.yaml" 3
cat >"$T/dags/chain.yaml" <<EOF
dag_id: fault_chain
schedule: null
start_date: 2025-01-01
default_args: {retries: 2, retry_delay: 1s}
tasks:
  - id: first
    type: shell
    command: echo first >> $T/side_first
  - id: middle
    type: shell
    depends_on: [first]
    command: echo start >> $T/side_middle; sleep 4; echo end >> $T/side_middle
  - id: last
    type: shell
    depends_on: [middle]
    command: echo last >> $T/side_last
EOF
CT=credit_score_classification_ct
faults=0

# ---- kill -9 during training, then at the version commit ----------------
section "kill -9 during training"
lf_start
lf_wait_ready 30 && ok k1_ready || bad k1_ready
lf_load k1 1000000
lf_trigger $CT 2025-09-01
check k1_triggered test -n "$RUN"
# the train task opens its version draft first thing (then reads the
# data and runs the grid): kill as soon as the draft holds a file
killed=0
for _ in $(seq 1 600); do
  if ls "$REG"/tmp/draft-*/* >/dev/null 2>&1; then
    lf_kill9; killed=1; faults=$((faults + 1)); break
  fi
  sleep 0.02
done
eq k1_killed_in_training "$killed" 1
eq k1_train_was_running "$(ti_state "$RUN" model_training)" "running 1"
eq k1_extract_done "$(ti_state "$RUN" data_extraction)" "success 1"
lf_registry_consistent "$T/registry" >"$T/reg" && ok k1_registry_consistent ||
  { cat "$T/reg"; bad k1_registry_consistent; }
check k1_draft_left bash -c "ls '$REG/tmp' | grep -q '^draft-'"
nv0=$(ls "$REG/versions" | wc -l)

if [ "$HAVE_STRACE" = 1 ]; then
  # renames of one train (same code as the task) for the crash points
  strace -f -o "$T/count.strace" -e trace=$RENAMES "$BIN" models train $MODEL \
    --date 2025-09-01 --run-id count >/dev/null 2>&1
  NREN=$(grep -c 'rename' "$T/count.strace")
  nv0=$(ls "$REG/versions" | wc -l)
  # under strace from the start, killed at the rename that commits the
  # version: strace counts per thread, and the train task's thread (a
  # queue worker of a fresh daemon) renames nothing else before it
  LF_PREFIX="strace -f -o /dev/null -e trace=$RENAMES
    -e inject=$RENAMES:signal=KILL:when=$NREN" lf_start
  for _ in $(seq 1 1200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DPID" 2>/dev/null && lf_kill9   # never reached it
  wait "$DPID" 2>/dev/null; st=$?; DPID=""
  eq k2_killed_at_commit "$st" 137
  faults=$((faults + 1))
  eq k2_train_retried "$(ti_state "$RUN" model_training | cut -d' ' -f2)" 2
  lf_registry_consistent "$T/registry" >"$T/reg" && ok k2_registry_consistent ||
    { cat "$T/reg"; bad k2_registry_consistent; }
  eq k2_no_new_version "$(ls "$REG/versions" | wc -l)" "$nv0"
  tries_expected=3
else
  skip k2_killed_at_commit "strace not available"
  tries_expected=2
fi

lf_start
lf_wait_ready 30 && ok k3_ready || bad k3_ready
eq k3_run_success "$(lf_wait_run "$RUN" 120)" success
eq k3_extract_once "$(ti_state "$RUN" data_extraction)" "success 1"
eq k3_train_retried "$(ti_state "$RUN" model_training)" "success $tries_expected"
eq k3_deploy_done "$(ti_state "$RUN" model_deployment | cut -d' ' -f1)" success
eq k3_task_instances "$(sql "$DB" -e "SELECT COUNT(*) FROM task_instance WHERE run_id='$RUN'")" 4
eq k3_one_run "$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE dag_id='$CT'")" 1
eq k3_one_new_version "$(ls "$REG/versions" | wc -l)" $((nv0 + 1))
lf_registry_consistent "$T/registry" >"$T/reg" && ok k3_registry_consistent ||
  { cat "$T/reg"; bad k3_registry_consistent; }
eq k3_drafts_cleaned "$(ls "$REG/tmp" | grep -c '^draft-')" 0
reg_lines=$(sql "$DB" -e "SELECT COUNT(*) FROM task_log WHERE run_id='$RUN'
  AND task_id='model_training' AND line LIKE 'registered $MODEL version %'")
eq k3_registered_once "$reg_lines" 1
kill -TERM $LOAD; wait $LOAD
lf_term
eq k3_clean_exit "$DRC" 0
r=$(lf_exactly_once "$T/k1.ans")
echo "  k1-k3 prediction log: $r"
check k3_log_no_duplicates bash -c "echo '$r' | grep -q ' dup=0 '"
check k3_log_no_phantoms bash -c "echo '$r' | grep -q ' phantom=0'"
K1_FIG="$r; load: $(cat "$T/k1.out")"

# ---- kill -9 in registry writes (models train / promote) ----------------
section "kill -9 in registry writes"
if [ "$HAVE_STRACE" = 1 ]; then
  points="rename:1 rename:2 rename:3 rename:$NREN fsync:1 fsync:5 fsync:10"
  if [ "$LONG" = 1 ]; then
    nfs=$(grep -cE 'fsync|fdatasync' "$T/count.strace" || true)
    strace -f -o "$T/count2.strace" -e trace=fsync,fdatasync "$BIN" models train \
      $MODEL --date 2025-09-01 --run-id count2 >/dev/null 2>&1
    nfs=$(grep -cE 'fsync|fdatasync' "$T/count2.strace")
    points="$(seq -f 'rename:%g' 1 "$NREN") $(seq -f 'fsync:%g' 1 "$nfs")"
  fi
  n=0
  for pt in $points; do
    sc=${pt%:*}; when=${pt#*:}
    [ "$sc" = fsync ] && sc=fsync,fdatasync || sc=$RENAMES
    n=$((n + 1))
    before=$(ls "$REG/versions" | sort -n | tr '\n' ' ')
    ( strace -f -o /dev/null -e trace=$sc -e inject=$sc:signal=KILL:when=$when \
        "$BIN" models train $MODEL --date 2025-09-01 --run-id "crash$n" \
        >"$T/crash.out" 2>&1 ) 2>/dev/null
    rc=$?
    faults=$((faults + 1))
    if lf_registry_consistent "$T/registry" >"$T/reg"; then
      ok "reg_consistent_after_kill_at_$pt (rc $rc)"
    else
      cat "$T/reg"; bad "reg_consistent_after_kill_at_$pt"
    fi
    after=$(ls "$REG/versions" | sort -n | tr '\n' ' ')
    # a kill before the commit rename leaves no new version, one after it
    # (the fsync of versions/) a complete one: never more than one, and
    # the consistency check above saw every version whole
    check "reg_at_most_one_new_version_at_$pt" bash -c \
      "[ \$(( \$(echo $after | wc -w) - \$(echo $before | wc -w) )) -le 1 ]"
    [ "$rc" = 137 ] && [ "$after" != "$before" ] &&
      echo "  kill at $pt: the version was committed before the kill"
  done
  # promote killed at its alias rename: the alias stays the old version
  old=$(tr -d ' \n' <"$REG/aliases/production")
  ( strace -f -o /dev/null -e trace=$RENAMES \
      -e inject=$RENAMES:signal=KILL:when=1 "$BIN" models promote $MODEL 2 \
      >/dev/null 2>&1 ) 2>/dev/null
  eq reg_promote_killed_alias_old "$(tr -d ' \n' <"$REG/aliases/production")" "$old"
  faults=$((faults + 1))
  ndraft=$(ls "$REG/tmp" | grep -c '^draft-')
  check reg_stale_drafts_exist bash -c "[ $ndraft -gt 0 ]"
  expect reg_train_after_crashes 0 "$BIN" models train $MODEL --date 2025-09-01 \
    --run-id after_crashes
  v=$(ls "$REG/versions" | sort -n | tail -1)
  has reg_next_number "$T/out" "version $v"
  eq reg_drafts_cleaned "$(ls "$REG/tmp" | grep -c '^draft-')" 0
  lf_registry_consistent "$T/registry" >"$T/reg" && ok reg_final_consistent ||
    { cat "$T/reg"; bad reg_final_consistent; }
  expect reg_promote_after 0 "$BIN" models promote $MODEL "$v"
  REG_FIG="$n crash points ($points), $ndraft stale drafts cleaned by the next write"
else
  skip reg_crash_points "strace not available"
fi

# ---- kill -9 during a spool flush ----------------------------------------
section "kill -9 during a spool flush"
lf_start
lf_wait_ready 30 && ok s_ready || bad s_ready
lf_dbstop
NREQ=$([ "$LONG" = 1 ] && echo 20000 || echo 3000)
python3 "$SRC/tests/integration/lib_load.py" --port "$PORT" --out "$T/s.ans" \
  --start 2000000 --threads 4 --count "$NREQ" >"$T/s.load"
ok200=$(grep -c ' 200$' "$T/s.ans")
eq s_all_answered_while_db_down "$ok200" "$NREQ"
for _ in $(seq 1 100); do
  [ "$(lf_metric mlopsd_plog_backlog_rows)" = 0 ] && break; sleep 0.1
done
srec=$(lf_metric mlopsd_plog_spool_records)
check s_rows_in_spool bash -c "[ ${srec:-0} -gt 1 ]"
eq s_spool_private "$(find "$T/spool" -type f -perm -o+r ! -name plog-seq)" ""
lf_kill9; faults=$((faults + 1))
lf_dbstart
if [ "$HAVE_STRACE" = 1 ]; then
  # killed at the first save of the spool cursor: the replayed rows are
  # committed in MariaDB, the cursor on disk still says they are not
  # (renameat(dirfd, "cursor.tmp", dirfd, "cursor"); -P matches the name)
  LF_PREFIX="strace -f -o /dev/null -P cursor.tmp -e trace=$RENAMES
    -e inject=$RENAMES:signal=KILL:when=1" lf_start
  for _ in $(seq 1 600); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DPID" 2>/dev/null && lf_kill9   # never reached it
  wait "$DPID" 2>/dev/null; st=$?; DPID=""
  eq s_killed_at_cursor_commit "$st" 137
  faults=$((faults + 1))
  mid=$(sql "$DB" -e "SELECT COUNT(*) FROM credit_predictions_api_log WHERE
    customer_id >= '2000000' AND customer_id < '3000000'")
  check s_rows_stored_before_cursor bash -c "[ $mid -gt 0 ]"
else
  skip s_killed_at_cursor_commit "strace not available"; mid=-
fi
lf_start
lf_wait_ready 60 && ok s_ready_after || bad s_ready_after
lf_drained 30
dups=$(lf_metric mlopsd_plog_rows_duplicate_total)
[ "$HAVE_STRACE" = 1 ] && eq s_replayed_rows_deduplicated "${dups:-0}" "$mid"
lf_term
eq s_clean_exit "$DRC" 0
r=$(lf_exactly_once "$T/s.ans" 2000000 2999999)
echo "  spool: $r (rows in the table at the second kill: $mid, duplicates skipped by the key: ${dups:-?})"
eq s_exactly_once "$r" "answered200=$NREQ found=$NREQ lost=0 dup=0 phantom=0"
S_FIG="$r; rows stored before the kill at the cursor commit: $mid"

# ---- kill -9 during a DAG run ---------------------------------------------
section "kill -9 during a DAG run"
lf_start
lf_wait_ready 30 && ok d_ready || bad d_ready
"$BIN" dags trigger fault_chain --date 2025-09-01 >"$T/out" 2>&1
RUN=$(sed -n 's/^queued run //p' "$T/out")
for _ in $(seq 1 200); do [ -s "$T/side_middle" ] && break; sleep 0.1; done
eq d_middle_running "$(ti_state "$RUN" middle)" "running 1"
lf_kill9; faults=$((faults + 1))
lf_start
lf_wait_ready 30 && ok d_ready_after || bad d_ready_after
eq d_run_success "$(lf_wait_run "$RUN" 60)" success
eq d_first_once "$(cat "$T/side_first")" first
eq d_middle_retried "$(ti_state "$RUN" middle)" "success 2"
# The first attempt's shell (a process group of its own) outlives a
# kill -9 of the daemon and runs to its end next to the retry: a known
# limitation, reported as a figure rather than failed (RELIABILITY.md).
middle=$(tr '\n' ' ' <"$T/side_middle")
case "$middle" in
  "start start end ") D_FIG="orphaned attempt stopped" ;;
  "start start end end ") D_FIG="KNOWN ISSUE: the killed daemon's shell task ran on to its end beside the retry" ;;
  *) D_FIG="unexpected side effects: $middle" ;;
esac
check d_middle_ran_again bash -c "[ \"$(grep -c start "$T/side_middle")\" = 2 ]"
echo "  DAG run: $D_FIG"
eq d_last_once "$(cat "$T/side_last")" last
eq d_task_instances "$(sql "$DB" -e "SELECT COUNT(*) FROM task_instance WHERE run_id='$RUN'")" 3
eq d_one_run "$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE dag_id='fault_chain'")" 1
lf_term
eq d_clean_exit "$DRC" 0

LF_FIGURES="faults injected: $faults; DAG run: $D_FIG; training kills, prediction log: $K1_FIG; registry: ${REG_FIG:-skipped}; spool: $S_FIG"
lf_done
