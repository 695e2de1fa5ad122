#!/bin/bash
# test_fault_crash.sh - issue 16: an answered prediction is never lost to
# kill -9.  A request stream (threads on keep-alive connections, every
# request its own customer_id) runs against the real daemon; the moment
# the last answer arrives the stream itself sends SIGKILL to the daemon,
# so rows of the last flush interval are still waiting in the log buffer
# (src/pbuf.c).  The daemon is started again (it takes over the buffer
# file) and the next round begins.  ROUNDS rounds (20) with MariaDB up,
# then ROUNDS with MariaDB stopped (rows go to the spool, some are still
# in the buffer at each kill); then MariaDB starts, the daemon drains,
# and for every round: rows in credit_predictions_api_log == requests
# answered 200, each exactly once, none for a request not answered.
# MLOPSD_CRASH_ROUNDS sets ROUNDS, MLOPSD_CRASH_REQUESTS the requests per
# round (300).
. "$(dirname "$0")/lib_fault.sh"
lf_init fault_crash
ROUNDS=${MLOPSD_CRASH_ROUNDS:-20}
NREQ=${MLOPSD_CRASH_REQUESTS:-300}

section setup
lf_fast_spec
lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi

# The stream: NREQ requests from 4 threads, then SIGKILL to PID at once
# (before this process even closes its connections).  "ID STATUS" lines.
cat >"$T/stream.py" <<'EOF'
import http.client, json, os, signal, sys, threading
port, pid, start, n, out = (int(sys.argv[1]), int(sys.argv[2]),
                            int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
tmpl = json.load(open(sys.argv[6]))
lock = threading.Lock()
nxt = [start]
res = []
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while True:
        with lock:
            i = nxt[0]
            if i >= start + n:
                return
            nxt[0] += 1
        body = dict(tmpl)
        body["data"] = dict(tmpl["data"], customer_id=i)
        try:
            c.request("POST", "/predict", json.dumps(body),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            st = str(r.status)
        except (http.client.HTTPException, OSError):
            st = "000"
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with lock:
            res.append((i, st))
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
os.kill(pid, signal.SIGKILL)
with open(out, "w") as f:
    for i, st in res:
        f.write(f"{i} {st}\n")
ok = sum(1 for _, s in res if s == "200")
print(f"answered200={ok} of {len(res)}")
EOF

# round NAME K: start the daemon, wait until it serves, stream, kill -9
round() {
  local name=$1 k=$2 start=$(( $3 + $2 * 100000 ))
  lf_start
  if ! lf_wait_up 30; then
    bad "${name}_${k}_start"; tail -20 "$T/daemon.log"; return 1
  fi
  python3 "$T/stream.py" "$PORT" "$DPID" "$start" "$NREQ" \
    "$T/ans_${name}_$k" "$BODY" >"$T/stream.out" 2>&1 ||
    { bad "${name}_${k}_stream"; cat "$T/stream.out"; }
  wait "$DPID" 2>/dev/null
  DPID=""
  cat "$T/ans_${name}_$k" >>"$T/ans_all"
  A200=$((A200 + $(grep -c ' 200$' "$T/ans_${name}_$k")))
}

# start once more, wait until the buffer and the spool are empty
drain() {
  lf_start
  lf_wait_ready 60 || { bad "${1}_ready"; tail -20 "$T/daemon.log"; }
  local i
  for i in $(seq 1 300); do
    [ "$(lf_metric mlopsd_plog_backlog_rows)" = 0 ] &&
      [ "$(lf_metric mlopsd_plog_spool_records)" = 0 ] && break
    sleep 0.1
  done
  lf_term
  eq "${1}_exit" "$DRC" 0
}

# per round: lost, duplicated, phantom all 0 and every 200 found
check_rounds() {  # check_rounds NAME BASE
  local k r bad_rounds=0 tot=0
  for k in $(seq 1 "$ROUNDS"); do
    local lo=$(( $2 + k * 100000 ))
    r=$(lf_exactly_once "$T/ans_${1}_$k" "$lo" $((lo + NREQ - 1)))
    case $r in
      *" lost=0 dup=0 phantom=0") ;;
      *) bad_rounds=$((bad_rounds + 1)); echo "  round $k: $r" ;;
    esac
    local a=${r#answered200=}; a=${a%% *}
    [ "$a" -gt 0 ] 2>/dev/null || { bad_rounds=$((bad_rounds + 1));
      echo "  round $k: no answers ($r)"; }
    tot=$((tot + a))
  done
  eq "${1}_every_round_exactly_once" "$bad_rounds" 0
  echo "  $1: $ROUNDS rounds, $tot answers 200, rounds not exactly once: $bad_rounds"
  LF_FIGURES="${LF_FIGURES:+$LF_FIGURES; }$1: rounds=$ROUNDS answered200=$tot"
}

section "kill -9 right after the last answer, MariaDB up"
A200=0
t0=$SECONDS
for k in $(seq 1 "$ROUNDS"); do round up "$k" 1000000000 || break; done
recovered=$(grep -c 'holds .* rows answered by a previous run' "$T/daemon.log")
drain up
check_rounds up 1000000000
echo "  up: $((SECONDS - t0)) s; starts that took over rows: $recovered"
LF_FIGURES="$LF_FIGURES taken_over=$recovered"

section "kill -9 right after the last answer, MariaDB down"
t0=$SECONDS
before=$(grep -c 'holds .* rows answered by a previous run' "$T/daemon.log")
lf_dbstop
for k in $(seq 1 "$ROUNDS"); do round down "$k" 2000000000 || break; done
recovered=$(( $(grep -c 'holds .* rows answered by a previous run' "$T/daemon.log") - before ))
lf_dbstart
drain down
check_rounds down 2000000000
echo "  down: $((SECONDS - t0)) s; starts that took over rows: $recovered"
LF_FIGURES="$LF_FIGURES taken_over=$recovered"
hasnt no_rows_dropped "$T/daemon.log" "are dropped"
lf_done
