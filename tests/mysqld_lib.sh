# tests/mysqld_lib.sh - what tests/mariadb.sh (one server) and
# tests/galera.sh (three nodes) share: the server binaries, a free port
# and stopping a server by its pid file.  Sourced, after `dir` is set;
# makes dir absolute (mariadbd resolves a relative --datadir against its
# basedir, /usr).
case "$dir" in /*) ;; *) dir=$PWD/$dir ;; esac
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -x "$MARIADBD" ] || MARIADBD=/usr/sbin/mariadbd
INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db || true)

# Page compression of the prediction log (sql/migrations/040) with LZ4
# instead of zlib when Debian's mariadb-plugin-provider-lz4 is installed:
# less CPU per logged row for more disk (docs/performance.md "Issue 16, third
# round", docs/operations.md "Disk").  Without the plugin, or with
# MARIADB_COMPRESSION=zlib, new pages are written with zlib: same tables,
# same results.  The plugin is loaded whenever it is there, so pages an
# earlier start wrote with LZ4 stay readable (a datadir kept by `make
# demo`); the algorithm is only set with it, as mariadbd refuses to start
# InnoDB with innodb_compression_algorithm=lz4 and no provider.
COMPRESSION_OPTS=""
for _pd in /usr/lib/mysql/plugin /usr/lib64/mysql/plugin \
           "$(dirname "$MARIADBD")/../lib/mysql/plugin"; do
  if [ -f "$_pd/provider_lz4.so" ]; then
    COMPRESSION_OPTS="--plugin-load-add=provider_lz4"
    if [ "${MARIADB_COMPRESSION:-lz4}" = lz4 ]; then
      COMPRESSION_OPTS="$COMPRESSION_OPTS --innodb-compression-algorithm=lz4"
    fi
    break
  fi
done

# run_closed CMD...: exec CMD with every file descriptor above 2 closed.
# A server outlives the script that starts it; without this it keeps
# whatever that script inherited open, e.g. the machine's bench lock that
# `flock /work/bench.lock bench/...` hands down: a bench killed before it
# stopped its MariaDB then left the lock held until someone killed the
# server.  Call it in a subshell ( run_closed ... ) &.
run_closed() {
  local f n
  for f in /proc/$BASHPID/fd/*; do
    n=${f##*/}
    [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"
  done
  exec "$@"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# stop_pidfile PIDFILE SIGNAL TENTHS: send SIGNAL to the server named in
# PIDFILE, wait up to TENTHS tenths of a second for it to go, then
# SIGKILL; the pid file is removed.  Nothing to do without a pid.
stop_pidfile() {
  local pf=$1 sig=$2 tenths=$3 pid
  pid=$(cat "$pf" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tenths"); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pf"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pf"
}

# The SQL that makes the tests' user: mlops / mlops-test-pw, every
# privilege, from anywhere (feed it to a root client).
MLOPS_USER_SQL="CREATE USER IF NOT EXISTS 'mlops'@'%' IDENTIFIED BY 'mlops-test-pw';
CREATE USER IF NOT EXISTS 'mlops'@'localhost' IDENTIFIED BY 'mlops-test-pw';
GRANT ALL PRIVILEGES ON *.* TO 'mlops'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'mlops'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;"
