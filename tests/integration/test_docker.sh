#!/bin/bash
# test_docker.sh - the container recipe, checked without a Docker engine:
#  - docker/docker-compose.yml validates with docker-compose config
#  - every file or folder the Dockerfile COPYs exists in the repo
#  - the Dockerfile's build step (scripts/docker-build.sh) installs a
#    working binary with config and SQL under a prefix
#  - the start step (docker-entrypoint.sh) applies the schema against the
#    test MariaDB, queues the bootstrap run, then execs the daemon, which
#    answers /healthz (also through `mlopsd health`, the image's
#    HEALTHCHECK) and stops cleanly on SIGTERM; a second start (a container
#    restart) does not complain that the bootstrap run exists
# The stack itself, in a real Docker engine: tests/docker/run.sh
# (make test-docker).
set -u
cd "${MLOPSD_SRC:-$(dirname "$0")/../..}"
. tests/lib.sh  # scenario, ok, bad, tl_done: one count per scenario

# 1. compose file
scenario compose
envf=$(mktemp); cp docker/.env.example "$envf"
if cfgout=$(docker-compose -f docker/docker-compose.yml --env-file "$envf" config); then
  ok compose_config_valid
else
  bad compose_config_valid
fi
# The API (admin included) is published on loopback unless opened.
if grep -q -- '- 127.0.0.1:3000:3000' <<<"$cfgout"; then ok compose_port_loopback
else echo "$cfgout" | grep -A2 ports; bad compose_port_loopback; fi
sed -i 's/^MLOPSD_PUBLISH=.*/MLOPSD_PUBLISH=0.0.0.0:3001/' "$envf"
if docker-compose -f docker/docker-compose.yml --env-file "$envf" config |
   grep -q -- '- 0.0.0.0:3001:3000'; then ok compose_port_opened_by_env
else bad compose_port_opened_by_env; fi
# The scale-out file: valid, haproxy on loopback, roles set.
cp docker/.env.example "$envf"
if scfg=$(docker-compose -f docker/docker-compose.scale.yml --env-file "$envf" config) &&
   grep -q -- '- 127.0.0.1:3000:3000' <<<"$scfg" &&
   grep -q 'MLOPSD_SERVER_ROLE: scheduler' <<<"$scfg" &&
   grep -q 'MLOPSD_SERVER_ROLE: api' <<<"$scfg"; then
  ok compose_scale_config_valid
else
  bad compose_scale_config_valid
fi
rm -f "$envf"
scenario dockerignore
if [ -f .dockerignore ] && grep -qx '.git' .dockerignore &&
   grep -qx 'build/' .dockerignore && grep -qx 'var/' .dockerignore; then
  ok dockerignore_keeps_out_git_build_var
else bad dockerignore_keeps_out_git_build_var; fi
# The HEALTHCHECK needs nothing outside the image: no curl binary.
scenario healthcheck
if grep -A1 '^HEALTHCHECK' docker/Dockerfile | grep -q '"health"' &&
   ! grep -A1 '^HEALTHCHECK' docker/Dockerfile | grep -q curl; then
  ok healthcheck_is_mlopsd_health
else bad healthcheck_is_mlopsd_health; fi

# 2. COPY sources exist
scenario dockerfile_copy_sources
missing=""
while read -r src; do
  [ -e "$src" ] || missing="$missing $src"
done < <(awk '/^COPY/ && !/--from=/ { for (i = 2; i < NF; i++) print $i }' docker/Dockerfile)
if [ -z "$missing" ]; then ok dockerfile_copy_sources_exist; else
  echo "  missing:$missing"; bad dockerfile_copy_sources_exist; fi

# 3. build step
scenario docker_build_step
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

# 4. start step: entrypoint inits the schema, queues the bootstrap run and
# execs the daemon; started twice, as a container restart does.
if [ -n "${MLOPSD_DATABASE_HOST:-}" ] && [ -x "$prefix/bin/mlopsd" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  work=$(mktemp -d)
  dbname=it_docker_$$
  # A one-task DAG stands in for the CT DAG: the bootstrap run is queued
  # and runs in a blink, so SIGTERM does not wait for a training.
  mkdir -p "$work/dags"
  printf '%s\n' 'dag_id: it_boot' 'schedule: null' 'tasks:' \
    '  - {id: t, type: shell, command: "true"}' >"$work/dags/it_boot.yaml"
  for start in 1 2; do
    scenario "entrypoint_start$start"
    (
      cd "$prefix/share/mlopsd" &&
      PATH="$prefix/bin:$PATH" MLOPSD_DATABASE_NAME=$dbname \
      MLOPSD_CONFIG="$prefix/share/mlopsd/config/mlopsd.yaml" \
      MLOPSD_SQL_DIR="$prefix/share/mlopsd/sql/migrations" \
      MLOPSD_SERVER_LISTEN="127.0.0.1:$port" \
      MLOPSD_MODELS_REGISTRY_DIR="$work/registry" \
      MLOPSD_SERVER_SPOOL_DIR="$work/spool" \
      MLOPSD_SCHEDULER_DAGS_DIR="$work/dags" \
      MLOPSD_BOOTSTRAP_DAG=it_boot MLOPSD_BOOTSTRAP_DATE=2025-09-01 \
      exec "$prefix/bin/docker-entrypoint.sh" serve
    ) >"$work/out$start.log" 2>&1 &
    pid=$!
    up=0
    for _ in $(seq 1 150); do
      if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if [ "$up" = 1 ]; then ok "entrypoint_serves_healthz_start$start"; else
      sed 's/^/  | /' "$work/out$start.log" | tail -20; bad "entrypoint_serves_healthz_start$start"; fi
    # the image's HEALTHCHECK: server.listen from the environment
    if MLOPSD_SERVER_LISTEN="0.0.0.0:$port" \
       "$prefix/bin/mlopsd" -c "$prefix/share/mlopsd/config/mlopsd.yaml" health >/dev/null; then
      ok "mlopsd_health_ok_start$start"; else bad "mlopsd_health_ok_start$start"; fi
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; bad "entrypoint_sigterm_stops_start$start";
    else wait "$pid"; rc=$?; if [ "$rc" = 0 ]; then ok "entrypoint_sigterm_stops_start$start"; else
      echo "  exit code $rc"; bad "entrypoint_sigterm_stops_start$start"; fi; fi
  done
  scenario entrypoint_bootstrap_run
  if grep -q '^queued run it_boot__' "$work/out1.log"; then
    ok entrypoint_queues_bootstrap_run
  else sed 's/^/  | /' "$work/out1.log" | head -20; bad entrypoint_queues_bootstrap_run; fi
  if ! grep -qE 'already has a run|bootstrap run not queued' "$work/out2.log"; then
    ok entrypoint_restart_quiet
  else grep -E 'already|bootstrap' "$work/out2.log"; bad entrypoint_restart_quiet; fi
  # a stopped daemon is unhealthy: exit 1 and the reason on stderr
  scenario mlopsd_health_cli
  herr=$(MLOPSD_SERVER_LISTEN="0.0.0.0:$port" \
    "$prefix/bin/mlopsd" -c "$prefix/share/mlopsd/config/mlopsd.yaml" health 2>&1 >/dev/null)
  hrc=$?
  if [ "$hrc" = 1 ] && grep -q "health: GET http://127.0.0.1:$port/healthz" <<<"$herr"; then
    ok mlopsd_health_fails_when_down
  else echo "  rc=$hrc: $herr"; bad mlopsd_health_fails_when_down; fi
  "$prefix/bin/mlopsd" health --timeout 0 >/dev/null 2>&1
  if [ $? = 2 ]; then ok mlopsd_health_bad_usage; else bad mlopsd_health_bad_usage; fi
  mariadb -h "$MLOPSD_DATABASE_HOST" -P "${MLOPSD_DATABASE_PORT:-3306}" \
    -u "${MLOPSD_DATABASE_USER:-root}" ${MLOPSD_DATABASE_PASSWORD:+-p"$MLOPSD_DATABASE_PASSWORD"} \
    -e "DROP DATABASE IF EXISTS $dbname" >/dev/null 2>&1
  rm -rf "$work"
fi
rm -rf "$prefix"
tl_done
