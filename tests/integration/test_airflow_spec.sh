#!/bin/bash
# test_airflow_spec.sh - every answer of mlopsd's Airflow-shaped admin API
# (/api/v2) validated against Apache Airflow's published OpenAPI spec
# ($MLOPSD_SHARED/specs/airflow-v2-rest-api-generated.yaml, Airflow 3.1,
# copied unchanged) with python3-jsonschema, $refs resolved, formats
# (date-time, uuid) checked; plus Airflow's query parameters, status codes
# and trigger semantics (tests/integration/airflow_spec.py does the
# requests and prints the routes it checked).
#
# Set-up: the fixture of test_admin (`test_admin --fixture DIR PORT DB`:
# DAG files, runs in every state, task instances, log lines, a registry)
# and `mlopsd serve` on it with an admin token, against the MariaDB of
# tests/run.sh.
#
# Also GET /openapi.json (tests/integration/openapi_check.py): valid
# OpenAPI 3.1, /predict's body generated from the model spec, every
# documented route answers (not 404).
#
# Needs: python3-jsonschema and python3-yaml (scripts/install-deps.sh).
. "$(dirname "$0")/../lib.sh"
tl_init airflow_spec
FIXTURE=$(dirname "$BIN")/tests/integration/test_admin
SPEC=${MLOPSD_SHARED:-$SRC/../shared}/specs/airflow-v2-rest-api-generated.yaml
TOKEN="spec-test-$$-token"
DB=it_airflow_spec

scenario setup
# Debian's python (python3-jsonschema) first: a python3 earlier in PATH
# may lack the packages install-deps.sh installs
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if ! $PY -c 'import jsonschema, yaml' 2>/dev/null; then
  skip airflow_spec "python3-jsonschema / python3-yaml not installed (scripts/install-deps.sh)"
  tl_done; exit 0
fi
if [ ! -f "$SPEC" ]; then
  skip airflow_spec "the Airflow spec is not at $SPEC (shared/specs)"
  tl_done; exit 0
fi
[ -x "$FIXTURE" ] || { bad fixture_builder "$FIXTURE missing: make tests-build"; tl_done; exit 1; }
PORT=$(free_port)
if "$FIXTURE" --fixture "$T" "$PORT" "$DB" >"$T/fixture.log" 2>&1; then ok fixture; else
  sed 's/^/  | /' "$T/fixture.log" | tail -20; bad fixture; tl_done; exit 1
fi
(cd "$T" && exec env MLOPSD_DATABASE_NAME=$DB MLOPSD_ADMIN_TOKEN="$TOKEN" \
  "$BIN" -c "$T/mlopsd.yaml" serve >>"$T/daemon.log" 2>&1) &
daemon_pid=$!
if wait_http "http://127.0.0.1:$PORT/healthz" 30; then ok daemon_up; else
  tail -20 "$T/daemon.log"; bad daemon_up; tl_done; exit 1
fi
tl_close_scenario

# the python script prints its scenarios and "spec: N passed, N failed"
MLOPSD_DATABASE_NAME=$DB $PY tests/integration/airflow_spec.py \
  "http://127.0.0.1:$PORT" "$TOKEN" "$SPEC" | tee "$T/spec.out"
rc=${PIPESTATUS[0]}
p=$(sed -nE 's/^spec: ([0-9]+) passed, ([0-9]+) failed.*/\1/p' "$T/spec.out" | tail -1)
f=$(sed -nE 's/^spec: ([0-9]+) passed, ([0-9]+) failed.*/\2/p' "$T/spec.out" | tail -1)
pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
[ "$rc" != 0 ] && [ "${f:-0}" = 0 ] && fail=$((fail + 1))

# GET /openapi.json on the same daemon (openapi_check.py): valid OpenAPI
# 3.1, /predict's body from the model spec, every documented route
# answers; openapi-spec-validator is used where a python has it
OPY=$PY
python3 -c 'import openapi_spec_validator, jsonschema, yaml' 2>/dev/null && OPY=python3
scenario openapi_json
if $OPY tests/integration/openapi_check.py "http://127.0.0.1:$PORT" "$TOKEN" \
    "$SRC/config/models/credit_score_classification.yaml" >"$T/openapi.out" 2>&1; then
  ok openapi_check
else
  grep -E "^not ok|Traceback|Error" "$T/openapi.out" | head -20; bad openapi_check
fi
grep -E "^(ok|not ok|note|openapi:)" "$T/openapi.out" | grep -vE "^ok .* answers$" | head -60
sed -n '/^routes documented/,$p' "$T/openapi.out"
tl_close_scenario

kill -TERM "$daemon_pid" 2>/dev/null
st=0; wait "$daemon_pid" || st=$?
daemon_pid=""
scenario daemon_stop
eq daemon_clean_stop "$st" 0
[ "$st" = 0 ] || tail -20 "$T/daemon.log"
tl_done
