#!/bin/bash
# tests/galera.sh - a throwaway three-node MariaDB Galera cluster on
# loopback, for tests/cluster/ and bench/ (like tests/mariadb.sh for one
# server).
#
#   tests/galera.sh start DIR    create DIR, bootstrap node 1, join nodes 2
#                                and 3 (rsync state transfer), create user
#                                mlops (password mlops-test-pw); print shell
#                                `export` lines: MLOPSD_DATABASE_* (node 1)
#                                and GALERA_PORTS="P1 P2 P3" (SQL ports)
#   tests/galera.sh stop DIR     stop every node (SIGTERM, then SIGKILL)
#   tests/galera.sh kill DIR N   kill -9 node N (1..3)
#   tests/galera.sh join DIR N   start node N again: it rejoins the cluster
#                                (IST from a peer's gcache, else SST)
#   tests/galera.sh size DIR N   wsrep_cluster_size seen by node N
#
# Every node has its own datadir, socket, SQL port, group port (gcomm),
# IST and SST ports, all free 127.0.0.1 ports recorded in DIR/ports.  The
# nodes run as the `mysql` user even when this script runs as root: the
# rsync state transfer refuses to run as root.  Settings a Galera node
# needs (docs/scale-out.md): binlog_format=ROW, InnoDB,
# innodb_autoinc_lock_mode=2, wsrep_on with the provider and the cluster
# address.  Small buffers (32 MB pool) to fit a 2-core test machine.
set -eu
cmd=${1:-}; dir=${2:-}; node=${3:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: tests/galera.sh start|stop|kill|join|size DIR [N]" >&2; exit 2
fi
. "$(dirname "$0")/mysqld_lib.sh"  # dir absolute, MARIADBD, free_port, ...
PROVIDER=${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
RUN_AS=mysql
[ "$(id -u)" = 0 ] || RUN_AS=$(id -un)

# ports file: one line per node: SQL GCOMM IST SST
port_of() { sed -n "${1}p" "$dir/ports" | cut -d' ' -f"$2"; }
as_owner() { if [ "$(id -u)" = 0 ]; then chown -R "$RUN_AS": "$@"; fi; }

client() {  # client N SQL...: root over the node's socket
  local n=$1; shift
  mariadb --no-defaults -uroot --socket="$dir/n$n/mysqld.sock" -N -B "$@"
}

start_node() {  # start_node N [--wsrep-new-cluster]
  local n=$1 extra=${2:-} addr="" i
  for i in 1 2 3; do addr="$addr${addr:+,}127.0.0.1:$(port_of "$i" 2)"; done
  mkdir -p "$dir/n$n/data"
  as_owner "$dir/n$n"
  local user_opt=""
  [ "$(id -u)" = 0 ] && user_opt="--user=$RUN_AS"
  # shellcheck disable=SC2086
  ( run_closed "$MARIADBD" --no-defaults $user_opt --datadir="$dir/n$n/data" \
    --socket="$dir/n$n/mysqld.sock" --port="$(port_of "$n" 1)" \
    --bind-address=127.0.0.1 --pid-file="$dir/n$n/mysqld.pid" \
    --log-error="$dir/n$n/error.log" --skip-name-resolve \
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=2 --max-connections=300 \
    --character-set-server=utf8mb4 --binlog-format=ROW \
    --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
    --wsrep-on=ON --wsrep-provider="$PROVIDER" \
    --wsrep-cluster-name=mlopsd_test --wsrep-node-name="node$n" \
    --wsrep-cluster-address="gcomm://$addr" \
    --wsrep-node-address="127.0.0.1:$(port_of "$n" 2)" \
    --wsrep-provider-options="base_port=$(port_of "$n" 2);ist.recv_addr=127.0.0.1:$(port_of "$n" 3);gcache.size=64M;evs.inactive_timeout=PT6S;evs.suspect_timeout=PT3S" \
    --wsrep-sst-method=rsync \
    --wsrep-sst-receive-address="127.0.0.1:$(port_of "$n" 4)" \
    $extra >/dev/null 2>&1 ) &
}

wait_synced() {  # wait_synced N SECONDS
  local n=$1 i st
  for i in $(seq 1 $(( $2 * 5 ))); do
    st=$(client "$n" -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" \
      2>/dev/null | cut -f2) || true
    [ "$st" = Synced ] && return 0
    sleep 0.2
  done
  echo "tests/galera.sh: node $n not synced after $2 s (state '${st:-}');" \
    "last lines of $dir/n$n/error.log:" >&2
  tail -15 "$dir/n$n/error.log" >&2 || true
  return 1
}

stop_node() { stop_pidfile "$dir/n$1/mysqld.pid" "$2" 150; }  # N SIGNAL

case "$cmd" in
  start)
    [ -n "$INSTALL_DB" ] || { echo "tests/galera.sh: mariadb-install-db not found" >&2; exit 1; }
    [ -f "$PROVIDER" ] || { echo "tests/galera.sh: $PROVIDER not found (apt-get install galera-4)" >&2; exit 1; }
    command -v rsync >/dev/null || { echo "tests/galera.sh: rsync not found" >&2; exit 1; }
    mkdir -p "$dir"
    chmod 755 "$dir"
    : >"$dir/ports"
    for n in 1 2 3; do
      echo "$(free_port) $(free_port) $(free_port) $(free_port)" >>"$dir/ports"
      mkdir -p "$dir/n$n"
    done
    user_opt=""; [ "$(id -u)" = 0 ] && user_opt="--user=$RUN_AS"
    as_owner "$dir/n1"
    # shellcheck disable=SC2086
    "$INSTALL_DB" --no-defaults $user_opt --datadir="$dir/n1/data" \
      --auth-root-authentication-method=socket --skip-test-db --force \
      >"$dir/install.log" 2>&1 ||
      { echo "tests/galera.sh: mariadb-install-db failed, see $dir/install.log" >&2; exit 1; }
    start_node 1 --wsrep-new-cluster
    wait_synced 1 60
    client 1 <<<"$MLOPS_USER_SQL"
    # one joiner at a time: each takes a full rsync state transfer
    for n in 2 3; do start_node "$n"; wait_synced "$n" 90; done
    cat <<ENV
export MLOPSD_DATABASE_HOST=127.0.0.1
export MLOPSD_DATABASE_PORT=$(port_of 1 1)
export MLOPSD_DATABASE_USER=mlops
export MLOPSD_DATABASE_PASSWORD=mlops-test-pw
export GALERA_PORTS="$(port_of 1 1) $(port_of 2 1) $(port_of 3 1)"
export GALERA_DIR=$dir
ENV
    ;;
  stop)
    # the last node stops last: it is the one that may bootstrap again
    for n in 3 2 1; do [ -d "$dir/n$n" ] && stop_node "$n" TERM; done
    ;;
  kill) stop_node "$node" KILL ;;
  join) start_node "$node"; wait_synced "$node" 90 ;;
  size) client "$node" -e "SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2 ;;
  *) echo "tests/galera.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
