#!/bin/bash
# test_security.sh - the security review of issue 9 as a test, against the
# real daemon ($MLOPSD_BIN) and the test MariaDB (database it_security,
# user it_sec_user with a distinctive password, a distinctive admin token,
# logging at debug level):
#
#   auth        admin API without / with a wrong token -> 401, changes
#               refused; the token comparison is constant-time (source)
#   SQL         injection attempts through every input that reaches SQL:
#               /predict fields (customer_id with quotes), conf through
#               `dags trigger --conf` and the admin API (bound, stored as
#               data, also as one shell word), DAG and model names and run
#               ids in the CLI and in admin URLs and query strings, unsafe
#               params and conf placement in templates (refused at load);
#               every table intact afterwards
#   paths       traversal through model names and versions in the CLI,
#               the admin API and /models/NAME/predict ("../", "%2e%2e%2f",
#               absolute paths, NUL, double encoding): never a 200, never
#               a file outside the registry (a decoy registry next to it)
#   HTTP        2 MiB body -> 413 (Content-Length and chunked), oversized
#               headers, a slow client and an idle one dropped after
#               idle_timeout, many connections over max_connections
#               reaped and the daemon serving afterwards
#   http tasks  CR/LF in a templated header value refused before anything
#               is sent (a recording sink proves it), bad header names
#               and literal CR/LF refused at load, conf percent-encoded in
#               URLs
#   secrets     DB password, admin token, a hook token and a URL password
#               never in the daemon log, task_log, registry files or API
#               answers, after failures (wrong database, wrong tokens,
#               failing http tasks, a task dumping its environment)
#   files       the Dockerfile's runtime stage runs as a non-root uid;
#               registry, spool and pid file not world-writable (also under
#               umask 000 where nothing world-writable is reachable)
#
# Runs in about 40 s.  Output: "ok NAME" / "not ok NAME", then
# "check: N passed, N failed".
. "$(dirname "$0")/lib_fault.sh"
lf_init security

DBPW="DbPw-S3cret-$$-q7Zx"
TOK="AdmTok-S3cret-$$-w9Yv"
HOOK="HookTok-S3cret-$$-p2Lm"
URLPW="UrlPw-S3cret-$$-k4Jn"
SECRETS=("$DBPW" "$TOK" "$HOOK" "$URLPW")
ROOT_USER=$MLOPSD_DATABASE_USER
ROOT_PW=${MLOPSD_DATABASE_PASSWORD:-}
LF_CLEANUP_EXTRA='kill $SINK_PID 2>/dev/null;
  MYSQL_PWD=$ROOT_PW mariadb --protocol=TCP -h $MLOPSD_DATABASE_HOST \
    -P $MLOPSD_DATABASE_PORT -u $ROOT_USER \
    -e "DROP USER IF EXISTS it_sec_user@\"%\"" 2>/dev/null'
U=""
api() {  # api METHOD PATH [BODY] [AUTH-HEADER]: body to $T/api.out, prints code
  local auth=${4-"Authorization: Bearer $TOK"}
  curl -s -o "$T/api.out" -w '%{http_code}' -X "$1" ${auth:+-H "$auth"} \
    -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$U$2"
  cat "$T/api.out" >>"$T/answers.all"
}
is4xx() { case "$1" in 4??) return 0 ;; *) return 1 ;; esac; }
jsonq() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# ---- setup: data, two versions, a user with a distinctive password
section "setup: data, two versions, a user with a distinctive password"
lf_fast_spec
LF_IDLE_TIMEOUT=2 LF_MAX_CONNECTIONS=40 LF_LOG_LEVEL=debug lf_config
if lf_db_prepare && lf_train_promote 2 &&
   sql -e "CREATE USER IF NOT EXISTS 'it_sec_user'@'%' IDENTIFIED BY '$DBPW';
           GRANT ALL PRIVILEGES ON $DB.* TO 'it_sec_user'@'%'"; then
  ok setup
else
  bad setup; lf_done; exit 1
fi
export MLOPSD_DATABASE_USER=it_sec_user MLOPSD_DATABASE_PASSWORD=$DBPW
TABLES_BEFORE=$(sql "$DB" -e "SHOW TABLES" | sort | tr '\n' ' ')
COUNTS_SQL="SELECT (SELECT COUNT(*) FROM customer_info),
  (SELECT COUNT(*) FROM credit_score), (SELECT COUNT(*) FROM
  credit_score_features), (SELECT COUNT(*) FROM credit_score_features_target),
  (SELECT COUNT(*) FROM deployment)"
COUNTS_BEFORE=$(sql "$DB" -e "$COUNTS_SQL")

# the recording HTTP sink for http tasks
python3 "$SRC/tests/integration/lib_sink.py" "$T/sink.port" "$T/sink.log" &
SINK_PID=$!
for _ in $(seq 1 50); do [ -s "$T/sink.port" ] && break; sleep 0.1; done
SINK=$(cat "$T/sink.port")
touch "$T/sink.log"

# DAGs: conf into SQL and a shell word; http tasks with templated headers
# and URLs; a task that dumps its environment
cat >"$T/dags/sec_conf.yaml" <<'EOF'
dag_id: sec_conf
schedule: null
start_date: 2025-01-01
tasks:
  - id: store
    type: sql
    sql: |
      CREATE TABLE IF NOT EXISTS sec_notes (id INT AUTO_INCREMENT PRIMARY KEY,
        run_id VARCHAR(250), note TEXT);
      INSERT INTO sec_notes (run_id, note) VALUES ('{{ run_id }}', {{ conf.note }});
  - id: word
    type: shell
    depends_on: [store]
    command: printf '%s' {{ conf.note }} > note_{{ ds_nodash }}.txt
EOF
cat >"$T/dags/sec_http.yaml" <<EOF
dag_id: sec_http
schedule: null
start_date: 2025-01-01
tasks:
  - id: hook
    type: http
    method: POST
    url: "http://127.0.0.1:$SINK/hook?q={{ conf.q }}"
    headers:
      X-Note: "{{ conf.note }}"
      Authorization: "Bearer {{ conf.tok }}"
    body: '{"ds": "{{ ds }}"}'
EOF
cat >"$T/dags/sec_secrets.yaml" <<EOF
dag_id: sec_secrets
schedule: null
start_date: 2025-01-01
default_args: {trigger_rule: all_done}
tasks:
  - id: dump_env
    type: shell
    command: env; echo "token var=\${MLOPSD_ADMIN_TOKEN:-unset}"
  - id: url_password
    type: http
    url: "http://hookuser:$URLPW@127.0.0.1:$SINK/status/500"
  - id: bearer_fail
    type: http
    url: "http://127.0.0.1:$SINK/status/403"
    headers: {Authorization: "Bearer {{ conf.tok }}"}
  - id: bearer_noconn
    type: http
    url: "http://127.0.0.1:1/x"
    headers: {Authorization: "Bearer {{ conf.tok }}"}
EOF

lf_start MLOPSD_ADMIN_TOKEN="$TOK"
U=http://127.0.0.1:$PORT
lf_wait_ready 30 && ok daemon_ready || { tail -30 "$T/daemon.log"; bad daemon_ready; }

# ---- authentication
section "authentication"
eq auth_none "$(api GET /api/v2/dags '' '')" 401
curl -s -D "$T/hdr" -o /dev/null "$U/api/v2/dags"
has auth_none_www_authenticate "$T/hdr" "WWW-Authenticate: Bearer"
eq auth_wrong "$(api GET /api/v2/dags '' "Authorization: Bearer x$TOK")" 401
eq auth_longer "$(api GET /api/v2/dags '' "Authorization: Bearer ${TOK}x")" 401
eq auth_prefix "$(api GET /api/v2/dags '' "Authorization: Bearer ${TOK%?}")" 401
eq auth_empty "$(api GET /api/v2/dags '' "Authorization: Bearer ")" 401
eq auth_basic "$(api GET /api/v2/dags '' \
  "Authorization: Basic $(printf 'admin:%s' "$TOK" | base64 -w0)")" 401
eq auth_raw_token "$(api GET /api/v2/dags '' "Authorization: $TOK")" 401
eq auth_promote_refused "$(api POST /api/v2/models/$MODEL/promote \
  '{"version": 2}' "Authorization: Bearer wrong")" 401
eq auth_promote_refused_alias "$(cat "$T/registry/$MODEL/aliases/production")" 1
eq auth_trigger_refused "$(api POST /api/v2/dags/sec_conf/dagRuns \
  '{"logical_date": "2025-01-01", "conf": {"note": "x"}}' '')" 401
eq auth_right "$(api GET /api/v2/dags)" 200
# constant time: both sides hashed to SHA-256, compared without early exit
if awk '/^static int token_ok/,/^}/' src/admin.c | grep -q 'sha256_buf' &&
   awk '/^static int token_ok/,/^}/' src/admin.c | grep -q 'diff |=' &&
   ! grep -nE '(str|mem|strn)cmp\([^)]*(token|tok)\b' src/admin.c | grep -q .
then ok auth_constant_time_compare; else bad auth_constant_time_compare; fi

# ---- SQL injection through /predict fields: stored as data
section "SQL injection through /predict fields: stored as data"
inj_cid="1'); DROP TABLE credit_predictions_api_log; --"
inj_occ="x'); DROP TABLE customer_info; -- \\ \" \`"
b=$(python3 - "$BODY" "$inj_cid" "$inj_occ" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["data"]["customer_id"] = sys.argv[2]
d["data"]["occupation"] = sys.argv[3]
print(json.dumps(d))
EOF
)
code=$(curl -s -o "$T/p.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "$b" "$U/predict")
eq sqli_predict_answered "$code" 200
code=$(curl -s -o "$T/p.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "$b" "$U/models/$MODEL/predict")
eq sqli_models_predict_answered "$code" 200
stored=""
for _ in $(seq 1 50); do
  stored=$(sql -r "$DB" -e "SELECT customer_id, JSON_UNQUOTE(JSON_EXTRACT(features,
    '\$.occupation')) FROM credit_predictions_api_log WHERE customer_id LIKE '1''%'")
  [ "$(echo "$stored" | grep -c .)" = 2 ] && break
  sleep 0.1
done
want=$(printf '%s\t%s' "${inj_cid:0:10}" "$inj_occ")
eq sqli_predict_stored_as_data "$(echo "$stored" | head -1)" "$want"
eq sqli_predict_two_rows "$(echo "$stored" | grep -c .)" 2

# ---- SQL injection through conf: CLI trigger and admin API
section "SQL injection through conf: CLI trigger and admin API"
note1="x'); DROP TABLE customer_info; -- \$(touch $T/pwned) \`touch $T/pwned2\` \"; touch $T/pwned3"
conf=$(python3 -c 'import json,sys; print(json.dumps({"note": sys.argv[1]}))' "$note1")
expect sqli_conf_cli_run 0 "$BIN" dags trigger sec_conf --date 2025-09-01 \
  --conf "$conf" --wait --timeout 60
eq sqli_conf_cli_stored "$(sql -r "$DB" -e "SELECT note FROM sec_notes WHERE
  run_id LIKE 'sec_conf__manual__2025-09-01%'")" "$note1"
eq sqli_conf_shell_one_word "$(cat "$T/note_20250901.txt" 2>/dev/null)" "$note1"
check sqli_conf_shell_nothing_ran bash -c "! ls $T/pwned* >/dev/null 2>&1"
note2="a'; DELETE FROM dag_run; UPDATE deployment SET to_version=99; --"
eq sqli_conf_api_trigger "$(api POST /api/v2/dags/sec_conf/dagRuns \
  "{\"logical_date\": \"2025-09-02\", \"conf\": {\"note\": $(jsonq "$note2")}}")" 200
rid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dag_run_id"])' \
  "$T/api.out" 2>/dev/null)
eq sqli_conf_api_run "$(lf_wait_run "$rid" 30)" success
eq sqli_conf_api_stored "$(sql -r "$DB" -e "SELECT note FROM sec_notes WHERE
  run_id = '$rid'")" "$note2"
eq sqli_conf_api_bad_date "$(api POST /api/v2/dags/sec_conf/dagRuns \
  "{\"logical_date\": \"2025-09-03' OR '1'='1\", \"conf\": {}}")" 422
has sqli_conf_api_bad_date_echo "$T/api.out" "got '2025-09-03' OR '1'='1'"
eq sqli_conf_api_conf_string "$(api POST /api/v2/dags/sec_conf/dagRuns \
  "{\"logical_date\": \"2025-09-04\", \"conf\": \"x' OR 1=1\"}")" 422

# ---- SQL injection through names and ids: CLI
section "SQL injection through names and ids: CLI"
q="x' OR '1'='1"
expect sqli_cli_trigger_name 1 "$BIN" dags trigger "$q" --date 2025-09-05
expect sqli_cli_trigger_drop 1 "$BIN" dags trigger "sec_conf'; DROP TABLE dag_run; --"
expect sqli_cli_pause 1 "$BIN" dags pause "x'; UPDATE dag SET is_paused=1; --"
"$BIN" runs show "$q" >"$T/out" 2>&1; rc=$?
check sqli_cli_runs_show bash -c "[ $rc != 0 ] && ! grep -q sec_conf__manual '$T/out'"
"$BIN" logs "$q" >"$T/out" 2>&1; rc=$?
check sqli_cli_logs bash -c "[ $rc != 0 ] && ! grep -q 'statement 1' '$T/out'"
"$BIN" runs list "$q" >"$T/out" 2>&1
hasnt sqli_cli_runs_list "$T/out" "sec_conf__manual"
expect sqli_cli_models_show 2 "$BIN" models show "$q"
expect sqli_cli_models_history 2 "$BIN" models history "$q"
expect sqli_cli_drift 2 "$BIN" drift "$q"
expect sqli_cli_models_promote 2 "$BIN" models promote "m'; DROP TABLE deployment; --" 1
eq sqli_cli_paused_flags "$(sql "$DB" -e "SELECT COUNT(*) FROM dag WHERE is_paused=1")" 0

# ---- SQL injection through names and ids: admin URLs and query strings
section "SQL injection through names and ids: admin URLs and query strings"
for p in "/api/v2/dags/x'%20OR%20'1'='1" \
         "/api/v2/dags/sec_conf'%20OR%20'1'='1/dagRuns" \
         "/api/v2/dags/sec_conf/dagRuns/x'%20OR%20'1'='1" \
         "/api/v2/dags/sec_conf/dagRuns/x'%20OR%20'1'='1/taskInstances" \
         "/api/v2/dags/sec_conf/dagRuns/x'%20UNION%20SELECT%201--/taskInstances/store/logs/1" \
         "/api/v2/models/x'%20OR%20'1'='1"; do
  eq "sqli_api_404 $p" "$(api GET "$p")" 404
done
code=$(api GET "/api/v2/dags?after=z'%20OR%20'1'='1&limit=5")
python3 - "$T/api.out" <<'EOF' && [ "$code" = 200 ] && ok sqli_api_after_is_data || bad sqli_api_after_is_data "code $code"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["dags"] == [], d   # nothing sorts after "z' OR '1'='1"
EOF
code=$(api GET "/api/v2/dags/sec_conf/dagRuns?limit=1;DROP%20TABLE%20dag_run")
eq sqli_api_limit "$code" 422   # Airflow's validation error status
code=$(api GET "/api/v2/dags/sec_conf/dagRuns?before=1%20OR%201=1")
check sqli_api_before bash -c "[ $code = 422 ] || [ $code = 200 ]"
eq sqli_api_pause_name "$(api PATCH "/api/v2/dags/x'%3B%20UPDATE%20dag%20SET%20is_paused%3D1%3B--" \
  '{"is_paused": true}')" 404

# ---- templates: unsafe params and conf placement refused at load
section "templates: unsafe params and conf placement refused at load"
mkdir -p "$T/baddags"
# NAME|EXTRA LINE|THE TASK: one DAG file a case
while IFS='|' read -r f extra task; do
  { echo "dag_id: bad_$f"; [ -z "$extra" ] || echo "$extra"
    echo "tasks:"; echo "  - $task"; } >"$T/baddags/$f.yaml"
done <<'EOF'
params|params: {who: "x'; DROP TABLE customer_info; --"}|{id: q, type: sql, sql: "SELECT * FROM customer_info WHERE name = '{{ params.who }}'"}
quoted||{id: q, type: sql, sql: "SELECT * FROM customer_info WHERE name = '{{ conf.who }}'"}
shellquoted||{id: s, type: shell, command: "echo \"{{ conf.who }}\""}
qmark||{id: q, type: sql, sql: "SELECT * FROM customer_info WHERE name = ?"}
EOF
for f in params quoted shellquoted qmark; do
  expect "tmpl_refused_$f" 1 "$BIN" dags validate "$T/baddags/$f.yaml"
done
cp "$T/baddags/params.yaml" "$T/dags/bad_params.yaml"
sleep 2.5  # the DAG directory is rescanned every 2 s
api GET /api/v2/dags >/dev/null
has tmpl_import_error_listed "$T/api.out" "bad_params.yaml"
expect tmpl_unsafe_dag_not_runnable 1 "$BIN" dags trigger bad_params --date 2025-09-01

# ---- path traversal: CLI
section "path traversal: CLI"
mkdir -p "$T/decoy"
cp -r "$T/registry/$MODEL" "$T/decoy/$MODEL"
sleep 0.01; touch "$T/decoy.stamp"
for n in "../decoy/$MODEL" "..%2fdecoy" "/etc/passwd" "$T/decoy/$MODEL" \
         ".." "." "" "a/b" "$(printf 'a\001b')"; do
  "$BIN" models show "$n" >"$T/out" 2>&1; rc=$?
  eq "path_cli_show '$n'" "$rc" 2
done
for v in "../1" "1/../../2" "-1" "0" "2147483648" "1e3" "0x1" "1/x"; do
  "$BIN" models show "$MODEL:$v" >"$T/out" 2>&1; rc=$?
  check "path_cli_show_version '$v'" bash -c "[ $rc = 2 ] || [ $rc = 1 ]"
done
expect path_cli_promote 2 "$BIN" models promote "../decoy/$MODEL" 1
expect path_cli_promote_version 2 "$BIN" models promote $MODEL "../1"
expect path_cli_predict 2 "$BIN" predict "../decoy/$MODEL" --file "$BODY"
expect path_cli_predict_abs 2 "$BIN" predict "/tmp/$MODEL" --file "$BODY"
expect path_cli_train 2 "$BIN" models train "../decoy/$MODEL" --date 2025-09-01
eq path_cli_production_kept "$(cat "$T/registry/$MODEL/aliases/production")" 1

# ---- path traversal: HTTP
section "path traversal: HTTP"
for n in ".." "%2e%2e" "..%2f..%2fetc" "%2e%2e%2fdecoy%2f$MODEL" \
         "..%2fdecoy%2f$MODEL" "%2Fetc%2Fpasswd" "%2F${T//\//%2F}%2Fdecoy%2F$MODEL" \
         "a%00b" "..%5c..%5cetc" "%252e%252e%252fdecoy" \
         "....%2f%2f" "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd" \
         "..%00$MODEL"; do
  code=$(lf_body 77 | curl -s --path-as-is -o "$T/p.out" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary @- \
    "$U/models/$n/predict")
  check "path_http_predict '$n'" is4xx "$code"
  code=$(api GET "/api/v2/models/$n")
  check "path_api_model '$n'" is4xx "$code"
  code=$(api POST "/api/v2/models/$n/promote" '{"version": 1}')
  check "path_api_promote '$n'" is4xx "$code"
done
# a NUL ends the decoded path: what is left is served as it is (the real
# model here), never anything outside the registry
code=$(api GET "/api/v2/models/$MODEL%00..%2f..%2fdecoy")
check path_api_nul_truncates bash -c "[ $code = 200 ] && grep -q '\"name\":\"$MODEL\"' '$T/api.out'"
for v in "..%2f1" "-1" "0" "1e3" "2147483648" "1%00" "%2e%2e" "1%2f..%2f..%2f2"; do
  code=$(api GET "/api/v2/models/$MODEL/versions/$v/trials")
  check "path_api_version '$v'" is4xx "$code"
done
for body in '{"version": "../1"}' '{"version": -1}' '{"version": 1.5}' \
            '{"version": 99999999999}' '{"version": "1/../2"}' '{"version": null}'; do
  code=$(api POST "/api/v2/models/$MODEL/promote" "$body")
  check "path_api_promote_version $body" is4xx "$code"
done
eq path_http_production_kept "$(cat "$T/registry/$MODEL/aliases/production")" 1
eq path_decoy_untouched "$(find "$T/decoy" -newer "$T/decoy.stamp" | wc -l)" 0
check path_decoy_never_read bash -c "! grep -q '$T/decoy' '$T/daemon.log'"

# ---- HTTP limits
section "HTTP limits"
head -c 2097152 /dev/zero | tr '\0' ' ' >"$T/big.json"
code=$(curl -s -o "$T/p.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary @"$T/big.json" "$U/predict")
eq http_413_content_length "$code" 413
code=$(curl -s -o "$T/p.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json" "$U/predict")
eq http_413_chunked "$code" 413
eq http_413_admin "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK" \
  --data-binary @"$T/big.json" "$U/api/v2/dags/sec_conf/dagRuns")" 413
{ printf 'X-Big: '; head -c 200000 /dev/zero | tr '\0' a; echo; } >"$T/bighdr"
code=$(curl -s -o /dev/null -w '%{http_code}' -H @"$T/bighdr" "$U/healthz")
eq http_431_big_header "$code" 431
eq http_serving_after_big "$(lf_predict 78)" 200
reaped0=$(lf_metric mlopsd_http_connections_reaped_total); reaped0=${reaped0:-0}
python3 "$SRC/tests/integration/lib_sock.py" slow "$PORT" 0.25 30 >"$T/slow.out" &
slow_pid=$!
python3 "$SRC/tests/integration/lib_sock.py" idle "$PORT" 30 >"$T/idle.out" &
idle_pid=$!
sleep 0.5
eq http_serving_during_slow "$(lf_predict 79)" 200
wait $slow_pid $idle_pid
read -r st slow_after sent <"$T/slow.out"
eq http_slow_client_dropped "$st" closed
check http_slow_client_cut_early bash -c "[ ${sent:-999} -lt 150 ]"
read -r st idle_after <"$T/idle.out"
eq http_idle_client_dropped "$st" closed
fd0=$(ls /proc/"$DPID"/fd | wc -l)
python3 "$SRC/tests/integration/lib_sock.py" many "$PORT" 120 60 >"$T/many.out" &
many_pid=$!
sleep 1
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$U/healthz")
eq http_served_while_full "$code" 200
wait $many_pid
read -r _ opened _ closed _ after <"$T/many.out"
eq http_many_all_closed "$closed" "$opened"
check http_many_opened bash -c "[ ${opened:-0} -ge 100 ]"
sleep 0.5
fd1=$(ls /proc/"$DPID"/fd | wc -l)
check http_many_fds_back bash -c "[ $fd1 -le $((fd0 + 4)) ]"
reaped1=$(lf_metric mlopsd_http_connections_reaped_total)
check http_slow_reaped_counted bash -c "[ ${reaped1:-0} -gt $reaped0 ]"
eq http_serving_after_many "$(lf_predict 80)" 200
LF_FIGURES="slow client closed after ${slow_after}s, idle after ${idle_after}s (idle_timeout 2 s); $opened idle connections reaped (fds $fd0 -> $fd1)"

# ---- header injection in http tasks
section "header injection in http tasks"
: >"$T/sink.log"
conf=$(python3 -c 'import json; print(json.dumps({"note": "ok", "q": "a&b=c d#e\r\nX-Evil: 1", "tok": "t1"}))')
expect hdr_benign_run 0 "$BIN" dags trigger sec_http --date 2025-09-01 \
  --conf "$conf" --wait --timeout 60
python3 - "$T/sink.log" <<'EOF' && ok hdr_benign_sent || bad hdr_benign_sent
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1, r
h = dict((k.lower(), v) for k, v in r[0]["headers"])
assert h["x-note"] == "ok", h
assert r[0]["path"] == "/hook?q=a%26b%3Dc%20d%23e%0D%0AX-Evil%3A%201", r[0]["path"]
assert "x-evil" not in h
EOF
: >"$T/sink.log"
d=2
for inj in '"ok\r\nX-Injected: 1"' '"ok\nX-Injected: 1"' '"ok\rX-Injected: 1"' \
           '"a\u007fb"' '"a\u001bb"'; do
  d=$((d + 1))
  "$BIN" dags trigger sec_http --date "2025-09-$(printf %02d $d)" \
    --conf "{\"note\": $inj, \"q\": \"x\", \"tok\": \"t\"}" \
    --wait --timeout 60 >"$T/out" 2>&1; rc=$?
  eq "hdr_injection_fails $inj" "$rc" 1
done
eq hdr_injection_nothing_sent "$(wc -l <"$T/sink.log")" 0
sql "$DB" -e "SELECT line FROM task_log WHERE run_id LIKE 'sec_http__manual__2025-09-03%'" >"$T/tl"
has hdr_injection_reason "$T/tl" "control character"
cat >"$T/baddags/hdr.yaml" <<'EOF'
dag_id: bad_hdr
tasks:
  - id: h
    type: http
    url: http://127.0.0.1:1/
    headers: {X-A: "a\r\nX-B: c"}
EOF
expect hdr_literal_crlf_refused 1 "$BIN" dags validate "$T/baddags/hdr.yaml"
sed 's/X-A: "a\\r\\nX-B: c"/"X Bad:": "v"/' "$T/baddags/hdr.yaml" >"$T/baddags/hdrname.yaml"
expect hdr_bad_name_refused 1 "$BIN" dags validate "$T/baddags/hdrname.yaml"

# ---- secrets: failures that could print them
section "secrets: failures that could print them"
conf=$(python3 -c 'import json,sys; print(json.dumps({"tok": sys.argv[1]}))' "$HOOK")
"$BIN" dags trigger sec_secrets --date 2025-09-01 --conf "$conf" --wait \
  --timeout 60 >"$T/secrets_run.out" 2>&1
rid=$(sql "$DB" -e "SELECT run_id FROM dag_run WHERE dag_id='sec_secrets'")
eq secrets_tasks_ran "$(sql "$DB" -e "SELECT GROUP_CONCAT(state ORDER BY task_id)
  FROM task_instance WHERE run_id='$rid'")" "failed,failed,success,failed"
sql "$DB" -e "SELECT line FROM task_log WHERE run_id='$rid'" >"$T/secrets_tl"
has secrets_env_dumped "$T/secrets_tl" "MLOPSD_DAG_ID=sec_secrets"
has secrets_env_no_token_var "$T/secrets_tl" "token var=unset"
has secrets_url_masked "$T/secrets_tl" "GET http://***@127.0.0.1:$SINK/status/500"
for i in 1 2 3; do
  api GET /api/v2/dags '' "Authorization: Bearer ${TOK}$i" >/dev/null
  api GET /api/v2/dags '' "Authorization: Bearer $i$TOK" >/dev/null
done
poke() {  # poke PORT N: up to 5 s for PORT's /healthz, then body N once
  wait_http "http://127.0.0.1:$1/healthz" 5
  lf_body "$2" | curl -s -o /dev/null -H 'Content-Type: application/json' \
    --data-binary @- "http://127.0.0.1:$1/predict"
}
# a second daemon and the CLI against a database that does not exist
PORT2=$(free_port)
MLOPSD_DATABASE_NAME=it_nosuch_db MLOPSD_SERVER_LISTEN=127.0.0.1:$PORT2 \
  MLOPSD_SERVER_SPOOL_DIR=$T/spool2 MLOPSD_ADMIN_TOKEN="$TOK" \
  "$BIN" serve >"$T/daemon2.log" 2>&1 &
d2=$!
poke "$PORT2" 81
curl -s -o /dev/null -H "Authorization: Bearer $TOK" "http://127.0.0.1:$PORT2/api/v2/dags"
sleep 1
kill -TERM $d2; wait $d2
MLOPSD_DATABASE_NAME=it_nosuch_db "$BIN" dags list >>"$T/cli_fail.log" 2>&1
MLOPSD_DATABASE_PORT=1 "$BIN" models promote $MODEL 2 >>"$T/cli_fail.log" 2>&1
MLOPSD_DATABASE_USER=it_nosuch_user "$BIN" runs list >>"$T/cli_fail.log" 2>&1
has secrets_failures_happened "$T/cli_fail.log" "it_nosuch_db"
for p in /metrics /metadata /readyz /api/v2/dags /api/v2/models /api/v2/serving \
         "/api/v2/models/$MODEL" /api/v2/auth; do
  api GET "$p" >/dev/null
done
sql "$DB" -e "SELECT line FROM task_log" >"$T/task_log.all"
lf_term
eq secrets_daemon_exit_0 "$DRC" 0
cat "$T"/registry/$MODEL/versions/*/*.json "$T"/registry/$MODEL/runs/*/*.json \
  >"$T/registry.all" 2>/dev/null
i=0
for s in "${SECRETS[@]}"; do
  i=$((i + 1))
  for f in daemon.log daemon2.log task_log.all registry.all answers.all \
           cli_fail.log secrets_run.out; do
    hasnt "secrets_${i}_not_in_${f}" "$T/$f" "$s"
  done
done
check secrets_logs_nonempty bash -c "[ \$(wc -l <'$T/daemon.log') -gt 50 ] &&
  [ \$(wc -l <'$T/task_log.all') -gt 20 ]"

# ---- tables intact
section "tables intact"
eq sqli_tables_intact "$(sql "$DB" -e "SHOW TABLES" | grep -v sec_notes | sort | tr '\n' ' ')" \
  "$TABLES_BEFORE"
eq sqli_rows_intact "$(sql "$DB" -e "$COUNTS_SQL")" "$COUNTS_BEFORE"
eq sqli_notes_rows "$(sql "$DB" -e "SELECT COUNT(*) FROM sec_notes")" 2
eq sqli_runs_kept "$(sql "$DB" -e "SELECT COUNT(*) FROM dag_run WHERE dag_id='sec_conf'")" 2

# ---- the container runs as non-root
section "the container runs as non-root"
awk '/^FROM /{stage++; user=""} /^USER /{user=$2} END{print user}' \
  docker/Dockerfile >"$T/user"
u=$(cat "$T/user")
check docker_user_set bash -c "[ -n '$u' ] && [ '$u' != root ] && [ '$u' != 0 ]"
uid=$(grep -oE -- "--uid [0-9]+ [^ ]* $u\b|--uid [0-9]+ .*$u" docker/Dockerfile |
  grep -oE -- '--uid [0-9]+' | awk '{print $2}')
check docker_uid_nonzero bash -c "[ -n '$uid' ] && [ '$uid' -ge 1000 ]"
check docker_no_root_after bash -c "! awk '/^FROM /{s++} s==2' docker/Dockerfile |
  sed -n '/^USER /,\$p' | grep -qE '^USER (root|0)'"

# ---- file modes: umask 022 (the normal case) ...
section "file modes: umask 022 (the normal case) ..."
ww=$(find "$T/registry" "$T/spool" "$T/spool2" -perm -o+w ! -type l 2>/dev/null)
eq modes_no_world_writable "$ww" ""
wr=$(find "$T/spool" "$T/spool2" -type f -perm -o+r ! -name plog-seq 2>/dev/null)
eq modes_spool_not_world_readable "$wr" ""
# ... and a hostile umask 000: nothing world-writable may be reachable
# (a file with o+w under a directory without o+x is not)
( umask 000
  "$BIN" models train $MODEL --date 2025-09-01 --run-id umask0 >"$T/umask.log" 2>&1
  PORT3=$(free_port)
  MLOPSD_SERVER_LISTEN=127.0.0.1:$PORT3 MLOPSD_SERVER_SPOOL_DIR=$T/spool0 \
    MLOPSD_DATABASE_PORT=1 "$BIN" serve --pid-file "$T/umask.pid" >>"$T/umask.log" 2>&1 &
  p=$!
  poke "$PORT3" 82
  sleep 0.5
  stat -c '%a' "$T/umask.pid" >"$T/umask.pidmode" 2>/dev/null
  kill -TERM $p; wait $p )
python3 - "$T/registry" "$T/spool0" <<'EOF' >"$T/exposed"
import os, stat, sys
for root in sys.argv[1:]:
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode) or not st.st_mode & stat.S_IWOTH:
                continue
            a, reach = os.path.dirname(p), True
            while len(a) >= len(root):       # the test's own dirs are 755
                if not os.stat(a).st_mode & stat.S_IXOTH:
                    reach = False
                a = os.path.dirname(a)
            print(("REACHABLE " if reach else "shielded ") + p)
EOF
eq modes_umask0_nothing_reachable "$(grep REACHABLE "$T/exposed")" ""
eq modes_umask0_spool_private "$(find "$T/spool0" -type f -perm -o+r ! -name plog-seq)" ""
check modes_umask0_pidfile bash -c "[ -s '$T/umask.pidmode' ] &&
  [ \$(( 0\$(cat '$T/umask.pidmode') & 2 )) = 0 ]"
n_shielded=$(grep -c shielded "$T/exposed")
LF_FIGURES="$LF_FIGURES; umask 000: $n_shielded world-writable files, all under 0700 version dirs"

lf_done
