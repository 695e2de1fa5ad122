#!/bin/bash
# test_docker.sh - the container recipe, checked without a Docker engine:
#  - docker/docker-compose.yml validates with docker-compose config
#  - every file or folder the Dockerfile COPYs exists in the repo
#  - the Dockerfile's build step (scripts/docker-build.sh) installs a
#    working binary with config and SQL under a prefix
#  - the start step (docker-entrypoint.sh) applies the schema against the
#    test MariaDB, then execs the daemon, which answers /healthz and stops
#    cleanly on SIGTERM
set -u
cd "${MLOPSD_SRC:-$(dirname "$0")/../..}"
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok $1"; }
bad()  { fail=$((fail + 1)); echo "not ok $1"; }

# 1. compose file
envf=$(mktemp); cp docker/.env.example "$envf"
if docker-compose -f docker/docker-compose.yml --env-file "$envf" config -q; then
  ok compose_config_valid
else
  bad compose_config_valid
fi
rm -f "$envf"

# 2. COPY sources exist
missing=""
while read -r src; do
  [ -e "$src" ] || missing="$missing $src"
done < <(awk '/^COPY/ && !/--from=/ { for (i = 2; i < NF; i++) print $i }' docker/Dockerfile)
if [ -z "$missing" ]; then ok dockerfile_copy_sources_exist; else
  echo "  missing:$missing"; bad dockerfile_copy_sources_exist; fi

# 3. build step
prefix=$(mktemp -d)
if BUILD=build/docker-test scripts/docker-build.sh "$prefix" >/dev/null &&
   "$prefix/bin/mlopsd" --version >/dev/null &&
   [ -f "$prefix/share/mlopsd/config/mlopsd.yaml" ] &&
   [ -d "$prefix/share/mlopsd/sql/migrations" ] &&
   [ -x "$prefix/bin/docker-entrypoint.sh" ]; then
  ok docker_build_step
else
  bad docker_build_step
fi

# 4. start step: entrypoint inits the schema and execs the daemon
if [ -n "${MLOPSD_DATABASE_HOST:-}" ] && [ -x "$prefix/bin/mlopsd" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  work=$(mktemp -d)
  (
    cd "$prefix/share/mlopsd" &&
    PATH="$prefix/bin:$PATH" MLOPSD_DATABASE_NAME=it_docker \
    MLOPSD_CONFIG="$prefix/share/mlopsd/config/mlopsd.yaml" \
    MLOPSD_SQL_DIR="$prefix/share/mlopsd/sql/migrations" \
    MLOPSD_SERVER_LISTEN="127.0.0.1:$port" \
    MLOPSD_MODELS_REGISTRY_DIR="$work/registry" \
    MLOPSD_SERVER_SPOOL_DIR="$work/spool" \
    exec "$prefix/bin/docker-entrypoint.sh" serve
  ) >"$work/out.log" 2>&1 &
  pid=$!
  up=0
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$up" = 1 ]; then ok entrypoint_serves_healthz; else
    sed 's/^/  | /' "$work/out.log" | tail -20; bad entrypoint_serves_healthz; fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; bad entrypoint_sigterm_stops;
  else wait "$pid"; rc=$?; if [ "$rc" = 0 ]; then ok entrypoint_sigterm_stops; else
    echo "  exit code $rc"; bad entrypoint_sigterm_stops; fi; fi
  rm -rf "$work"
fi
rm -rf "$prefix"
echo "check: $pass passed, $fail failed"
[ "$fail" = 0 ]
