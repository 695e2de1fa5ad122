#!/bin/bash
# test_conventions.sh - the ecosystem conventions of issue 18 on a live
# daemon (real MariaDB, a trained and promoted model, real HTTP):
#
#   - `promtool check metrics` (Debian's prometheus package) exits 0 on
#     the daemon's /metrics after predictions were served and logged:
#     base units (_seconds), one mlopsd_ prefix, no old names left.
#   - BentoML conventions on /predict: GET /livez; a body without
#     Content-Type is taken as JSON (a declared other type stays 415);
#     lax numbers ("age": "30" served as 30, "3O" refused); 400 bodies
#     carry detail: [{type, loc, msg, input}] beside "fields".
#
# Needs: tests/run.sh's environment (MLOPSD_DATABASE_*), promtool (skip
# when absent: scripts/install-deps.sh installs prometheus).
. "$(dirname "$0")/lib_fault.sh"
lf_init conventions
lf_fast_spec
lf_config
if lf_db_prepare && lf_train_promote 1; then ok setup; else
  bad setup; lf_done; exit 1
fi
lf_start
lf_wait_ready 30 && ok daemon_ready || { tail -30 "$T/daemon.log"; bad daemon_ready; }
URL=http://127.0.0.1:$PORT

section "metrics"
for i in 1 2 3; do lf_predict $((1000 + i)) >/dev/null; done
curl -s -o /dev/null "$URL/nope"           # an unmatched route's series
sleep 1.5                                  # at least one log flush
curl -sf "$URL/metrics" >"$T/metrics" && ok metrics_200 || bad metrics_200
if command -v promtool >/dev/null; then
  if promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1; then
    ok promtool_check_metrics
  else
    sed 's/^/  | /' "$T/promtool.out" | head -20; bad promtool_check_metrics
  fi
else
  skip promtool_check_metrics "promtool not installed (Debian package prometheus)"
fi
# every family carries the one prefix; the renamed ones are there
awk '/^# TYPE / && $3 !~ /^mlopsd_/ {print; n++} END {exit n > 0}' \
  "$T/metrics" && ok one_prefix || bad one_prefix "families without mlopsd_"
for n in mlopsd_http_requests_total mlopsd_http_request_duration_seconds \
         mlopsd_http_connections mlopsd_http_requests_in_flight \
         mlopsd_model_load_seconds mlopsd_plog_flush_duration_seconds \
         mlopsd_plog_pace_seconds_total; do
  has "family_$n" "$T/metrics" "# TYPE $n "
done
hasnt no_ms_unit "$T/metrics" "_ms"
# durations are in seconds: a /predict answered on loopback is far below
# one second, so the sum over its requests is below 3 s for 3 requests
sum=$(awk '/^mlopsd_http_request_duration_seconds_sum\{route="\/predict"/ {s += $2} END {print s + 0}' "$T/metrics")
awk -v s="$sum" 'BEGIN {exit !(s > 0 && s < 3)}' && ok duration_in_seconds ||
  bad duration_in_seconds "sum $sum"

section "bentoml conventions"
code=$(curl -s -o "$T/livez" -w '%{http_code}' "$URL/livez")
eq livez_200 "$code" 200
has livez_body "$T/livez" '"status":"ok"'
# python's requests.post(url, data=...) sends no Content-Type
post_raw() {  # post_raw OUT BODY [CURL ARGS...]: prints the status
  local out=$1 body=$2; shift 2
  printf '%s' "$body" | curl -s -o "$out" -w '%{http_code}' -X POST \
    -H 'Content-Type:' "$@" --data-binary @- "$URL/predict"
}
B=$(lf_body 2001)
eq no_ctype_200 "$(post_raw "$T/noct" "$B")" 200
has no_ctype_answer "$T/noct" '"customer_id":2001'
eq text_plain_415 "$(post_raw "$T/tp" "$B" -H 'Content-Type: text/plain')" 415
# lax numbers: the same answer as the number itself
eq lax_ref_200 "$(post_raw "$T/lax0" "$B" -H 'Content-Type: application/json')" 200
Bs=$(printf '%s' "$B" | sed 's/"age": 18,/"age": "18",/; s/"annual_income": 30625.94,/"annual_income": "30625.94",/')
case $Bs in *'"age": "18"'*'"annual_income": "30625.94"'*) ok lax_body_made ;; *) bad lax_body_made ;; esac
eq lax_string_200 "$(post_raw "$T/lax1" "$Bs")" 200
python3 - "$T/lax0" "$T/lax1" <<'PY' && ok lax_same_answer || bad lax_same_answer
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert a["predict"] == b["predict"] and abs(a["confidence"] - b["confidence"]) < 1e-9, (a, b)
PY
# not a clean number: refused, with fields and the detail list
Bb=$(printf '%s' "$B" | sed 's/"age": 18,/"age": " 18",/; s/"num_of_loan": 2,/"num_of_loan": "2x",/; s/"occupation": "Lawyer",/"occupation": "Lawyer", "colour": "red",/')
eq lax_bad_400 "$(post_raw "$T/bad" "$Bb")" 400
python3 - "$T/bad" <<'PY' && ok detail_list || { sed 's/^/  | /' "$T/bad"; bad detail_list; }
import json, sys
b = json.load(open(sys.argv[1]))
f, d = b["fields"], b["detail"]
assert set(f) == {"age", "num_of_loan", "colour"}, f
assert isinstance(d, list) and len(d) == 3, d
by = {x["loc"][-1]: x for x in d}
for x in d:
    assert set(x) == {"type", "loc", "msg", "input"}, x
    assert x["loc"][:2] == ["body", "data"], x
    assert x["msg"] == f[x["loc"][-1]], x
assert by["age"]["input"] == " 18" and by["num_of_loan"]["input"] == "2x", by
assert by["colour"]["type"] == "extra_forbidden" and by["colour"]["input"] == "red", by
PY
# a batch: the index is part of loc; a missing field has input null
Bm=$(printf '{"data": [%s, %s]}' "$(printf '%s' "$B" | sed 's/^{"data": //; s/}$//')" \
  "$(printf '%s' "$B" | sed 's/^{"data": //; s/}$//; s/"age": 18, //')")
eq batch_missing_400 "$(post_raw "$T/bm" "$Bm")" 400
python3 - "$T/bm" <<'PY' && ok detail_batch_loc || { sed 's/^/  | /' "$T/bm"; bad detail_batch_loc; }
import json, sys
b = json.load(open(sys.argv[1]))
assert b["detail"] == [{"type": "missing", "loc": ["body", "data", 1, "age"],
                        "msg": b["fields"]["data[1].age"], "input": None}], b
PY

lf_term
lf_done
