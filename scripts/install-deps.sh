#!/bin/sh
# install-deps.sh - install the Debian packages mlopsd needs to build, test
# and run.  Does nothing (and needs no network) when every package is there.
#
#   scripts/install-deps.sh            build + test + runtime packages
#   scripts/install-deps.sh --runtime  only what the daemon needs to run
#   scripts/install-deps.sh --docker   only what `make test-docker` needs
#                                      (a Docker engine, compose v1, debootstrap)
#   scripts/install-deps.sh --browser  only what the web console's browser
#                                      test needs (Chromium, node, npm and
#                                      tests/browser's npm packages)
#
# Used by `make deps`, `make test`, `make demo` and docker/Dockerfile, so the
# list below is the one place that names our dependencies.
set -eu

BUILD_PKGS="build-essential pkg-config libmariadb-dev libcurl4-openssl-dev
libcjson-dev libyaml-dev libmicrohttpd-dev libxgboost-dev
zlib1g-dev"
# zlib1g-dev: archives of dropped prediction log partitions (src/logpart.c)
RUNTIME_PKGS="libmariadb3 libcurl4 libcjson1 libyaml-0-2 libmicrohttpd12
libxgboost0 tzdata ca-certificates zlib1g"
TEST_PKGS="mariadb-server mariadb-client python3-xgboost python3-numpy curl
wrk docker-compose clang libclang-rt-14-dev valgrind strace"
# strace: test_fault_kill.sh kills the daemon at exact system calls
# (strace -e inject=...:signal=KILL).
# prometheus: promtool, for test_conventions.sh (`promtool check metrics`
# on a live daemon's /metrics); its service is not used.
TEST_PKGS="$TEST_PKGS prometheus"
# python3-xgboost at run time too: `train` with `workers: N` starts its
# rabit tracker (python3 -m xgboost.tracker; 1.7 has no C tracker).
RUNTIME_PKGS="$RUNTIME_PKGS python3-xgboost"
# tests/s3.sh: a single-node OpenStack Swift with its S3 API (s3api,
# tempauth, memcached) for the registry's S3 backend tests (issue 15).
TEST_PKGS="$TEST_PKGS swift-proxy swift-object swift-container swift-account"
TEST_PKGS="$TEST_PKGS python3-swift memcached"
# python3-jsonschema, python3-yaml: test_airflow_spec.sh validates the
# admin API's answers against Airflow's OpenAPI spec (shared/specs).
TEST_PKGS="$TEST_PKGS python3-jsonschema python3-yaml"
# python3-locust: bench/locust.sh runs the course's load client (its
# locust file) headless against a daemon (issue 18).
TEST_PKGS="$TEST_PKGS python3-locust"
# python3-scipy: test_stats and test_calib check the gate's statistics and
# the calibration against scipy (issue 13).
TEST_PKGS="$TEST_PKGS python3-scipy"
# tests/galera.sh, tests/cluster/ (make test-cluster, issue 14): a
# three-node Galera cluster (rsync state transfer) behind haproxy.
TEST_PKGS="$TEST_PKGS galera-4 rsync haproxy"
# mariadb-plugin-provider-lz4: the MariaDB that tests, benches and `make
# demo` start (tests/mysqld_lib.sh) page-compresses the prediction log
# with LZ4 instead of zlib: about 11 us less MariaDB CPU per logged row
# for about twice the disk (docs/operations.md "Disk").
TEST_PKGS="$TEST_PKGS mariadb-plugin-provider-lz4"
# tests/integration/test_console.sh (the web console in headless Chromium,
# driven by playwright-core from npm): part of the default set, so that the
# test never skips for want of a package (a skip fails under CI=true).
BROWSER_PKGS="chromium nodejs"
# npm: a package of its own in Debian, inside nodejs in NodeSource's builds
# (where Debian's npm would conflict): asked for only when it is missing.
command -v npm >/dev/null 2>&1 || BROWSER_PKGS="$BROWSER_PKGS npm"

# tests/docker/run.sh (make test-docker): a private dockerd, compose v1 and
# debootstrap for the locally built base image; not in the default set.
DOCKER_PKGS="docker.io debootstrap docker-compose"

case "${1:-}" in
  --runtime) want="$RUNTIME_PKGS" ;;
  --build)   want="$BUILD_PKGS $RUNTIME_PKGS" ;;
  --browser) want="$BROWSER_PKGS" ;;
  --docker)  want="$DOCKER_PKGS" ;;
  ""|--all)  want="$BUILD_PKGS $RUNTIME_PKGS $TEST_PKGS $BROWSER_PKGS" ;;
  -h|--help)
    echo "usage: scripts/install-deps.sh [--runtime|--build|--all|--browser|--docker]"; exit 0 ;;
  *) echo "install-deps.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

# tests/browser's npm packages (playwright-core, pinned in its
# package-lock.json) for the browser test: npm ci from npm's cache when it
# has them (--prefer-offline), and a clear failure when neither the cache
# nor the registry can supply them.
browser_npm() {
  [ -f "$root/tests/browser/node_modules/playwright-core/package.json" ] && return 0
  echo "install-deps.sh: npm ci in tests/browser (playwright-core)"
  if ! (cd "$root/tests/browser" &&
        npm ci --prefer-offline --no-audit --no-fund >/dev/null); then
    echo "install-deps.sh: npm ci in tests/browser failed: the browser test" \
      "(tests/integration/test_console.sh) cannot run" >&2
    return 1
  fi
}
root=$(cd "$(dirname "$0")/.." && pwd)
case "$want" in *chromium*) npm_too=1 ;; *) npm_too=0 ;; esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  [ "$npm_too" = 0 ] || browser_npm
  exit
fi

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps.sh: missing packages:$missing" >&2
    echo "install-deps.sh: run as root (or install sudo) to install them" >&2
    exit 1
  fi
else
  SUDO=""
fi

echo "install-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# docker.io would start a system dockerd (on /var/lib/docker) on install;
# the container test runs its own: forbid service starts while installing.
case "$missing" in *docker.io*) if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT; fi ;; esac
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The Debian mariadb-server package starts a system server on install in
# some environments; mlopsd's tests and demo use their own private server.
[ "$npm_too" = 0 ] || browser_npm
echo "install-deps.sh: done"
