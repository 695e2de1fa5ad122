#!/bin/bash
# test_fault_disk.sh - full and read-only disks under the daemon.  Needs
# root for mount(8) (tmpfs, read-only bind mounts); skipped with a
# message otherwise.  Real daemon ($MLOPSD_BIN), database it_fault_disk.
#
#   spool, disk full      the spool on a 2 MiB tmpfs (the log buffer file,
#                         preallocated, elsewhere), spool_max_bytes far
#                         above it, MariaDB stopped, predictions until the
#                         disk is full: a clear error in the log, /readyz
#                         503, policy reject answers 503 (never a 200 that
#                         is not stored); MariaDB back: the spool drains,
#                         200 again, every 200 answer stored exactly once.
#   spool, cap reached    spool_max_bytes 1 MiB (the configured cap, on
#                         the same tmpfs), policy serve: answers stay 200,
#                         rows beyond the cap counted as unlogged, the
#                         rest stored exactly once.
#   registry, disk full   the registry on a tmpfs that holds one version:
#                         a CT run's train task fails with "No space left
#                         on device", no partial version, no draft left,
#                         serving goes on with the old version.
#   registry, read-only   the registry on a read-only bind mount: the
#                         daemon starts and serves, training fails with
#                         "Read-only file system", promote fails clearly
#                         and changes nothing.
. "$(dirname "$0")/lib_fault.sh"
lf_init fault_disk
MOUNTS=()
LF_CLEANUP_EXTRA='for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done'
mnt() {  # mnt DIR MOUNT-ARGS...: mount and remember for the cleanup
  local d=$1; shift
  mkdir -p "$d" && mount "$@" "$d" 2>"$T/mount.err" && MOUNTS+=("$d")
}
mkdir -p "$T/probe"
if [ "$(id -u)" != 0 ] || ! mnt "$T/probe" -t tmpfs -o size=1m tmpfs; then
  echo "mount not permitted ($(cat "$T/mount.err" 2>/dev/null)): skipped"
  skip disk_tests "needs root and mount(8)"
  lf_done; exit 0
fi
umount "$T/probe"; MOUNTS=()

section setup
lf_fast_spec
lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi
lf_ct_dag "$T/dags/ct.yaml" 0
CT=credit_score_classification_ct
load() {  # load NAME START COUNT [ARGS...]: the answers in $T/NAME.ans
  local n=$1 s=$2 c=$3; shift 3
  python3 "$SRC/tests/integration/lib_load.py" --port "$PORT" \
    --out "$T/$n.ans" --start "$s" --threads 4 --count "$c" "$@" >"$T/$n.out"
}
wait_db_down() {  # the prediction log noticed that MariaDB is gone
  for _ in $(seq 1 100); do
    lf_predict 1 >/dev/null
    [ "$(lf_metric mlopsd_plog_db_up)" = 0 ] && return 0; sleep 0.1
  done
  return 1
}
drained() {  # drained SECONDS: spool and memory empty
  for _ in $(seq 1 $(( $1 * 10 ))); do
    [ "$(lf_metric mlopsd_plog_spool_records)" = 0 ] &&
      [ "$(lf_metric mlopsd_plog_backlog_rows)" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# ---- spool on a full disk, policy reject -----------------------------------
section "spool disk full, policy reject"
mnt "$T/spoolfs" -t tmpfs -o size=2m,mode=0755 tmpfs || bad mount_spoolfs
LF_SPOOL_MAX=67108864 lf_config
# spool_min_free_bytes: the default readiness floor is a quarter of this
# 2 MiB disk (512 KiB), more than the drained spool's open segment leaves;
# 64 KiB keeps "ready again once drained" a meaningful check here.
sed -i "s|spool_dir: .*|spool_dir: $T/spoolfs/spool\n  log_buffer_dir: $T/buf\n  spool_min_free_bytes: 65536|" "$T/mlopsd.yaml"
lf_start
lf_wait_ready 30 && ok a_ready || bad a_ready
lf_dbstop
wait_db_down || bad a_db_down_noticed
# batches of 50 rows: the 2 MiB disk, then the in-memory buffer fill up;
# stop after a few 503 answers (each waits for room for 1 s first)
load a 4000000 2000 --batch 50 --stop-after-errors 8
n200=$(grep -c ' 200$' "$T/a.ans"); n503=$(grep -c ' 503$' "$T/a.ans")
nother=$(( $(wc -l <"$T/a.ans") - n200 - n503 ))
echo "  disk full: $n200 answered 200, $n503 answered 503, $nother other"
check a_some_200 bash -c "[ $n200 -gt 0 ]"
check a_then_503 bash -c "[ $n503 -gt 0 ]"
eq a_no_other_answers "$nother" 0
A_AVAIL=$(df --output=avail "$T/spoolfs" | tail -1)
grep -iE "no space left|ENOSPC" "$T/daemon.log" | head -3 >"$T/a.err"
check a_clear_error test -s "$T/a.err"
echo "  log: $(head -1 "$T/a.err" | cut -c1-200)"
code=$(curl -s -o "$T/readyz" -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")
eq a_readyz_503 "$code" 503
echo "  /readyz: $(cat "$T/readyz")"
eq a_healthz "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" 200
lf_dbstart
drained 10
eq a_spool_drained "$(lf_metric mlopsd_plog_spool_records)/$(lf_metric mlopsd_plog_backlog_rows)" 0/0
for _ in $(seq 1 150); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1
done
code=$(curl -s -o "$T/readyz" -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")
eq a_ready_again "$code" 200
[ "$code" = 200 ] || echo "  /readyz: $(cat "$T/readyz")"
load a2 4100000 200 --stop-after-errors 4
eq a_serving_again "$(grep -c ' 200$' "$T/a2.ans")" 200
lf_term
eq a_clean_exit "$DRC" 0
r=$(lf_exactly_once "$T/a.ans" 4000000 4099999)
eq a_exactly_once "$r" "answered200=$n200 found=$n200 lost=0 dup=0 phantom=0"
r2=$(lf_exactly_once "$T/a2.ans" 4100000 4199999)
eq a2_exactly_once "$r2" "answered200=200 found=200 lost=0 dup=0 phantom=0"
A_FIG="rows answered 200: $n200 ($r), 503: $n503, free on the disk after: ${A_AVAIL}k, error lines logged: $(grep -c 'No space left' "$T/daemon.log"), first: $(head -1 "$T/a.err" | sed 's/.*\(ERROR\|WARN\) *//' | cut -c1-160)"
umount "$T/spoolfs" && MOUNTS=()

# ---- spool cap reached, policy serve -----------------------------------------
section "spool cap reached, policy serve"
mnt "$T/spoolfs" -t tmpfs -o size=2m,mode=0755 tmpfs || bad mount_spoolfs2
LF_SPOOL_MAX=1048576 LF_POLICY=serve lf_config
sed -i "s|spool_dir: .*|spool_dir: $T/spoolfs/spool\n  log_buffer_dir: $T/buf|" "$T/mlopsd.yaml"
lf_start
lf_wait_ready 30 && ok b_ready || bad b_ready
lf_dbstop
wait_db_down || bad b_db_down_noticed
load b 5000000 500 --batch 50
n200=$(grep -c ' 200$' "$T/b.ans")
eq b_all_200 "$n200" 25000
unlogged=$(lf_metric mlopsd_plog_rows_unlogged_total)
check b_unlogged_counted bash -c "[ ${unlogged:-0} -gt 0 ]"
code=$(curl -s -o "$T/readyz" -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")
eq b_readyz_503 "$code" 503
lf_dbstart
drained 10
eq b_drained "$(lf_metric mlopsd_plog_spool_records)/$(lf_metric mlopsd_plog_backlog_rows)" 0/0
lf_term
eq b_clean_exit "$DRC" 0
r=$(lf_exactly_once "$T/b.ans" 5000000 5999999)
found=$(echo "$r" | sed -n 's/.* found=\([0-9]*\).*/\1/p')
eq b_stored_plus_unlogged "$((found + ${unlogged:-0}))" 25000
check b_no_duplicates bash -c "echo '$r' | grep -q ' dup=0 phantom=0'"
B_FIG="cap 1 MiB, policy serve: 25000 rows answered 200, $found stored exactly once, ${unlogged:-0} counted unlogged"
umount "$T/spoolfs" && MOUNTS=()
lf_config

# ---- registry on a full disk ----------------------------------------------
section "registry disk full"
used=$(du -sk "$T/registry" | cut -f1)
mnt "$T/regfs" -t tmpfs -o size=$((used + 300))k,mode=0755 tmpfs || bad mount_regfs
cp -a "$T/registry" "$T/regfs/"
LF_REGISTRY_DIR=$T/regfs/registry lf_config
lf_start
lf_wait_ready 30 && ok c_ready || bad c_ready
lf_load c 6000000
lf_trigger $CT 2025-09-01
eq c_run_failed "$(lf_wait_run "$RUN" 60)" failed
sql "$DB" -e "SELECT line FROM task_log WHERE run_id='$RUN' AND task_id='model_training'" >"$T/c.tl"
has c_train_error_clear "$T/c.tl" "No space left on device"
echo "  task log: $(grep -m1 'No space' "$T/c.tl" | cut -c1-200)"
eq c_versions_unchanged "$(ls "$T/regfs/registry/$MODEL/versions" | tr '\n' ' ')" "1 "
eq c_no_draft_left "$(ls "$T/regfs/registry/$MODEL/tmp" | grep -c '^draft-')" 0
lf_registry_consistent "$T/regfs/registry" >"$T/reg" && ok c_registry_consistent ||
  { cat "$T/reg"; bad c_registry_consistent; }
eq c_serving "$(lf_predict 6999999)" 200
kill -TERM $LOAD; wait $LOAD
c200=$(grep -c ' 200$' "$T/c.ans"); call=$(wc -l <"$T/c.ans")
eq c_all_200_during_run "$c200" "$call"
lf_term
eq c_clean_exit "$DRC" 0
C_FIG="$call requests during the failing run, all 200; $(grep -m1 'No space' "$T/c.tl" | cut -c1-120)"
umount "$T/regfs" && MOUNTS=()

# ---- registry read-only ------------------------------------------------------
section "registry read-only"
mkdir -p "$T/regro"
if mnt "$T/regro" --bind "$T/registry" && mount -o remount,bind,ro "$T/regro"; then
  ok d_ro_mount
  LF_REGISTRY_DIR=$T/regro lf_config
  # the failed run of the section above holds the date: remove it
  sql "$DB" -e "DELETE FROM dag_run WHERE dag_id='$CT';
    DELETE FROM task_instance WHERE dag_id='$CT'"
  lf_start
  lf_wait_ready 30 && ok d_ready || { tail -5 "$T/daemon.log"; bad d_ready; }
  lf_trigger $CT 2025-09-01
  eq d_run_failed "$(lf_wait_run "$RUN" 60)" failed
  sql "$DB" -e "SELECT line FROM task_log WHERE run_id='$RUN' AND task_id='model_training'" >"$T/d.tl"
  has d_train_error_clear "$T/d.tl" "Read-only file system"
  echo "  task log: $(grep -m1 'Read-only' "$T/d.tl" | cut -c1-200)"
  eq d_serving "$(lf_predict 7000001)" 200
  expect d_promote_fails 1 "$BIN" models promote $MODEL 1 --reason ro
  has d_promote_message "$T/err" "Read-only file system"
  eq d_alias_unchanged "$(tr -d ' \n' <"$T/registry/$MODEL/aliases/production")" 1
  eq d_versions_unchanged "$(ls "$T/registry/$MODEL/versions" | tr '\n' ' ')" "1 "
  eq d_serving_after "$(lf_predict 7000002)" 200
  lf_term
  eq d_clean_exit "$DRC" 0
  D_FIG="$(grep -m1 'Read-only' "$T/d.tl" | cut -c1-120)"
else
  skip d_readonly "read-only bind mount not permitted"
fi

LF_FIGURES="spool reject: $A_FIG; spool serve: $B_FIG; registry full: $C_FIG; registry ro: ${D_FIG:-skipped}"
lf_done
