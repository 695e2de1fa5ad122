#!/bin/bash
# test_fault_sigterm.sh - SIGTERM under load: every request the daemon
# accepted is answered and logged.  Real daemon ($MLOPSD_BIN), database
# it_fault_sigterm, the load generator lib_load.py (each request its own
# customer_id, every outcome recorded).
#
#   keep-alive   4 clients on keep-alive connections at full speed;
#                SIGTERM after 2 s; the clients go on until the port
#                refuses them.  The daemon exits 0; every 200 answer is
#                in the prediction log exactly once; no request without
#                an answer has a row (none was processed and then cut
#                off); nothing but 200 (or 503 "shutting down", with no
#                row) was answered.
#   close        the same with a new connection per request.
#   DB down      MariaDB stopped, SIGTERM under load: the rows in memory
#                go to the spool at the stop; after a restart with
#                MariaDB up every 200 answer is stored exactly once.
. "$(dirname "$0")/lib_fault.sh"
lf_init fault_sigterm

section setup
lf_fast_spec
lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi

noanswer_rows() {  # rows of requests that got no answer ("000")
  local ids
  ids=$(awk '$2 == "000" {printf "%s\x27%s\x27", (n++ ? "," : ""), $1}' "$1")
  [ -n "$ids" ] || { echo 0; return; }
  sql "$DB" -e "SELECT COUNT(*) FROM credit_predictions_api_log
    WHERE customer_id IN ($ids)"
}

# wait_answers FILE: until the load generator has 50 answers in FILE (a
# loaded machine may take longer than the 2 s the rounds allow at least),
# at most 30 s, so that SIGTERM always meets requests in flight
wait_answers() {
  local i
  sleep 2
  for i in $(seq 1 280); do
    [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge 50 ] && return
    sleep 0.1
  done
}

round() {  # round NAME START [LOAD ARGS...]
  local name=$1 start=$2; shift 2
  lf_start
  lf_wait_ready 30 && ok "${name}_ready" || bad "${name}_ready"
  python3 "$SRC/tests/integration/lib_load.py" --port "$PORT" \
    --out "$T/$name.ans" --start "$start" --threads 4 --seconds 120 \
    --stop-after-refused 10 "$@" >"$T/$name.out" &
  local load=$!
  wait_answers "$T/$name.ans"
  local t0=$SECONDS
  lf_term
  wait $load
  eq "${name}_exit_0" "$DRC" 0
  check "${name}_load_ended_by_refusal" bash -c "[ $(grep -c ' REF$' "$T/$name.ans") -ge 10 ]"
  local n200 nall nref n000 n503
  n200=$(grep -c ' 200$' "$T/$name.ans")
  n503=$(grep -c ' 503$' "$T/$name.ans")
  nref=$(grep -c ' REF$' "$T/$name.ans")
  n000=$(grep -c ' 000$' "$T/$name.ans")
  nall=$(wc -l <"$T/$name.ans")
  # 503 "shutting down" is a fair answer for a request that came too late
  eq "${name}_only_200_or_503" "$((nall - n200 - n503 - nref - n000))" 0
  RES=$(lf_exactly_once "$T/$name.ans" "$start" $((start + 999999)))
  check "${name}_requests_before_sigterm" test "$n200" -ge 50
  echo "  $name: sent $((nall - nref)), 200: $n200, 503: $n503, no answer: $n000, refused: $nref; $RES"
  FIG="$name: $((nall - nref)) requests sent, $n200 answered 200, $n503 answered 503, $n000 without an answer (rows for them: NROWS), $RES"
}

section "SIGTERM under keep-alive load"
round ka 8000000
eq ka_exactly_once "$RES" "answered200=$(grep -c ' 200$' "$T/ka.ans") found=$(grep -c ' 200$' "$T/ka.ans") lost=0 dup=0 phantom=0"
nr=$(noanswer_rows "$T/ka.ans"); eq ka_unanswered_not_processed "$nr" 0
KA_FIG=${FIG/NROWS/$nr}
grep -E "stopping|stopped|in flight|flushed" "$T/daemon.log" | tail -4 | sed 's/^/  | /'

section "SIGTERM, a connection per request"
round cl 9000000 --close
eq cl_exactly_once "$RES" "answered200=$(grep -c ' 200$' "$T/cl.ans") found=$(grep -c ' 200$' "$T/cl.ans") lost=0 dup=0 phantom=0"
nr=$(noanswer_rows "$T/cl.ans"); eq cl_unanswered_not_processed "$nr" 0
CL_FIG=${FIG/NROWS/$nr}

section "SIGTERM with MariaDB down"
lf_start
lf_wait_ready 30 && ok db_ready || bad db_ready
lf_dbstop
python3 "$SRC/tests/integration/lib_load.py" --port "$PORT" --out "$T/db.ans" \
  --start 7000000 --threads 4 --seconds 120 --stop-after-refused 10 >"$T/db.out" &
LOAD=$!
wait_answers "$T/db.ans"
lf_term
wait $LOAD
eq db_exit_0 "$DRC" 0
grep -E "flushed|spool" "$T/daemon.log" | tail -2 | sed 's/^/  | /'
lf_dbstart
lf_start
lf_wait_ready 60 && ok db_restarted || bad db_restarted
lf_drained 30
replayed=$(lf_metric mlopsd_plog_rows_replayed_total)
lf_term
eq db_exit_0_again "$DRC" 0
n200=$(grep -c ' 200$' "$T/db.ans")
r=$(lf_exactly_once "$T/db.ans" 7000000 7999999)
echo "  DB down: $r, replayed $replayed"
eq db_exactly_once "$r" "answered200=$n200 found=$n200 lost=0 dup=0 phantom=0"
check db_went_through_spool bash -c "[ ${replayed:-0} -gt 0 ]"
nr=$(noanswer_rows "$T/db.ans"); eq db_unanswered_not_processed "$nr" 0

LF_FIGURES="$KA_FIG; $CL_FIG; DB down: $r, $replayed rows replayed from the spool after the restart"
lf_done
