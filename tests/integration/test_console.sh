#!/bin/bash
# test_console.sh - the web console in headless Chromium against a real
# daemon and MariaDB (tests/browser/console.test.js does the clicking).
#
# Needs Debian's chromium and node and playwright-core from npm (pinned in
# tests/browser/package-lock.json): scripts/install-deps.sh installs all
# three (`make test` runs it).  Where one is missing the test prints
# "check: skip" with the reason; tests/run.sh lists it, and counts it as a
# failure under CI=true.  Screenshots of each page go to
# BUILD/artifacts/ (build/artifacts for the default build).
#
# Run by tests/run.sh (MLOPSD_SRC, MLOPSD_BIN and MLOPSD_DATABASE_* set).
set -u
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
BUILD_DIR=$(dirname "$BIN")
FIXTURE=$BUILD_DIR/tests/integration/test_admin
ARTIFACTS=$BUILD_DIR/artifacts
CHROMIUM=/usr/bin/chromium
TOKEN="console-test-$$-token"
DB=it_console
cd "$SRC" || exit 1

skip() {
  echo "check: skip test_console: $1"
  echo "check: 0 passed, 0 failed, 1 skipped"
  exit 0
}
fail() {
  echo "not ok $1"
  echo "check: 0 passed, 1 failed"
  exit 1
}

need="(scripts/install-deps.sh installs it)"
[ -x "$CHROMIUM" ] || skip "Chromium ($CHROMIUM) is not installed $need"
command -v node >/dev/null 2>&1 || skip "node is not installed $need"
[ -f tests/browser/node_modules/playwright-core/package.json ] ||
  skip "playwright-core is not in tests/browser/node_modules $need"
[ -x "$FIXTURE" ] || fail "fixture_builder_missing ($FIXTURE: make tests-build)"
[ -n "${MLOPSD_DATABASE_PORT:-}" ] || fail "no_test_database (run through tests/run.sh)"

TMP=$(mktemp -d /tmp/mlopsd-it-console.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID" 2>/dev/null
  fi
  if [ -z "${MLOPSD_KEEP_TMP:-}" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$FIXTURE" --fixture "$TMP" "$PORT" "$DB" >"$TMP/fixture.log" 2>&1 ||
  { cat "$TMP/fixture.log"; fail "fixture"; }

(cd "$TMP" && exec env MLOPSD_DATABASE_NAME=$DB MLOPSD_ADMIN_TOKEN="$TOKEN" \
  MLOPSD_AUTH_CONSOLE_READ_OPEN=true MLOPSD_ADMIN_SAMPLE_MS=1000 \
  "$BIN" -c "$TMP/mlopsd.yaml" serve >>"$TMP/daemon.log" 2>&1) &
PID=$!
up=0
for _ in $(seq 1 150); do
  if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
[ "$up" = 1 ] || { tail -20 "$TMP/daemon.log"; fail "daemon_start"; }

mkdir -p "$ARTIFACTS"
MLOPSD_DATABASE_NAME=$DB NODE_PATH="$SRC/tests/browser/node_modules" \
  node tests/browser/console.test.js "http://127.0.0.1:$PORT" "$TOKEN" \
  "$ARTIFACTS" "$TMP/registry"
rc=$?

kill -TERM "$PID" 2>/dev/null
st=0
wait "$PID" || st=$?
PID=""
if [ "$st" != 0 ]; then
  echo "not ok daemon_clean_stop (exit status $st)"
  tail -20 "$TMP/daemon.log"
  echo "check: 0 passed, 1 failed"
  exit 1
fi
echo "screenshots: $ARTIFACTS/console-*.png"
exit $rc
