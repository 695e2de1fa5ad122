#!/bin/bash
# tests/docker/run.sh - the container test (`make test-docker`): the stack
# of docker/docker-compose.yml, unchanged, in a real Docker engine.
#
#  1. a private dockerd (its own --data-root, --exec-root, --pidfile and
#     unix socket under a temp dir; no iptables rules, no ip_forward, no
#     docker0: --iptables=false --ip-forward=false --bridge=none), so the
#     host's own Docker state and network are never touched
#  2. base images built here, as no image registry is reachable:
#     debian:12-slim = `debootstrap --variant=minbase bookworm` from the
#     host's apt mirror, `docker import`ed; mariadb:10.11 = the stand-in of
#     tests/docker/mariadb (Debian's mariadb-server, the official image's
#     variables and healthcheck.sh); mlopsd:latest from docker/Dockerfile.
#     Builds use BuildKit through /usr/bin/docker (the 28.x client that
#     may come first on PATH has no buildx) with the host's network, which
#     is what reaches the mirror without NAT rules.
#  3. `docker-compose up -d` of docker/docker-compose.yml with a generated
#     env file (passwords, a free loopback port), then: both containers
#     healthy within MLOPSD_DOCKER_HEALTHY_S; /predict answers 200 on
#     127.0.0.1 within MLOPSD_DOCKER_PREDICT_S (the first CT run trains
#     the model); the port is bound to 127.0.0.1 only; the predictions are
#     rows of credit_predictions_api_log; `docker-compose stop` is graceful
#     (exit 0, the daemon logs its clean shutdown, no row lost); a restart
#     does not complain about the bootstrap run; `down` + `up` keeps the
#     registry and the deployed version; `down -v` removes everything.
#  4. everything it started is stopped (also on failure or Ctrl-C): the
#     stack, dockerd and its containerd, their mounts; the host's
#     iptables, ip_forward and interfaces are compared with what they were
#     before and restored if they differ.
#
# Environment:
#   MLOPSD_DOCKER_CACHE=DIR  keep dockerd's data root in DIR/data-root
#                            between runs (base images, build cache): a
#                            warm run skips debootstrap and cached layers.
#                            Unset: a temp dir, removed afterwards (cold).
#   MLOPSD_DOCKER_MIRROR=URL Debian mirror for debootstrap (default: the
#                            host's first bookworm URI in /etc/apt).
#   MLOPSD_DOCKER_HEALTHY_S  bound for both containers healthy (90)
#   MLOPSD_DOCKER_PREDICT_S  bound for the first 200 from /predict (180)
# Needs root, dockerd/docker (docker.io), docker-compose, debootstrap:
# scripts/install-deps.sh --docker.  Prints "check: N passed, N failed",
# "time: STEP SECONDS" lines and the image sizes; exit 1 on any failure.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
HEALTHY_S=${MLOPSD_DOCKER_HEALTHY_S:-90}
PREDICT_S=${MLOPSD_DOCKER_PREDICT_S:-180}
CACHE=${MLOPSD_DOCKER_CACHE:-}
PROJECT=mlopsd
C_DB=${PROJECT}_mariadb_1
C_API=${PROJECT}_mlopsd_1

pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "not ok $1${2:+: $2}"; }
say() { echo "# $*"; }
T0=$(date +%s.%N)
now() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

for tool in "$DOCKER" "$DOCKERD" debootstrap docker-compose iptables-save; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: $tool missing: run scripts/install-deps.sh --docker" >&2
    echo "check: 0 passed, 1 failed"; exit 1
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "run.sh: dockerd needs root" >&2
  echo "check: 0 passed, 1 failed"; exit 1
fi

# Short paths: dockerd's and containerd's unix sockets live under them.
WORK=$(mktemp -d /tmp/mlopsd-dk.XXXXXX)
if [ -n "$CACHE" ]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/lock"
  if ! flock -w 600 9; then
    echo "run.sh: $CACHE is in use by another run" >&2
    echo "check: 0 passed, 1 failed"; exit 1
  fi
  DATA=$CACHE/data-root
else
  DATA=$WORK/data-root
fi
EXEC=$WORK/x
SOCK=$WORK/d.sock
DPID=""
STACK=0
dk() { "$DOCKER" -H "unix://$SOCK" "$@"; }
dc() {
  DOCKER_HOST="unix://$SOCK" COMPOSE_DOCKER_CLI_BUILD=0 \
    docker-compose -f "$CFILE" --env-file "$WORK/env" "$@"
}
CFILE=docker/docker-compose.yml

# ---- the host's network, before -------------------------------------------
links() { ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort; }
ipt_dump() { "$1" 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; }
iptables-save >"$WORK/ipt4.save" 2>/dev/null
ip6tables-save >"$WORK/ipt6.save" 2>/dev/null
ipt_dump iptables-save >"$WORK/ipt4.before"
ipt_dump ip6tables-save >"$WORK/ipt6.before"
FWD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
links >"$WORK/links.before"

# Stop everything this run started; safe to call twice.
cleanup() {
  if [ "$STACK" = 1 ] && [ -S "$SOCK" ]; then
    timeout 120 env DOCKER_HOST="unix://$SOCK" docker-compose \
      -f "$CFILE" --env-file "$WORK/env" \
      down -v --remove-orphans -t 30 >/dev/null 2>&1
    STACK=0
  fi
  if [ -n "$DPID" ]; then
    if [ -S "$SOCK" ]; then
      ids=$(timeout 30 "$DOCKER" -H "unix://$SOCK" ps -aq 2>/dev/null)
      # shellcheck disable=SC2086
      [ -n "$ids" ] && timeout 60 "$DOCKER" -H "unix://$SOCK" rm -f $ids >/dev/null 2>&1
      if [ -n "$CACHE" ]; then
        # keep the layers worth keeping, not every superseded image
        timeout 60 "$DOCKER" -H "unix://$SOCK" image prune -f >/dev/null 2>&1
      fi
    fi
    kill -TERM "$DPID" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$DPID" 2>/dev/null && kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
  fi
  # containerd and its shims started by our dockerd: found by our paths
  local p
  for p in $(pgrep -f -- "$EXEC/" 2>/dev/null) $(pgrep -f -- "$DATA/" 2>/dev/null); do
    [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
  done
  # mounts left under our dirs (network namespaces, overlays), deepest first
  awk -v w="$WORK" -v d="$DATA" '$2 ~ "^" w || $2 ~ "^" d { print $2 }' /proc/mounts |
    sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  # the host's network as it was
  links >"$WORK/links.after"
  local l
  for l in $(comm -13 "$WORK/links.before" "$WORK/links.after"); do
    case "$l" in docker*|br-*|veth*) ip link delete "$l" 2>/dev/null ;; esac
  done
  ipt_dump iptables-save >"$WORK/ipt4.after"
  cmp -s "$WORK/ipt4.before" "$WORK/ipt4.after" || iptables-restore <"$WORK/ipt4.save"
  ipt_dump ip6tables-save >"$WORK/ipt6.after"
  cmp -s "$WORK/ipt6.before" "$WORK/ipt6.after" || ip6tables-restore <"$WORK/ipt6.save"
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$FWD_BEFORE" ] ||
    echo "$FWD_BEFORE" >/proc/sys/net/ipv4/ip_forward
}
final_cleanup() {
  cleanup
  [ -z "$CACHE" ] && [ -d "$DATA" ] && rm -rf "$DATA"
  rm -rf "$WORK"
}
trap final_cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

show_logs() {
  local c
  for c in "$C_DB" "$C_API"; do
    echo "  --- docker logs $c (last 25 lines)"
    dk logs --tail 25 "$c" 2>&1 | sed 's/^/  | /'
  done
}

# ---- 1. private dockerd ------------------------------------------------------
mkdir -p "$DATA" "$EXEC"
# In a session of its own: a Ctrl-C reaches this script, whose trap takes
# the stack down first, not dockerd directly.
setsid "$DOCKERD" --data-root "$DATA" --exec-root "$EXEC" --pidfile "$WORK/d.pid" \
  -H "unix://$SOCK" --iptables=false --ip6tables=false --ip-forward=false \
  --ip-masq=false --bridge=none --log-level=warn >"$WORK/dockerd.log" 2>&1 &
DPID=$!
up=0
for _ in $(seq 1 300); do
  if dk version >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$DPID" 2>/dev/null || break
  sleep 0.2
done
if [ "$up" = 1 ]; then ok dockerd_started; else
  sed 's/^/  | /' "$WORK/dockerd.log" | tail -20
  bad dockerd_started; echo "check: $pass passed, $fail failed"; exit 1
fi
say "dockerd $(dk version -f '{{.Server.Version}}'), data root $DATA"
if [ -n "$CACHE" ]; then
  # a kept data root keeps images only: no container, volume or network
  # of an earlier (interrupted) run may leak into this one
  ids=$(dk ps -aq)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && dk rm -f $ids >/dev/null
  dk volume prune -f >/dev/null
  dk network prune -f >/dev/null
fi

# ---- 2. images ---------------------------------------------------------------
mirror=${MLOPSD_DOCKER_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ && u { print u; exit }')
fi
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
    /etc/apt/sources.list 2>/dev/null)
fi
mirror=${mirror:-http://deb.debian.org/debian}

t=$(date +%s.%N)
if dk image inspect debian:12-slim >/dev/null 2>&1; then
  say "debian:12-slim cached"
  echo "time: base_image 0.0 (cached)"
else
  root=$WORK/rootfs
  if debootstrap --variant=minbase bookworm "$root" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    # slim as the official image: no docs, man pages or translations, now
    # or for packages installed later, and no package caches
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    printf '%s\n' 'path-exclude /usr/share/doc/*' \
      'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
      'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
      'path-include /usr/share/locale/locale.alias' \
      >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
    find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* \
      "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
      -exec rm -rf {} + 2>/dev/null
    if tar --numeric-owner -C "$root" -c . |
       dk import -c 'CMD ["bash"]' - debian:12-slim >/dev/null; then
      ok base_image_debootstrapped
    else bad base_image_debootstrapped "docker import failed"; fi
  else
    sed 's/^/  | /' "$WORK/debootstrap.log" | tail -15
    bad base_image_debootstrapped "debootstrap from $mirror failed"
  fi
  rm -rf "$root"
  echo "time: base_image $(since "$t")"
fi

# The stand-in MariaDB and mlopsd build in parallel: both spend most of
# their time in apt, mlopsd also compiling.
build() {  # build NAME LOG ARGS...
  local name=$1 log=$2; shift 2
  local t1; t1=$(date +%s.%N)
  DOCKER_BUILDKIT=1 dk build --network=host --progress=plain "$@" >"$log" 2>&1
  local rc=$?
  echo "time: image_$name $(since "$t1")" >"$log.time"
  return $rc
}
t=$(date +%s.%N)
build mariadb "$WORK/b-mariadb.log" -t mariadb:10.11 tests/docker/mariadb &
b1=$!
build mlopsd "$WORK/b-mlopsd.log" -t mlopsd:latest -f docker/Dockerfile . &
b2=$!
build haproxy "$WORK/b-haproxy.log" -t mlopsd-haproxy:latest docker/haproxy &
b3=$!
wait "$b1"; r1=$?
wait "$b2"; r2=$?
wait "$b3"; r3=$?
cat "$WORK/b-mariadb.log.time" "$WORK/b-mlopsd.log.time" \
  "$WORK/b-haproxy.log.time" 2>/dev/null
echo "time: images_parallel $(since "$t")"
if [ "$r1" = 0 ]; then ok image_mariadb_standin_built; else
  tail -25 "$WORK/b-mariadb.log" | sed 's/^/  | /'; bad image_mariadb_standin_built; fi
if [ "$r2" = 0 ]; then ok image_mlopsd_built; else
  tail -25 "$WORK/b-mlopsd.log" | sed 's/^/  | /'; bad image_mlopsd_built; fi
if [ "$r3" = 0 ]; then ok image_haproxy_built; else
  tail -25 "$WORK/b-haproxy.log" | sed 's/^/  | /'; bad image_haproxy_built; fi
# the build context leaves out what .dockerignore names
ctx=$(grep -E 'transferring context: [0-9.]+[kMG]?B' "$WORK/b-mlopsd.log" | tail -1 |
  sed -E 's/.*transferring context: ([0-9.]+[kMG]?B).*/\1/')
say "mlopsd build context: ${ctx:-?}"
dk images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E '^(debian:12-slim|mariadb:10.11|mlopsd:latest|mlopsd-haproxy:latest) ' | sed 's/^/size: /'
if [ "$fail" != 0 ]; then echo "check: $pass passed, $fail failed"; exit 1; fi

# ---- 3. the stack --------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rnd() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
DBPW=$(rnd)
{
  echo "COMPOSE_PROJECT_NAME=$PROJECT"
  echo "MARIADB_ROOT_PASSWORD=$(rnd)"
  echo "MLOPSD_DATABASE_PASSWORD=$DBPW"
  echo "MLOPSD_ADMIN_TOKEN=$(rnd)"
  echo "MLOPSD_PUBLISH=127.0.0.1:$port"
} >"$WORK/env"
URL=http://127.0.0.1:$port
sql() {  # sql QUERY: one value, as the mlops user inside the MariaDB container
  dk exec -e MYSQL_PWD="$DBPW" "$C_DB" mariadb -umlops mlops -sN -e "$1" 2>/dev/null
}
health() { dk inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null; }
wait_healthy() {  # wait_healthy BOUND_S: both containers healthy
  local end=$(($(date +%s) + $1)) a="" b=""
  while [ "$(date +%s)" -lt "$end" ]; do
    a=$(health "$C_DB"); b=$(health "$C_API")
    [ "$a" = healthy ] && [ "$b" = healthy ] && return 0
    sleep 1
  done
  echo "  $C_DB: $a, $C_API: $b after $1 s"
  return 1
}
predict() {  # predict OUT: HTTP status of one /predict of the README's example
  curl -s -o "$1" -w '%{http_code}' -m 10 -X POST "$URL/predict" \
    -H 'Content-Type: application/json' -d @sql/data/predict_example.json
}

t=$(date +%s.%N)
STACK=1
if dc up -d >"$WORK/up.log" 2>&1; then ok compose_up; else
  sed 's/^/  | /' "$WORK/up.log" | tail -20; bad compose_up; fi
echo "time: compose_up_returned $(since "$t")"
if wait_healthy "$HEALTHY_S"; then ok both_containers_healthy; else
  show_logs; bad both_containers_healthy "not healthy within $HEALTHY_S s"; fi
echo "time: up_to_healthy $(since "$t")"

code=000
end=$(($(date +%s) + PREDICT_S))
while [ "$(date +%s)" -lt "$end" ]; do
  code=$(predict "$WORK/p.json")
  [ "$code" = 200 ] && break
  sleep 2
done
if [ "$code" = 200 ] && grep -q '"model_version":"1"' "$WORK/p.json"; then
  ok predict_200_on_loopback
else
  echo "  last answer: HTTP $code $(head -c 300 "$WORK/p.json" 2>/dev/null)"
  show_logs; bad predict_200_on_loopback "no 200 within $PREDICT_S s"
fi
echo "time: up_to_first_prediction $(since "$t")"

bind=$(dk port "$C_API" 3000/tcp 2>/dev/null)
if [ "$bind" = "127.0.0.1:$port" ]; then ok port_bound_to_loopback_only; else
  bad port_bound_to_loopback_only "docker port says '$bind'"; fi

n200=0
[ "$code" = 200 ] && n200=1
rows=""
for _ in $(seq 1 40); do
  rows=$(sql "SELECT COUNT(*) FROM credit_predictions_api_log WHERE customer_id = '4096'")
  [ -n "$rows" ] && [ "$rows" -ge "$n200" ] && [ "$n200" -gt 0 ] && break
  sleep 0.5
done
if [ "$n200" -gt 0 ] && [ "${rows:-0}" -ge 1 ]; then ok prediction_logged_in_mariadb; else
  bad prediction_logged_in_mariadb "rows for customer 4096: '${rows}'"; fi

# A few more predictions right before the stop: the graceful stop must
# flush them to MariaDB.
for _ in 1 2 3 4 5; do
  [ "$(predict /dev/null)" = 200 ] && n200=$((n200 + 1))
done
t=$(date +%s.%N)
dc stop >"$WORK/stop.log" 2>&1
echo "time: compose_stop $(since "$t")"
rc=$(dk inspect -f '{{.State.ExitCode}}' "$C_API" 2>/dev/null)
dk logs "$C_API" >"$WORK/api1.log" 2>&1
if [ "$rc" = 0 ] && grep -q 'SIGTERM: stopping' "$WORK/api1.log" &&
   grep -q 'shut down cleanly' "$WORK/api1.log" &&
   grep -q 'prediction log flushed' "$WORK/api1.log"; then
  ok compose_stop_graceful
else
  tail -15 "$WORK/api1.log" | sed 's/^/  | /'
  bad compose_stop_graceful "exit code '$rc'"
fi
grep -E 'prediction log flushed|shut down cleanly' "$WORK/api1.log" | sed 's/^/  | /'

t=$(date +%s.%N)
dc start >"$WORK/start.log" 2>&1
if wait_healthy "$HEALTHY_S"; then ok healthy_after_stop_start; else
  show_logs; bad healthy_after_stop_start; fi
echo "time: start_to_healthy $(since "$t")"
rows=$(sql "SELECT COUNT(*) FROM credit_predictions_api_log WHERE customer_id = '4096'")
if [ "${rows:-x}" = "$n200" ]; then ok no_row_lost_across_stop; else
  bad no_row_lost_across_stop "$n200 predictions answered 200, ${rows:-?} rows"; fi
dk logs "$C_API" >"$WORK/api2.log" 2>&1
if ! grep -qE 'already has a run|bootstrap run not queued' "$WORK/api2.log"; then
  ok restart_quiet_about_bootstrap_run
else
  grep -E 'already has a run|bootstrap' "$WORK/api2.log" | sed 's/^/  | /'
  bad restart_quiet_about_bootstrap_run
fi

# down + up: new containers, same volumes: the deployed model is still
# there (the bootstrap run exists, so nothing retrains it).
t=$(date +%s.%N)
dc down >"$WORK/down.log" 2>&1
if [ -z "$(dk ps -aq)" ]; then ok compose_down_removes_containers; else
  bad compose_down_removes_containers; fi
dc up -d >"$WORK/up2.log" 2>&1 || { sed 's/^/  | /' "$WORK/up2.log" | tail; }
if wait_healthy "$HEALTHY_S"; then ok healthy_after_down_up; else
  show_logs; bad healthy_after_down_up; fi
echo "time: down_up_to_healthy $(since "$t")"
code=000
for _ in $(seq 1 30); do
  code=$(predict "$WORK/p2.json")
  [ "$code" = 200 ] && break
  sleep 1
done
if [ "$code" = 200 ] && grep -q '"model_version":"1"' "$WORK/p2.json"; then
  ok model_kept_across_down_up
else
  echo "  HTTP $code $(head -c 300 "$WORK/p2.json" 2>/dev/null)"
  bad model_kept_across_down_up
fi
models=$(dk exec "$C_API" mlopsd models list 2>&1)
# NAME VERSIONS LATEST PRODUCTION ...: version 1 still in production
if [ "$(awk '$1 == "credit_score_classification" { print $4 }' <<<"$models")" = 1 ]; then
  ok registry_lists_deployed_version
else
  echo "$models" | sed 's/^/  | /'; bad registry_lists_deployed_version
fi
runs=$(sql "SELECT COUNT(*) FROM dag_run WHERE dag_id = 'credit_score_classification_ct'")
if [ "$runs" = 1 ]; then ok ct_ran_once_across_restarts; else
  bad ct_ran_once_across_restarts "dag_run rows: '$runs'"; fi

dc down -v >"$WORK/downv.log" 2>&1
STACK=0
left=$(dk ps -aq; dk volume ls -q; dk network ls -q --filter name="$PROJECT")
if [ -z "$left" ]; then ok compose_down_v_removes_all; else
  bad compose_down_v_removes_all "left: $(echo $left)"; fi

# ---- 3b. the scale-out stack --------------------------------------------------
# docker/docker-compose.scale.yml, unchanged: a scheduler and two `api`
# replicas behind haproxy.  The scheduler trains and deploys; the replicas
# follow production through MariaDB; haproxy spreads /predict over both,
# drops a replica killed with SIGKILL, and the restarted replica delivers
# what it had spooled: every 200 is one row.
CFILE=docker/docker-compose.scale.yml
C_SCHED=${PROJECT}_scheduler_1
C_DB=${PROJECT}_mariadb_1
C_API=${PROJECT}_api_1
C_API2=${PROJECT}_api_2
t=$(date +%s.%N)
STACK=1
if dc up -d --scale api=2 >"$WORK/sup.log" 2>&1; then ok scale_compose_up; else
  sed 's/^/  | /' "$WORK/sup.log" | tail -20; bad scale_compose_up; fi
healthy_all() {  # healthy_all BOUND_S CONTAINER...
  local b=$1 end; shift; end=$(($(date +%s) + b))
  local c st
  while [ "$(date +%s)" -lt "$end" ]; do
    st=ok
    for c in "$@"; do [ "$(health "$c")" = healthy ] || st=no; done
    [ "$st" = ok ] && return 0
    sleep 1
  done
  for c in "$@"; do echo "  $c: $(health "$c")"; done
  return 1
}
if healthy_all "$HEALTHY_S" "$C_DB" "$C_SCHED" "$C_API" "$C_API2"; then
  ok scale_all_healthy
else
  for c in "$C_SCHED" "$C_API"; do dk logs --tail 20 "$c" 2>&1 | sed "s/^/  $c | /"; done
  bad scale_all_healthy "not healthy within $HEALTHY_S s"
fi
echo "time: scale_up_to_healthy $(since "$t")"
role=$(curl -s -m 5 "$URL/readyz")
code=000
end=$(($(date +%s) + PREDICT_S))
while [ "$(date +%s)" -lt "$end" ]; do
  code=$(predict "$WORK/sp.json")
  [ "$code" = 200 ] && break
  sleep 2
done
if [ "$code" = 200 ]; then ok scale_predict_through_haproxy; else
  echo "  last answer: HTTP $code $(head -c 300 "$WORK/sp.json" 2>/dev/null)"
  echo "  /readyz through haproxy: $role"
  for c in "$C_SCHED" "$C_API"; do dk logs --tail 20 "$c" 2>&1 | sed "s/^/  $c | /"; done
  bad scale_predict_through_haproxy "no 200 within $PREDICT_S s"
fi
echo "time: scale_up_to_first_prediction $(since "$t")"
# The scheduler runs the DAGs and serves only /healthz, /readyz, /metrics.
h=$(dk exec "$C_SCHED" sh -c 'mlopsd health --timeout 3 >/dev/null 2>&1; echo $?' 2>/dev/null)
m=$(dk exec "$C_SCHED" sh -c 'mlopsd health --timeout 3 --url http://127.0.0.1:3000/metadata >/dev/null 2>&1; echo $?' 2>/dev/null)
if [ "$h" = 0 ] && [ "$m" = 1 ]; then ok scale_scheduler_role_routes; else
  bad scale_scheduler_role_routes "/healthz exit '$h', /metadata exit '$m' (want 0, 1)"; fi
# a stream of marked requests; one replica is killed in the middle
body=$WORK/scale.json
sed 's/"customer_id": 4096/"customer_id": "scale"/' sql/data/predict_example.json >"$body"
spredict() {
  curl -s -o /dev/null -w '%{http_code}\n' -m 10 -X POST "$URL/predict" \
    -H 'Content-Type: application/json' -d @"$body"
}
: >"$WORK/codes"
for i in $(seq 1 300); do
  spredict >>"$WORK/codes"
  [ "$i" = 100 ] && dk kill -s KILL "$C_API2" >/dev/null 2>&1
done
n200=$(grep -c '^200$' "$WORK/codes")
nother=$(grep -vc '^200$' "$WORK/codes")
say "scale stream: $n200 answered 200, $nother other (the killed replica's in-flight ones)"
after=$(tail -100 "$WORK/codes" | grep -c '^200$')
if [ "$after" = 100 ]; then ok scale_replica_killed_others_answer; else
  bad scale_replica_killed_others_answer "last 100 requests: $after answered 200"; fi
# The killed replica is started again (a SIGKILL'd container counts as
# stopped by hand, so its restart policy does not apply) and delivers what
# its buffer file held; haproxy takes it back once /readyz says ready.
dk start "$C_API2" >/dev/null 2>&1
if healthy_all "$HEALTHY_S" "$C_API2"; then ok scale_killed_replica_back; else
  bad scale_killed_replica_back; fi
rows=""
for _ in $(seq 1 60); do
  rows=$(sql "SELECT COUNT(*) FROM credit_predictions_api_log WHERE customer_id = 'scale'")
  [ "${rows:-0}" -ge "$n200" ] && break
  sleep 1
done
sources=$(sql "SELECT COUNT(DISTINCT log_source) FROM credit_predictions_api_log WHERE customer_id = 'scale'")
if [ "${rows:-x}" = "$n200" ]; then ok scale_every_200_logged_once; else
  bad scale_every_200_logged_once "$n200 answered 200, ${rows:-?} rows"; fi
if [ "${sources:-0}" -ge 2 ]; then ok scale_both_replicas_served; else
  bad scale_both_replicas_served "rows from ${sources:-?} replica(s)"; fi
dc down -v >"$WORK/sdownv.log" 2>&1
STACK=0
left=$(dk ps -aq; dk volume ls -q)
if [ -z "$left" ]; then ok scale_down_v_removes_all; else
  bad scale_down_v_removes_all "left: $(echo $left)"; fi

# ---- 4. stop everything, check the host ----------------------------------------
# While dockerd still runs: it was told to leave the host's network alone,
# so iptables and ip_forward are as before, and after `down -v` no bridge
# or veth of ours is left.  cleanup would put back anything changed; this
# checks that there was nothing to put back.
links >"$WORK/links.during"
ipt_dump iptables-save >"$WORK/ipt4.during"
if cmp -s "$WORK/links.before" "$WORK/links.during" &&
   cmp -s "$WORK/ipt4.before" "$WORK/ipt4.during" &&
   [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$FWD_BEFORE" ]; then
  ok host_network_untouched
else
  diff "$WORK/links.before" "$WORK/links.during" | sed 's/^/  | /'
  diff "$WORK/ipt4.before" "$WORK/ipt4.during" | sed 's/^/  | /'
  echo "  ip_forward $FWD_BEFORE -> $(cat /proc/sys/net/ipv4/ip_forward)"
  bad host_network_untouched
fi
pid=$DPID
cleanup
left=""
kill -0 "$pid" 2>/dev/null && left="dockerd $pid"
p=$(pgrep -f -- "$EXEC/"); [ -n "$p" ] && left="$left containerd/shims $(echo $p)"
m=$(awk -v w="$WORK" -v d="$DATA" '$2 ~ "^" w || $2 ~ "^" d { print $2 }' /proc/mounts)
[ -n "$m" ] && left="$left mounts: $(echo $m)"
if [ -z "$left" ]; then ok everything_stopped; else bad everything_stopped "$left"; fi
links >"$WORK/links.final"
ipt_dump iptables-save >"$WORK/ipt4.final"
if cmp -s "$WORK/links.before" "$WORK/links.final" &&
   cmp -s "$WORK/ipt4.before" "$WORK/ipt4.final" &&
   [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$FWD_BEFORE" ]; then
  ok host_network_as_before_after_stop
else bad host_network_as_before_after_stop; fi
echo "time: total $(now)"
echo "check: $pass passed, $fail failed"
[ "$fail" = 0 ]
