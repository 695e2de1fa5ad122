#!/bin/bash
# tests/mariadb.sh - a throwaway MariaDB server for tests and the demo.
#
#   tests/mariadb.sh start DIR   create DIR (datadir, socket, log), start
#                                mariadbd on a free 127.0.0.1 port, create the
#                                user mlops (password mlops-test-pw) with all privileges, print
#                                shell `export` lines for the environment
#   tests/mariadb.sh stop DIR    stop that server (SIGTERM, then SIGKILL)
#   tests/mariadb.sh restart DIR stop, then start again on the same port
#
# MARIADB_OPTS: more mariadbd options, after ours (a bench's A/B of server
# settings); MARIADB_COMPRESSION=zlib: see tests/mysqld_lib.sh.
#
# Works as root (CI) and as a normal user.  The server has its own datadir,
# socket and port, so it never touches a system MariaDB.
set -eu

cmd=${1:-}; dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: tests/mariadb.sh start|stop|restart DIR" >&2; exit 2
fi
. "$(dirname "$0")/mysqld_lib.sh"  # dir absolute, MARIADBD, free_port, ...

# The buffer pool is 64 MiB: the course's data (11 MB of CSV) fits many
# times, and the server is in its steady state from the start.  With
# 256 MiB a fresh server spent the first minutes of a bench touching new
# pool memory for the first time (page faults and zeroing, about 3-8 us
# of every logged row in bench/bench_serve.sh); a long-running server has
# long paid that, and 64 MiB costs per row what a warm 256 MiB pool costs
# (docs/performance.md "Issue 16, fourth round: MariaDB's row").
start_server() {
  local port=$1
  local user_opt=""
  [ "$(id -u)" = 0 ] && user_opt="--user=root"
  # shellcheck disable=SC2086
  ( run_closed "$MARIADBD" --no-defaults $user_opt --datadir="$dir/data" \
    --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=64M --innodb-flush-log-at-trx-commit=2 \
    --max-connections=500 --character-set-server=utf8mb4 $COMPRESSION_OPTS \
    ${MARIADB_OPTS:-} \
    >/dev/null 2>&1 ) &
  echo "$port" > "$dir/port"
  for _ in $(seq 1 150); do
    if mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" -e 'SELECT 1' >/dev/null 2>&1 ||
       mariadb --no-defaults -umlops -pmlops-test-pw --socket="$dir/mysqld.sock" -e 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "tests/mariadb.sh: server did not start; last lines of $dir/error.log:" >&2
  tail -20 "$dir/error.log" >&2 || true
  return 1
}

stop_server() { stop_pidfile "$dir/mysqld.pid" TERM 100; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ ! -d "$dir/data/mysql" ]; then
      [ -n "$INSTALL_DB" ] || { echo "tests/mariadb.sh: mariadb-install-db not found (apt-get install mariadb-server)" >&2; exit 1; }
      local_user=""; [ "$(id -u)" = 0 ] && local_user="--user=root"
      # Up to three tries: on a machine loaded by parallel builds and
      # tests the bootstrap server has been seen to fail now and then.
      ok=0
      for try in 1 2 3; do
        rm -rf "$dir/data"
        # shellcheck disable=SC2086
        if "$INSTALL_DB" --no-defaults $local_user --datadir="$dir/data" \
             --auth-root-authentication-method=socket --skip-test-db \
             --force >"$dir/install.log" 2>&1; then ok=1; break; fi
        echo "tests/mariadb.sh: mariadb-install-db failed (try $try of 3):" >&2
        grep -iE 'error|fail|abort' "$dir/install.log" | head -5 >&2
        sleep 2
      done
      [ "$ok" = 1 ] || {
          echo "tests/mariadb.sh: mariadb-install-db failed, see $dir/install.log" >&2
          tail -20 "$dir/install.log" >&2; exit 1; }
      fresh=1
    else
      fresh=0
    fi
    port=$(cat "$dir/port" 2>/dev/null || free_port)
    running_pid=$(cat "$dir/mysqld.pid" 2>/dev/null || true)
    if [ -n "$running_pid" ] && kill -0 "$running_pid" 2>/dev/null; then
      : # already running: just print the environment again
    else
      start_server "$port"
    fi
    if [ "$fresh" = 1 ]; then
      mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" \
        <<<"$MLOPS_USER_SQL"
    fi
    cat <<ENV
export MLOPSD_DATABASE_HOST=127.0.0.1
export MLOPSD_DATABASE_PORT=$port
export MLOPSD_DATABASE_USER=mlops
export MLOPSD_DATABASE_PASSWORD=mlops-test-pw
export MLOPSD_TEST_DB_DIR=$dir
export MLOPSD_TEST_DB_SOCKET=$dir/mysqld.sock
ENV
    ;;
  stop) stop_server ;;
  restart)
    stop_server
    start_server "$(cat "$dir/port")"
    ;;
  *) echo "tests/mariadb.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
