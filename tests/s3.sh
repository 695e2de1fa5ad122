#!/bin/bash
# tests/s3.sh - a throwaway S3-compatible object store for tests: a
# single-node OpenStack Swift (proxy, account, container and object
# servers, one replica) with its s3api middleware and tempauth, plus a
# memcached, all on free 127.0.0.1 ports with every file inside DIR.
#
#   tests/s3.sh start DIR   write the configs and rings into DIR, start the
#                           five processes, create the bucket "mlopsd",
#                           print shell `export` lines for the environment
#   tests/s3.sh stop DIR    stop every process started for DIR (SIGTERM,
#                           then SIGKILL); safe to call twice
#
# Credentials (tempauth, account "test"): access key "test:tester", secret
# "testing"; the ':' in the key is why src/s3.c passes keys through
# CURLOPT_USERNAME/PASSWORD.  Region us-east-1 (s3api's default).
# If start fails, everything it started is stopped before it exits.
# Needs the Debian packages swift-proxy swift-object swift-container
# swift-account python3-swift memcached (scripts/install-deps.sh).
set -eu

cmd=${1:-}; dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: tests/s3.sh start|stop DIR" >&2; exit 2
fi
case "$dir" in /*) ;; *) dir=$PWD/$dir ;; esac
BUCKET=mlopsd

# five free ports in one python start (each start costs seconds when the
# machine is busy); all five sockets are held until all are chosen, so
# they differ
free_ports() {
  python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

stop_all() {
  local f pid
  for f in "$dir"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for f in "$dir"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "tests/s3.sh: $1 not found (scripts/install-deps.sh installs" \
         "swift-proxy swift-object swift-container swift-account" \
         "python3-swift memcached)" >&2; exit 1; }
}

# write_server_conf NAME PORT: the account/container/object server config
write_server_conf() {
  cat > "$dir/etc/$1-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $(id -un)
swift_dir = $dir/etc
devices = $dir/srv
mount_check = false
log_level = WARNING

[pipeline:main]
pipeline = $1-server

[app:$1-server]
use = egg:swift#$1
CONF
  case "$1" in
    object) printf '\n[object-replicator]\n[object-updater]\n[object-auditor]\n' ;;
    container) printf '\n[container-replicator]\n[container-updater]\n[container-auditor]\n[container-sync]\n' ;;
    account) printf '\n[account-replicator]\n[account-auditor]\n[account-reaper]\n' ;;
  esac >> "$dir/etc/$1-server.conf"
}

# spawn NAME CMD...: start CMD in the background, its output in
# DIR/log/NAME.log, its pid in DIR/run/NAME.pid
spawn() {
  local name=$1; shift
  "$@" >"$dir/log/$name.log" 2>&1 &
  echo $! > "$dir/run/$name.pid"
}

start() {
  need swift-proxy-server; need swift-object-server
  need swift-container-server; need swift-account-server
  need swift-ring-builder; need memcached
  if ls "$dir"/run/*.pid >/dev/null 2>&1; then
    echo "tests/s3.sh: $dir already has running servers (stop it first)" >&2
    exit 1
  fi
  rm -rf "$dir/etc" "$dir/srv" "$dir/log" "$dir/run"
  mkdir -p "$dir/etc" "$dir/srv/d1" "$dir/log" "$dir/run"
  trap 'echo "tests/s3.sh: start failed; logs in $dir/log" >&2; stop_all' ERR

  local pp ap cp op mp
  read -r pp ap cp op mp < <(free_ports)

  cat > "$dir/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = mlopsd-test-$$
swift_hash_path_prefix = mlopsd

[storage-policy:0]
name = Policy-0
default = yes
CONF
  # the three rings (one device, one replica) built in one python process:
  # swift-ring-builder would start python nine times (~3 s each here)
  /usr/bin/python3 - "$dir/etc" "$ap" "$cp" "$op" <<'PY'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for kind, port in zip(("account", "container", "object"), sys.argv[2:5]):
    b = RingBuilder(2, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
               "port": int(port), "device": "d1", "weight": 1})
    b.rebalance()
    b.save("%s/%s.builder" % (etc, kind))
    b.get_ring().save("%s/%s.ring.gz" % (etc, kind))
PY
  write_server_conf account "$ap"
  write_server_conf container "$cp"
  write_server_conf object "$op"

  cat > "$dir/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $pp
workers = 0
user = $(id -un)
swift_dir = $dir/etc
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mp

CONF
  # the filters without options: [filter:NAME] use = egg:swift#EGG, where
  # NAME:EGG is written NAME when both are the same
  local f
  for f in catch_errors gatekeeper healthcheck proxy-logging:proxy_logging \
    listing_formats copy slo dlo; do
    printf '[filter:%s]\nuse = egg:swift#%s\n' "${f%%:*}" "${f#*:}"
  done >> "$dir/etc/proxy-server.conf"

  local mc_user=""
  [ "$(id -u)" = 0 ] && mc_user="-u root"
  # shellcheck disable=SC2086
  spawn memcached memcached $mc_user -l 127.0.0.1 -p "$mp" -U 0 -m 16
  spawn account swift-account-server "$dir/etc/account-server.conf" -v
  spawn container swift-container-server "$dir/etc/container-server.conf" -v
  spawn object swift-object-server "$dir/etc/object-server.conf" -v
  spawn proxy swift-proxy-server "$dir/etc/proxy-server.conf" -v

  # ready when the proxy answers /healthcheck and tempauth hands out a
  # token (that needs memcached); the bucket is a Swift container made
  # through the native API, the one place here that needs no signature
  local token="" up=0
  for _ in $(seq 1 150); do
    for f in "$dir"/run/*.pid; do
      kill -0 "$(cat "$f")" 2>/dev/null || {
        echo "tests/s3.sh: $(basename "$f" .pid) exited; its log:" >&2
        tail -20 "$dir/log/$(basename "$f" .pid).log" >&2; false; }
    done
    if curl -fs "http://127.0.0.1:$pp/healthcheck" >/dev/null 2>&1; then
      token=$(curl -fsi -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
                "http://127.0.0.1:$pp/auth/v1.0" 2>/dev/null |
              tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
      if [ -n "$token" ] &&
         curl -fs -X PUT -H "X-Auth-Token: $token" \
           "http://127.0.0.1:$pp/v1/AUTH_test/$BUCKET" >/dev/null 2>&1; then
        up=1; break
      fi
    fi
    sleep 0.2
  done
  if [ "$up" != 1 ]; then
    echo "tests/s3.sh: Swift did not come up on 127.0.0.1:$pp; proxy log:" >&2
    tail -20 "$dir/log/proxy.log" >&2
    false
  fi
  trap - ERR
  cat <<ENV
export MLOPSD_TEST_S3_DIR=$dir
export MLOPSD_TEST_S3_ENDPOINT=http://127.0.0.1:$pp
export MLOPSD_TEST_S3_BUCKET=$BUCKET
export MLOPSD_TEST_S3_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test:tester
export AWS_SECRET_ACCESS_KEY=testing
ENV
}

case "$cmd" in
  start) start ;;
  stop) [ -d "$dir/run" ] && stop_all; exit 0 ;;
  *) echo "tests/s3.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
