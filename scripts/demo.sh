#!/bin/bash
# demo.sh [start|stop|clean] - the whole stack on this machine, from nothing.
#
#   make demo        installs missing packages, builds, starts a private
#                    MariaDB under var/ (own port and socket), loads schema
#                    and sample data, starts `mlopsd serve`, runs the CT DAG
#                    for 2025-09-01 (extract -> train -> validate -> deploy)
#                    with a progress line per task and per training trial,
#                    checks a prediction, prints a curl to paste.  Stays in
#                    the foreground; Ctrl-C stops everything it started.
#   make demo-stop   stops what a demo started (from another terminal)
#   make demo-clean  stops and removes var/ (database, registry, logs)
#
# Running it twice is fine: every step is idempotent, and a second run finds
# the model already deployed and skips training.
#
# Environment (all optional):
#   MLOPSD_DEMO_PORT=3000   HTTP port (127.0.0.1 only)
#   MLOPSD_DEMO_VAR=var     state directory (database, registry, logs, token)
#   MLOPSD_DEMO_DAGS=config/dags   DAG directory the daemon watches
#   MLOPSD_DEMO_BIN=...     use this mlopsd binary; skips install and build
#   DEMO_DATE=2025-09-01    logical date of the first CT run
#   DEMO_DETACH=1           return after printing (daemons keep running;
#                           stop them with `make demo-stop`)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
VAR=$(abspath "${MLOPSD_DEMO_VAR:-var}")
DAGS=$(abspath "${MLOPSD_DEMO_DAGS:-config/dags}")
BIN=$(abspath "${MLOPSD_DEMO_BIN:-build/mlopsd}")
DEMO_DATE=${DEMO_DATE:-2025-09-01}
PORT=${MLOPSD_DEMO_PORT:-3000}
DETACH=${DEMO_DETACH:-0}
CT_DAG=credit_score_classification_ct
URL=http://127.0.0.1:$PORT
# Shown to the user: var/... when the default is used, else the full path.
if [ "$VAR" = "$ROOT/var" ]; then SHOWVAR=var; else SHOWVAR=$VAR; fi
if [ "$BIN" = "$ROOT/build/mlopsd" ]; then SHOWBIN=build/mlopsd; else SHOWBIN=$BIN; fi

if [ -t 1 ]; then B=$'\033[1m'; N=$'\033[0m'; else B=; N=; fi
say() { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
# Something accepts connections on 127.0.0.1:$1 (also true for 0.0.0.0).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_all() {
  local pid
  if [ -f "$VAR/mlopsd.pid" ]; then
    pid=$(cat "$VAR/mlopsd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      say "stopping mlopsd (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "demo: mlopsd still running after 30 s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$VAR/mlopsd.pid"
  fi
  if pid_alive "$VAR/mariadb/mysqld.pid"; then
    say "stopping MariaDB"
    tests/mariadb.sh stop "$VAR/mariadb" || true
  fi
}

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  clean) stop_all; rm -rf "$VAR"; say "removed $VAR"; exit 0 ;;
  start) ;;
  -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: scripts/demo.sh [start|stop|clean]" >&2; exit 2 ;;
esac

T0=$(date +%s)
already_running=0
pid_alive "$VAR/mlopsd.pid" && already_running=1
if [ "$already_running" = 0 ] && port_busy "$PORT"; then
  owner=""
  command -v ss >/dev/null 2>&1 &&
    owner=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'users:(("[^"]*"' | head -1 | cut -d'"' -f2)
  die "port $PORT is already in use${owner:+ by '$owner'}; stop that program or pick another port: MLOPSD_DEMO_PORT=3001 make demo"
fi

if [ -z "${MLOPSD_DEMO_BIN:-}" ]; then
  say "installing missing packages (scripts/install-deps.sh)"
  scripts/install-deps.sh
  say "building build/mlopsd"
  make -j"$(nproc)" >/dev/null
fi
[ -x "$BIN" ] || die "$BIN is missing or not executable"
mkdir -p "$VAR"

# From here on a failure or Ctrl-C stops what this run started; a detached
# run that got to the end leaves everything running.
finished=0
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$finished" != 1 ]; then
    [ "$rc" = 0 ] || echo "demo: failed; daemon log: $SHOWVAR/mlopsd.log" >&2
    [ "$already_running" = 1 ] && [ "$rc" = 0 ] || stop_all
  fi
  exit "$rc"
}
on_signal() { echo; finished=0; already_running=0; exit 0; }
trap on_exit EXIT
trap on_signal INT TERM

say "starting a private MariaDB in $SHOWVAR/mariadb"
dbenv=$(tests/mariadb.sh start "$VAR/mariadb") || die "MariaDB did not start: see $SHOWVAR/mariadb/error.log"
eval "$dbenv"
unset MLOPSD_TEST_DB_DIR MLOPSD_TEST_DB_SOCKET
export MLOPSD_DATABASE_NAME=mlops
export MLOPSD_MODELS_REGISTRY_DIR=$VAR/registry
export MLOPSD_SERVER_SPOOL_DIR=$VAR/spool
export MLOPSD_SERVER_LISTEN=127.0.0.1:$PORT
export MLOPSD_SCHEDULER_DAGS_DIR=$DAGS
export MLOPSD_AUTH_CONSOLE_READ_OPEN=true
export MLOPSD_AUTH_ADMIN_TOKEN_ENV=MLOPSD_ADMIN_TOKEN
unset MLOPSD_CONFIG
if [ ! -s "$VAR/admin-token" ]; then
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$VAR/admin-token")
fi
MLOPSD_ADMIN_TOKEN=$(cat "$VAR/admin-token")
export MLOPSD_ADMIN_TOKEN
# Everything a user's own shell needs to talk to the demo: `. var/env`.
(umask 077; cat > "$VAR/env" <<ENV
export MLOPSD_DATABASE_HOST=$MLOPSD_DATABASE_HOST
export MLOPSD_DATABASE_PORT=$MLOPSD_DATABASE_PORT
export MLOPSD_DATABASE_USER=$MLOPSD_DATABASE_USER
export MLOPSD_DATABASE_PASSWORD=$MLOPSD_DATABASE_PASSWORD
export MLOPSD_DATABASE_NAME=mlops
export MLOPSD_MODELS_REGISTRY_DIR=$VAR/registry
export MLOPSD_SERVER_SPOOL_DIR=$VAR/spool
export MLOPSD_SERVER_LISTEN=127.0.0.1:$PORT
export MLOPSD_SCHEDULER_DAGS_DIR=$DAGS
export MLOPSD_ADMIN_TOKEN=$MLOPSD_ADMIN_TOKEN
ENV
)
# The same for the mariadb client: mariadb --defaults-file=var/my.cnf
(umask 077; cat > "$VAR/my.cnf" <<CNF
[client]
host=$MLOPSD_DATABASE_HOST
port=$MLOPSD_DATABASE_PORT
user=$MLOPSD_DATABASE_USER
password=$MLOPSD_DATABASE_PASSWORD
database=mlops
CNF
)

say "applying the schema and loading the sample data"
"$BIN" db init
"$BIN" db seed

if [ "$already_running" = 1 ]; then
  say "mlopsd already running (pid $(cat "$VAR/mlopsd.pid"))"
else
  say "starting mlopsd serve on $URL (log: $SHOWVAR/mlopsd.log)"
  ts0=$(date +%s.%N)
  "$BIN" serve --pid-file "$VAR/mlopsd.pid" >>"$VAR/mlopsd.log" 2>&1 </dev/null &
  spid=$!
  up=0
  for _ in $(seq 1 150); do
    if curl -fsS "$URL/healthz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$up" != 1 ]; then
    echo "demo: mlopsd did not start; last lines of $SHOWVAR/mlopsd.log:" >&2
    tail -20 "$VAR/mlopsd.log" >&2
    exit 1
  fi
  awk -v a="$ts0" -v b="$(date +%s.%N)" -v p="$spid" \
    'BEGIN{printf "    pid %s, answering /healthz %.2f s after start\n", p, b-a}'
fi

# The CT run: trigger one for DEMO_DATE, or pick up the one an interrupted
# demo left behind (queued or running: the scheduler retries it), then
# follow it with a line per task state change and per training trial.
ct_latest_run() {  # prints "ID STATE" of the newest CT run for DEMO_DATE
  "$BIN" runs list "$CT_DAG" --limit 1000 |
    awk -v d="$DEMO_DATE" 'NR > 1 && index($4, d "T") == 1 { print $1, $2; exit }'
}

follow_run() {  # follow_run RUN: 0 when it succeeds, 1 when it fails
  local run=$1 t1 seen=0 try="" prev="" show state tasks line deadline
  t1=$(date +%s.%N)
  deadline=$(( $(date +%s) + ${DEMO_CT_TIMEOUT:-1800} ))
  ts() { awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "[%5.1fs]", b-a}'; }
  while :; do
    if ! show=$("$BIN" runs show "$run" 2>&1); then
      printf '  %s %s\n' "$(ts)" "$show"
      sleep 1; continue
    fi
    state=$(awk '/^state:/ { print $2; exit }' <<<"$show")
    # "task state try/max" of each task that has started or finished
    tasks=$(awk 'f && NF && $2 != "scheduled" && $2 != "none" { print $1, $2, $3 }
                 /^TASK_ID/ { f = 1 }' <<<"$show")
    # the trial lines of the training attempt, before its state change
    line=$(awk '$1 == "model_training" { split($3, t, "/"); print t[1] }' <<<"$tasks")
    if [ -n "$line" ] && [ "$line" != 0 ]; then
      [ "$line" = "$try" ] || { try=$line; seen=0; }
      while IFS= read -r line; do
        seen=$((seen + 1))
        printf '  %s model_training   %s\n' "$(ts)" "$line"
      done < <("$BIN" logs "$run" model_training --try "$try" 2>/dev/null |
               sed -n 's/.*| \(trial [0-9]*\/[0-9]*\) .*: \(.*\) best so far \([0-9.]*\).*/\1: \2, best \3/p' |
               tail -n +"$((seen + 1))")
    fi
    while IFS= read -r line; do
      [ -n "$line" ] || continue
      grep -qxF "$line" <<<"$prev" && continue
      set -- $line
      printf '  %s %-16s %s (try %s)\n' "$(ts)" "$1" "$2" "$3"
    done <<<"$tasks"
    prev=$tasks
    case "$state" in
      success) printf '  %s run success\n' "$(ts)"; return 0 ;;
      failed)  printf '  %s run failed\n' "$(ts)"; return 1 ;;
    esac
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "demo: the CT run is still $state after ${DEMO_CT_TIMEOUT:-1800} s" >&2
      return 1
    fi
    sleep 1
  done
}

if curl -fsS "$URL/readyz" >/dev/null 2>&1; then
  say "a model is already deployed: skipping the first CT run"
else
  read -r ct_id ct_state < <(ct_latest_run || true) || true
  case "${ct_state:-}" in
    queued|running)
      say "following the CT run for $DEMO_DATE that an earlier demo started (run $ct_id, $ct_state)"
      ct_run=$ct_id ;;
    *)
      date_arg=$DEMO_DATE
      # a finished run holds the date: a new run at the current time of day
      # (the features still come from the month before DEMO_DATE)
      [ -z "${ct_state:-}" ] || date_arg=${DEMO_DATE}T$(date +%H:%M:%S)
      say "running the CT DAG for $date_arg: extract -> train (27-trial grid) -> validate -> deploy"
      out=$("$BIN" dags trigger "$CT_DAG" --date "$date_arg") || die "$out"
      ct_run=${out#queued run }
      echo "    run $ct_run" ;;
  esac
  if ! follow_run "$ct_run"; then
    die "the CT run failed: '. $SHOWVAR/env; $SHOWBIN logs $ct_run' shows why (daemon log: $SHOWVAR/mlopsd.log)"
  fi
  for _ in $(seq 1 100); do
    curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
fi

say "checking a prediction"
code=$(curl -sS -o "$VAR/predict.out" -w '%{http_code}' -X POST "$URL/predict" \
       -H 'Content-Type: application/json' -d @sql/data/predict_example.json) || code=000
echo "    HTTP $code $(cat "$VAR/predict.out" 2>/dev/null)"
[ "$code" = 200 ] || die "POST /predict answered $code: see $SHOWVAR/mlopsd.log"

cat <<MSG

mlopsd is serving on $URL  (web console: $URL/), ready in $(( $(date +%s) - T0 )) s.
Paste this to get a prediction:

  curl -X POST $URL/predict -H 'Content-Type: application/json' -d @sql/data/predict_example.json

  daemon log:  $SHOWVAR/mlopsd.log
  task logs:   . $SHOWVAR/env; $SHOWBIN runs list; $SHOWBIN logs RUN_ID
  SQL shell:   mariadb --defaults-file=$SHOWVAR/my.cnf
  admin API:   curl -H "Authorization: Bearer \$(cat $SHOWVAR/admin-token)" $URL/api/v2/dags
MSG
if [ "$DETACH" = 1 ]; then
  echo "  stop:        make demo-stop   (remove everything: make demo-clean)"
  finished=1
  exit 0
fi
echo
echo "Ctrl-C stops mlopsd and MariaDB (or run 'make demo-stop' in another terminal)."
pid=$(cat "$VAR/mlopsd.pid")
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
say "mlopsd exited; see $SHOWVAR/mlopsd.log"
