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
# a daemon that cannot reach MariaDB waits connect_timeout at start
sed -i 's/connect_timeout: 2/connect_timeout: 1/' "$T/mlopsd.yaml"
if lf_db_prepare && lf_train_promote 1; then ok setup; else bad setup; lf_done; exit 1; fi

# The rounds, in one process (no shell, curl or interpreter start-up per
# round): start the daemon, wait for /healthz, NREQ requests from 4
# threads, SIGKILL the moment the last answer is in (before even closing
# the connections), reap it, next round.  Answers: "ID STATUS" lines in
# ans_NAME_K.  Prints one line per round.
cat >"$T/rounds.py" <<'EOF'
import http.client, json, os, signal, subprocess, sys, threading, time
(name, rounds, base, n, port, tdir, binary, body) = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
    int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8])
tmpl = json.load(open(body))
log = open(os.path.join(tdir, "daemon.log"), "ab")

def healthy(deadline):
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False

for k in range(1, rounds + 1):
    log.write(f"---- round {name} {k} {time.time():.3f}\n".encode())
    log.flush()
    d = subprocess.Popen([binary, "serve", "--pid-file",
                          os.path.join(tdir, "mlopsd.pid")],
                         cwd=tdir, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    if not healthy(t0 + 60):
        d.kill(); d.wait()
        print(f"round {k}: daemon did not start"); sys.exit(1)
    start = base + k * 100000
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
            b = dict(tmpl)
            b["data"] = dict(tmpl["data"], customer_id=i)
            try:
                c.request("POST", "/predict", json.dumps(b),
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
    t1 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    os.kill(d.pid, signal.SIGKILL)
    d.wait()
    with open(os.path.join(tdir, f"ans_{name}_{k}"), "w") as f:
        for i, st in res:
            f.write(f"{i} {st}\n")
    ok = sum(1 for _, s in res if s == "200")
    print(f"round {k}: start {t1 - t0:.2f} s, {ok} of {len(res)} answered "
          f"200 in {time.monotonic() - t1:.2f} s, then kill -9")
EOF

# rounds NAME BASE: ROUNDS rounds of start, stream, kill -9
rounds() {
  python3 "$T/rounds.py" "$1" "$ROUNDS" "$2" "$NREQ" "$PORT" "$T" "$BIN" \
    "$BODY" >"$T/rounds_$1.out" 2>&1 || bad "${1}_rounds"
  if [ -n "${VERBOSE:-}" ]; then sed 's/^/  /' "$T/rounds_$1.out"; else
    tail -2 "$T/rounds_$1.out" | sed 's/^/  /'; fi
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
check_rounds() {  # check_rounds NAME BASE: one query, every round checked
  local lo=$(( $2 + 100000 )) hi=$(( $2 + (ROUNDS + 1) * 100000 ))
  sql "$DB" -e "SELECT customer_id, COUNT(*) FROM credit_predictions_api_log
    WHERE CAST(customer_id AS UNSIGNED) BETWEEN $lo AND $hi
    GROUP BY customer_id" >"$T/rows_$1.tsv" || bad "${1}_query"
  python3 - "$T" "$1" "$ROUNDS" "$T/rows_$1.tsv" >"$T/check_$1.out" <<'EOF'
import sys
t, name, rounds, rowsf = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = {}
for line in open(rowsf):
    p = line.split("\t")
    if len(p) == 2:
        rows[p[0]] = int(p[1])
seen = set()
bad = tot = 0
for k in range(1, rounds + 1):
    ans = dict(l.split() for l in open(f"{t}/ans_{name}_{k}") if l.strip())
    seen |= set(ans)
    ok = [i for i, s in ans.items() if s == "200"]
    lost = sum(1 for i in ok if rows.get(i, 0) == 0)
    dup = sum(max(0, rows.get(i, 0) - 1) for i in ans)
    phantom = sum(1 for i, s in ans.items() if s != "200" and rows.get(i))
    tot += len(ok)
    if lost or dup or phantom or not ok:
        bad += 1
        print(f"round {k}: answered200={len(ok)} lost={lost} dup={dup} phantom={phantom}")
stray = sum(1 for i in rows if i not in seen)
if stray:
    bad += 1
    print(f"rows for no request of this phase: {stray}")
print(f"bad={bad} total={tot}")
EOF
  sed 's/^/  /' "$T/check_$1.out"
  local last tot bad_rounds
  last=$(tail -1 "$T/check_$1.out")
  bad_rounds=${last#bad=}; bad_rounds=${bad_rounds%% *}
  tot=${last##*total=}
  eq "${1}_every_round_exactly_once" "$bad_rounds" 0
  LF_FIGURES="${LF_FIGURES:+$LF_FIGURES; }$1: rounds=$ROUNDS answered200=$tot"
}

section "kill -9 right after the last answer, MariaDB up"
t0=$SECONDS
rounds up 1000000000
recovered=$(grep -c 'holds .* rows answered by a previous run' "$T/daemon.log")
drain up
check_rounds up 1000000000
echo "  up: $((SECONDS - t0)) s; starts that took over rows: $recovered"
LF_FIGURES="$LF_FIGURES taken_over=$recovered"

section "kill -9 right after the last answer, MariaDB down"
t0=$SECONDS
before=$(grep -c 'holds .* rows answered by a previous run' "$T/daemon.log")
lf_dbstop
rounds down 2000000000
recovered=$(( $(grep -c 'holds .* rows answered by a previous run' "$T/daemon.log") - before ))
lf_dbstart
drain down
check_rounds down 2000000000
echo "  down: $((SECONDS - t0)) s; starts that took over rows: $recovered"
LF_FIGURES="$LF_FIGURES taken_over=$recovered"
hasnt no_rows_dropped "$T/daemon.log" "are dropped"
lf_done
