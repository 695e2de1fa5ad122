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
# Works as root (CI) and as a normal user.  The server has its own datadir,
# socket and port, so it never touches a system MariaDB.
set -eu

cmd=${1:-}; dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: tests/mariadb.sh start|stop|restart DIR" >&2; exit 2
fi
# mariadbd resolves a relative --datadir against its basedir (/usr)
case "$dir" in /*) ;; *) dir=$PWD/$dir ;; esac

MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -x "$MARIADBD" ] || MARIADBD=/usr/sbin/mariadbd
INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db || true)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
  local port=$1
  local user_opt=""
  [ "$(id -u)" = 0 ] && user_opt="--user=root"
  # shellcheck disable=SC2086
  "$MARIADBD" --no-defaults $user_opt --datadir="$dir/data" \
    --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=256M \
    --innodb-log-file-size=64M --innodb-flush-log-at-trx-commit=2 \
    --max-connections=500 --character-set-server=utf8mb4 \
    >/dev/null 2>&1 &
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

stop_server() {
  [ -f "$dir/mysqld.pid" ] || return 0
  local pid; pid=$(cat "$dir/mysqld.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/mysqld.pid"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/mysqld.pid"
}

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
      mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" <<'SQL'
CREATE USER IF NOT EXISTS 'mlops'@'%' IDENTIFIED BY 'mlops-test-pw';
CREATE USER IF NOT EXISTS 'mlops'@'localhost' IDENTIFIED BY 'mlops-test-pw';
GRANT ALL PRIVILEGES ON *.* TO 'mlops'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'mlops'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
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
