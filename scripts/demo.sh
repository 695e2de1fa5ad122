#!/bin/bash
# demo.sh [start|stop|clean] - the whole stack on this machine, from nothing.
#
#   make demo        installs missing packages, builds, starts a private
#                    MariaDB under var/ (own port and socket), loads schema
#                    and sample data, starts `mlopsd serve`, runs the CT DAG
#                    for 2025-09-01 (extract -> train -> validate -> deploy),
#                    waits for the model, prints a curl to paste.  Stays in
#                    the foreground; Ctrl-C stops everything it started.
#   make demo-stop   stops what a demo started (from another terminal)
#   make demo-clean  stops and removes var/ (database, registry, logs)
#
# Running it twice is fine: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR=$ROOT/var
BIN=$ROOT/build/mlopsd
DEMO_DATE=${DEMO_DATE:-2025-09-01}
PORT=${MLOPSD_DEMO_PORT:-3000}
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

stop_all() {
  if [ -f "$VAR/mlopsd.pid" ]; then
    pid=$(cat "$VAR/mlopsd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      say "stopping mlopsd (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$VAR/mlopsd.pid"
  fi
  if [ -f "$VAR/mariadb/mysqld.pid" ]; then
    say "stopping MariaDB"
    tests/mariadb.sh stop "$VAR/mariadb" || true
  fi
}

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  clean) stop_all; rm -rf "$VAR"; say "removed $VAR"; exit 0 ;;
  start) ;;
  *) echo "usage: scripts/demo.sh [start|stop|clean]" >&2; exit 2 ;;
esac

say "installing missing packages (scripts/install-deps.sh)"
scripts/install-deps.sh
say "building"
make -j"$(nproc)" >/dev/null
mkdir -p "$VAR"

say "starting a private MariaDB in var/mariadb"
eval "$(tests/mariadb.sh start "$VAR/mariadb")"
export MLOPSD_DATABASE_NAME=mlops
export MLOPSD_MODELS_REGISTRY_DIR=$VAR/registry
export MLOPSD_SERVER_SPOOL_DIR=$VAR/spool
export MLOPSD_SERVER_LISTEN=127.0.0.1:$PORT
export MLOPSD_AUTH_CONSOLE_READ_OPEN=true
if [ ! -s "$VAR/admin-token" ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$VAR/admin-token"
  chmod 600 "$VAR/admin-token"
fi
MLOPSD_ADMIN_TOKEN=$(cat "$VAR/admin-token")
export MLOPSD_ADMIN_TOKEN
# Everything a user's own shell needs to talk to the demo's database.
cat > "$VAR/env" <<ENV
export MLOPSD_DATABASE_HOST=$MLOPSD_DATABASE_HOST
export MLOPSD_DATABASE_PORT=$MLOPSD_DATABASE_PORT
export MLOPSD_DATABASE_USER=$MLOPSD_DATABASE_USER
export MLOPSD_DATABASE_PASSWORD=$MLOPSD_DATABASE_PASSWORD
export MLOPSD_DATABASE_NAME=mlops
export MLOPSD_MODELS_REGISTRY_DIR=$VAR/registry
export MLOPSD_SERVER_SPOOL_DIR=$VAR/spool
export MLOPSD_SERVER_LISTEN=127.0.0.1:$PORT
export MLOPSD_ADMIN_TOKEN=$MLOPSD_ADMIN_TOKEN
ENV
chmod 600 "$VAR/env"

say "applying the schema and loading the sample data"
"$BIN" db init
"$BIN" db seed

if [ -f "$VAR/mlopsd.pid" ] && kill -0 "$(cat "$VAR/mlopsd.pid")" 2>/dev/null; then
  say "mlopsd already running (pid $(cat "$VAR/mlopsd.pid"))"
else
  say "starting mlopsd serve on 127.0.0.1:$PORT (log: var/mlopsd.log)"
  "$BIN" serve --pid-file "$VAR/mlopsd.pid" >>"$VAR/mlopsd.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null ||
    { echo "mlopsd did not start; last lines of var/mlopsd.log:"; tail -20 "$VAR/mlopsd.log"; stop_all; exit 1; }
fi
trap 'echo; stop_all; exit 0' INT TERM

if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
  say "a model is already deployed"
else
  say "running the CT DAG for $DEMO_DATE: extract -> train (27-trial grid) -> validate -> deploy"
  "$BIN" dags trigger credit_score_classification_ct --date "$DEMO_DATE" --wait || {
    echo "the CT run failed: see 'build/mlopsd logs <run_id>' and var/mlopsd.log"; }
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
fi

cat <<MSG

mlopsd is serving on http://127.0.0.1:$PORT  (console: http://127.0.0.1:$PORT/)

  curl -s -X POST http://127.0.0.1:$PORT/predict \\
       -H 'Content-Type: application/json' \\
       -d @sql/data/predict_example.json

  logs:    var/mlopsd.log (daemon), build/mlopsd runs list / logs RUN_ID (tasks)
  SQL:     mariadb -h127.0.0.1 -P$MLOPSD_DATABASE_PORT -umlops -p\$MLOPSD_DATABASE_PASSWORD mlops
  env:     source var/env   (database, registry and admin token for your shell)
  admin:   curl -H "Authorization: Bearer \$(cat var/admin-token)" http://127.0.0.1:$PORT/api/v2/dags

Ctrl-C stops mlopsd and MariaDB (or run 'make demo-stop' elsewhere).
MSG
pid=$(cat "$VAR/mlopsd.pid")
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
say "mlopsd exited; see var/mlopsd.log"
stop_all
