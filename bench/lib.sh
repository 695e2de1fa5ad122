# bench/lib.sh - the start and clean-up every bench script shares: a temp
# dir, a throwaway MariaDB (tests/mariadb.sh), the daemons to stop, a free
# port, the load average and per-setting medians.  One copy, so a fix to
# the start (a port race, a server left running) reaches every bench.
#
# Sourced by bash scripts after they cd to the repository root:
#   . bench/lib.sh
# Not a benchmark itself: bench/run.sh skips it.  A function that starts
# something the bench cannot do without exits the script with status 1
# and a message that names the script (WHO) and what failed.

# bench_tmp PREFIX: T = a new directory /tmp/PREFIX.XXXXXX; from now on the
# script's exit runs bench_cleanup, and INT/TERM exit 130 so that it runs
# on Ctrl-C too.
bench_tmp() {
  T=$(mktemp -d "/tmp/$1.XXXXXX") || { echo "$1: mktemp failed" >&2; exit 1; }
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_cleanup: the script's own bench_stop first (if it defines one: its
# daemons, which must go before their database), then the MariaDB that
# bench_db_start started, then $T.
bench_cleanup() {
  if declare -F bench_stop >/dev/null; then bench_stop; fi
  if [ -n "${BENCH_OWN_DB:-}" ]; then
    tests/mariadb.sh stop "$T/db" >/dev/null 2>&1
  fi
  rm -rf "$T"
}

# bench_kill PID...: SIGTERM to each non-empty PID, then wait for them all
# (a daemon flushes its log and closes its connections on TERM).
bench_kill() {
  local p
  for p in "$@"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "$@"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  return 0
}

# bench_db_start WHO: a throwaway MariaDB in $T/db; its MLOPSD_DATABASE_*
# variables are exported into the script; bench_cleanup stops it.
bench_db_start() {
  local envs
  BENCH_OWN_DB=1
  envs=$(tests/mariadb.sh start "$T/db") ||
    { echo "$1: MariaDB did not start (tests/mariadb.sh start $T/db)" >&2; exit 1; }
  eval "$envs"
  # BENCH_DB_SOCKET=1: clients that read MLOPSD_DATABASE_SOCKET (the
  # daemon's database.socket, bench_db_opts) use the server's unix socket
  # instead of TCP to 127.0.0.1 (an A/B of the connection)
  if [ "${BENCH_DB_SOCKET:-0}" = 1 ]; then
    export MLOPSD_DATABASE_SOCKET=$MLOPSD_TEST_DB_SOCKET
  fi
}

# bench_db_start_unless_host WHO: bench_db_start, unless MLOPSD_DATABASE_HOST
# names a server to use instead.
bench_db_start_unless_host() {
  [ -n "${MLOPSD_DATABASE_HOST:-}" ] || bench_db_start "$1"
}

# bench_sql ARGS...: the mariadb client on the bench's server (TCP, the
# MLOPSD_DATABASE_* variables; MYSQL_PWD carries the password).
bench_sql() {
  MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-} \
    mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
    -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" "$@"
}

# bench_free_port: prints a TCP port on 127.0.0.1 that was free a moment ago.
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# bench_wait_http URL TRIES [STEP]: polls URL (every STEP seconds, default
# 0.2) until it answers 2xx, at most TRIES times, then asks once more;
# returns 0 when it answered, 1 when it never did (a daemon still starting
# or dead: the caller decides whether that is fatal).
bench_wait_http() {
  local i
  for ((i = 0; i < $2; i++)); do
    curl -sf -o /dev/null "$1" && return 0
    sleep "${3:-0.2}"
  done
  curl -sf -o /dev/null "$1"
}

# bench_load: prints "load average: a, b, c" (figures on a shared machine
# mean little without it).
bench_load() {
  uptime | sed 's/.*load average/load average/'
}

# bench_loaded CMD...: runs CMD between a "load before" and a "load after"
# line; returns CMD's status.
bench_loaded() {
  local rc
  echo "load before: $(bench_load)"
  "$@"
  rc=$?
  echo "load after: $(bench_load)"
  return $rc
}

# bench_medians FILE UNIT: FILE has one line per run, "KEY... SECONDS" (the
# last field is the wall time, the fields before it the setting); prints
# one line per setting, in the order first seen: its median over its runs
# and its ratio to the first setting's median.
bench_medians() {
  [ -f "$1" ] || return 0
  awk -v unit="$2" '
    { v = $NF; $NF = ""; sub(/ +$/, ""); k = $0
      if (!(k in cnt)) order[++m] = k; w[k, ++cnt[k]] = v }
    END {
      for (i = 1; i <= m; i++) {
        k = order[i]; n = cnt[k]
        for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++)
          if (w[k, b] < w[k, a]) { t = w[k, a]; w[k, a] = w[k, b]; w[k, b] = t }
        med[k] = n % 2 ? w[k, (n + 1) / 2] : (w[k, n / 2] + w[k, n / 2 + 1]) / 2
        printf "median %s %s: %.2f s over %d runs (%.2fx the first)\n",
          k, unit, med[k], n, med[k] / med[order[1]]
      }
    }' "$1"
}

# The serving benches (bench_serve.sh, callgrind_serve.sh) share these; they
# read the script's SRC (repository root), BUILD and BIN (the daemon).
#
# bench_serve_start WHO PREFIX: bench_tmp PREFIX, bench_db_start WHO, the
# database named WHO (MLOPSD_DATABASE_NAME), PORT = a free port for the
# daemon's listen (MLOPSD_SERVER_LISTEN unset so the config file's wins),
# $T/dags made.
bench_serve_start() {
  bench_tmp "$2"
  bench_db_start "$1"
  export MLOPSD_DATABASE_NAME=$1
  unset MLOPSD_SERVER_LISTEN
  PORT=$(bench_free_port)
  mkdir -p "$T/dags"
}

# bench_serve_registry WHO: $T/registry, the course model trained by
# test_serve --make-registry (needs $BUILD/tests/integration/test_serve).
bench_serve_registry() {
  MLOPSD_SRC=$SRC "$BUILD/tests/integration/test_serve" --make-registry "$T/registry" >/dev/null ||
    { echo "$1: could not build the registry in $T/registry (test_serve --make-registry)" >&2; exit 1; }
}

# bench_serve_db_init WHO: `mlopsd db init` with $T/mlopsd.yaml (the tables
# of sql/migrations).
bench_serve_db_init() {
  MLOPSD_SQL_DIR=$SRC/sql/migrations "$BIN" -c "$T/mlopsd.yaml" db init >/dev/null 2>&1 ||
    { echo "$1: db init failed ($BIN -c $T/mlopsd.yaml db init)" >&2; exit 1; }
}

# bench_features_db WHO DB DS: database DB (dropped first) with the
# daemon's tables (`$BIN db init`), the course's seed rows (`db seed`) and
# the feature table for the date DS (sql/features.sql); on failure prints
# the logs and "WHO: setup failed" and exits 1.  MLOPSD_DATABASE_NAME must
# name DB.
bench_features_db() {
  bench_sql -e "DROP DATABASE IF EXISTS $2" &&
    "$BIN" db init >"$T/init.log" 2>&1 &&
    "$BIN" db seed >"$T/seed.log" 2>&1 &&
    sed "s/{{ ds }}/$3/g" sql/features.sql | bench_sql "$2" ||
    { cat "$T"/*.log; echo "$1: setup failed (database $2, features of $3)"; exit 1; }
}
