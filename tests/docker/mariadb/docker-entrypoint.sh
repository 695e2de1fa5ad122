#!/bin/sh
# docker-entrypoint.sh - first start and start of the stand-in MariaDB.
# On an empty /var/lib/mysql: create the system tables, then, on a private
# socket with networking off, set the root password (MARIADB_ROOT_PASSWORD,
# required), create MARIADB_DATABASE and MARIADB_USER / MARIADB_PASSWORD
# with all rights on it, and a local 'healthcheck' user whose password is
# kept in /var/lib/mysql/.my-healthcheck.cnf for healthcheck.sh.  Then exec
# mariadbd so it is PID 1 and shuts down cleanly on SIGTERM.
set -eu
DATADIR=/var/lib/mysql
if [ "${1:-mariadbd}" != mariadbd ]; then
  exec "$@"
fi
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$DATADIR"

# SQL string literal: backslashes and single quotes escaped.
q() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }
# SQL identifier: backquotes doubled.
qi() { printf '`%s`' "$(printf '%s' "$1" | sed 's/`/``/g')"; }

if [ ! -d "$DATADIR/mysql" ]; then
  if [ -z "${MARIADB_ROOT_PASSWORD:-}" ]; then
    echo "docker-entrypoint: MARIADB_ROOT_PASSWORD is not set" >&2
    exit 1
  fi
  echo "docker-entrypoint: initialising $DATADIR"
  mariadb-install-db --user=mysql --datadir="$DATADIR" \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null
  sock=/run/mysqld/init.sock
  mariadbd --user=mysql --datadir="$DATADIR" --skip-networking \
    --socket="$sock" --pid-file=/run/mysqld/init.pid &
  pid=$!
  i=0
  until mariadb-admin --socket="$sock" -uroot ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 300 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "docker-entrypoint: the init server did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
  hc_pw=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(q "$MARIADB_ROOT_PASSWORD");"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $(q "$MARIADB_ROOT_PASSWORD");"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY '$hc_pw';"
    echo "CREATE USER 'healthcheck'@'127.0.0.1' IDENTIFIED BY '$hc_pw';"
    echo "CREATE USER 'healthcheck'@'::1' IDENTIFIED BY '$hc_pw';"
    echo "GRANT USAGE ON *.* TO 'healthcheck'@'localhost', 'healthcheck'@'127.0.0.1', 'healthcheck'@'::1';"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(qi "$MARIADB_DATABASE");"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER $(q "$MARIADB_USER")@'%' IDENTIFIED BY $(q "${MARIADB_PASSWORD:-}");"
      if [ -n "${MARIADB_DATABASE:-}" ]; then
        echo "GRANT ALL ON $(qi "$MARIADB_DATABASE").* TO $(q "$MARIADB_USER")@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$sock" -uroot
  umask 077
  printf '[mariadb-client]\nuser=healthcheck\npassword=%s\nprotocol=tcp\nhost=127.0.0.1\n' \
    "$hc_pw" >"$DATADIR/.my-healthcheck.cnf"
  chown mysql:mysql "$DATADIR/.my-healthcheck.cnf"
  kill -TERM "$pid"
  wait "$pid" || true
  echo "docker-entrypoint: initialised"
fi
shift
exec mariadbd --user=mysql --datadir="$DATADIR" --bind-address=0.0.0.0 \
  --skip-name-resolve "$@"
