#!/bin/bash
# test_readme.sh - the README's commands, run as a reader would run them.
#
# Starts the demo the README's quick start describes (`make demo`) in a
# temp state directory, on a free port, with its own private MariaDB (the
# real path: scripts/demo.sh, tests/mariadb.sh, db init, db seed, the CT
# run) and a copy of config/dags, detached (DEMO_DETACH=1).  Then runs
# every README block marked
#
#   <!-- readme-test -->                  or
#   <!-- readme-test expect="TEXT" -->    (the output must contain TEXT)
#
# followed by a ```sh fence, each with `bash -e -o pipefail` from the
# repository root in a clean environment (PATH and HOME only, as a new
# terminal), with the demo's defaults mapped to the test's: 127.0.0.1:3000
# -> the test port, var/ -> the temp state directory, config/dags/ -> the
# copy, build/mlopsd -> $MLOPSD_BIN.  Each block must exit 0 (the README
# uses curl -f, so an HTTP error fails it).  Where the README shows the
# answer right after the block (a ```json fence, or a plain fence whose
# first line is JSON), the first JSON value of the block's output must have
# the same shape: the same keys at every level, lists of the same length,
# the same types, and the same values except floats and "predict" (model
# output).  Then checks the curl the demo
# printed (200), Ctrl-C of a foreground demo (a second run: finds the model
# deployed; everything it started is stopped) and make demo-stop.
#
# Needs: a built $MLOPSD_BIN, mariadb-server, curl (tests/run.sh provides
# the environment; MLOPSD_DATABASE_* from it are not used).
. "$(dirname "$0")/../lib.sh"
SRC=${MLOPSD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC"
BIN=${MLOPSD_BIN:-$SRC/build/mlopsd}
done_() { tl_done; exit; }

work=$(mktemp -d /tmp/mlopsd-readme.XXXXXX)
VAR=$work/var
DAGS=$work/dags
cp -r config/dags "$DAGS"
PORT=$(free_port)

# A clean environment: what a new terminal has, plus sanitizer settings
# when the suite runs under make asan / tsan.
clean_env=(env -i "PATH=$PATH" "HOME=${HOME:-/root}" "LANG=C.UTF-8" "TERM=dumb")
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
  [ -n "${!v:-}" ] && clean_env+=("$v=${!v}")
done
demo_env=("${clean_env[@]}" "MLOPSD_DEMO_VAR=$VAR" "MLOPSD_DEMO_PORT=$PORT"
          "MLOPSD_DEMO_DAGS=$DAGS" "MLOPSD_DEMO_BIN=$BIN" "DEMO_CT_TIMEOUT=600")

cleanup() {
  "${demo_env[@]}" scripts/demo.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. the marked blocks ------------------------------------------------
scenario the_marked_blocks
awk -v dir="$work" '
  /^<!-- readme-test( expect="[^"]*")? -->$/ {
    want = 1; ex = ""
    if (match($0, /expect="[^"]*"/)) ex = substr($0, RSTART + 8, RLENGTH - 9)
    next }
  want == 1 && /^```sh$/ {
    n++; f = sprintf("%s/block%02d.sh", dir, n); inb = 1; want = 0
    printf "%s", ex > (f ".expect"); close(f ".expect"); next }
  inb && /^```$/ { inb = 0; close(f); after = 1; next }
  inb { print > f; next }
  # the answer the README shows for the block just read
  after && /^```(json)?$/ { after = 0; shown = 1; next }
  after && NF { after = 0 }
  shown && /^```$/ { shown = 0; close(f ".shown"); next }
  shown { print > (f ".shown"); next }
  want == 1 && NF { want = 0 }   # a marker must be followed by the fence
' README.md
# same_json SHOWN OUTPUT: the first JSON value of OUTPUT has the shape of
# the one SHOWN starts with (exit 2: SHOWN is not JSON, not compared)
same_json() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
shown_text = open(sys.argv[1]).read().strip()
try:
    shown = json.JSONDecoder().raw_decode(shown_text)[0]
except ValueError:
    sys.exit(2)
out = open(sys.argv[2]).read()
got = None
for i, line in enumerate(out.splitlines()):
    if line.lstrip()[:1] in "{[":
        try:
            got = json.JSONDecoder().raw_decode(
                "\n".join(out.splitlines()[i:]).lstrip())[0]
            break
        except ValueError:
            pass
if got is None:
    print("    no JSON in the output")
    sys.exit(1)
diffs = []
def cmp(w, g, path, key):
    if isinstance(w, dict):
        if not isinstance(g, dict):
            diffs.append(f"{path}: object shown, got {type(g).__name__}")
            return
        if set(w) != set(g):
            diffs.append(f"{path}: keys {sorted(w)} shown, got {sorted(g)}")
        for k in w:
            if k in g:
                cmp(w[k], g[k], f"{path}.{k}", k)
    elif isinstance(w, list):
        if not isinstance(g, list) or len(w) != len(g):
            diffs.append(f"{path}: a list of {len(w)} shown, got {json.dumps(g)[:80]}")
            return
        for i, (a, b) in enumerate(zip(w, g)):
            cmp(a, b, f"{path}[{i}]", key)
    elif type(w) is not type(g) and not (
            isinstance(w, (int, float)) and isinstance(g, (int, float))
            and not isinstance(g, bool)):
        diffs.append(f"{path}: {type(w).__name__} shown, got {json.dumps(g)}")
    elif isinstance(w, float) or isinstance(g, float) or key == "predict":
        pass  # model output: the type is what the README promises
    elif w != g:
        diffs.append(f"{path}: {json.dumps(w)} shown, got {json.dumps(g)}")
cmp(shown, got, "$", None)
for d in diffs:
    print("    " + d)
sys.exit(1 if diffs else 0)
EOF
}
blocks=("$work"/block*.sh)
nblocks=0; [ -e "${blocks[0]}" ] && nblocks=${#blocks[@]}
if [ "$nblocks" -ge 8 ]; then ok "readme_blocks_found ($nblocks)"; else
  bad "readme_blocks_found: $nblocks marked sh blocks in README.md, expected >= 8"; fi

# ---- 2. the demo, detached -----------------------------------------------
scenario the_demo_detached
t0=$(date +%s)
if "${demo_env[@]}" DEMO_DETACH=1 make -s demo >"$work/demo.out" 2>&1; then
  ok "make_demo_detached ($(( $(date +%s) - t0 )) s)"
else
  bad "make_demo_detached"; sed 's/^/    | /' "$work/demo.out" | tail -40
  tail -20 "$VAR/mlopsd.log" 2>/dev/null | sed 's/^/    log| /'
  done_
fi
grep -q "model_training   trial 27/27" "$work/demo.out" &&
  grep -q "model_deployment success" "$work/demo.out" &&
  ok "demo_progress_lines" || { bad "demo_progress_lines"; cat "$work/demo.out"; }

# the curl the demo printed, as printed
printed=$(grep -E '^  curl -X POST http://127\.0\.0\.1:[0-9]+/predict' "$work/demo.out" | head -1)
code=000
[ -n "$printed" ] &&
  code=$(cd "$SRC" && "${clean_env[@]}" bash -c "$printed -s -o /dev/null -w '%{http_code}'")
if [ "$code" = 200 ]; then ok "printed_curl_200"; else
  bad "printed_curl_200: '$printed' -> $code"; fi

# ---- 3. run each block -----------------------------------------------------
scenario run_each_block
njson=0
for b in "${blocks[@]}"; do
  [ -e "$b" ] || continue
  name=$(basename "$b" .sh)
  scenario "$name"
  first=$(grep -v '^\s*#' "$b" | head -1 | cut -c1-60)
  sed -E -e "s#127\\.0\\.0\\.1:3000#127.0.0.1:$PORT#g" \
         -e "s#(^|[^A-Za-z0-9_./-])var/#\\1$VAR/#g" \
         -e "s#config/dags/#$DAGS/#g" \
         -e "s#build/mlopsd#$BIN#g" "$b" > "$b.run"
  want=$(cat "$b.expect")
  out=$(cd "$SRC" && timeout 120 "${clean_env[@]}" bash -e -o pipefail "$b.run" 2>&1)
  rc=$?
  if [ "$rc" = 0 ] && { [ -z "$want" ] || grep -qF -- "$want" <<<"$out"; }; then
    ok "$name: $first"
    [ -z "${VERBOSE:-}" ] || sed 's/^/    | /' <<<"$out"
  else
    bad "$name: $first (exit $rc${want:+, expected output with '$want'})"
    sed 's/^/    | /' <<<"$out" | tail -30
  fi
  if [ -f "$b.shown" ]; then
    printf '%s\n' "$out" >"$b.out"
    same_json "$b.shown" "$b.out" >"$b.cmp"; jrc=$?
    [ "$jrc" = 2 ] || njson=$((njson + 1))
    if [ "$jrc" = 0 ]; then ok "$name: answer has the JSON shape the README shows"
    elif [ "$jrc" = 1 ]; then
      bad "$name: answer differs from the JSON the README shows"; cat "$b.cmp"
    fi
  fi
done
scenario answers_shown
if [ "$njson" -ge 3 ]; then ok "readme_answers_found ($njson)"; else
  bad "readme_answers_found: $njson blocks with a JSON answer shown, expected >= 3"; fi

# ---- 4. stop, then a foreground demo stopped with Ctrl-C -----------------
scenario stop_then_a_foreground_demo_stopped
alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
dbpid=$(cat "$VAR/mariadb/mysqld.pid" 2>/dev/null || echo none)
"${demo_env[@]}" make -s demo-stop >/dev/null 2>&1
if ! alive "$VAR/mlopsd.pid" && ! kill -0 "$dbpid" 2>/dev/null; then
  ok "make_demo_stop"; else bad "make_demo_stop: something still runs"; fi

# Ctrl-C in a terminal signals the whole foreground process group: the
# demo runs in its own group (setsid) and gets SIGINT the same way.
setsid "${demo_env[@]}" make -s demo >"$work/demo2.out" 2>&1 &
dpid=$!
for _ in $(seq 1 600); do
  grep -q "Ctrl-C stops" "$work/demo2.out" && break
  kill -0 "$dpid" 2>/dev/null || break
  sleep 0.1
done
grep -q "a model is already deployed" "$work/demo2.out" &&
  ok "second_run_finds_model" || { bad "second_run_finds_model"; cat "$work/demo2.out"; }
spid=$(cat "$VAR/mlopsd.pid" 2>/dev/null || echo none)
dbpid=$(cat "$VAR/mariadb/mysqld.pid" 2>/dev/null || echo none)
kill -INT -- -"$dpid" 2>/dev/null
rc=0
for _ in $(seq 1 600); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
wait "$dpid" || rc=$?
if ! kill -0 "$spid" 2>/dev/null && ! kill -0 "$dbpid" 2>/dev/null &&
   grep -q "stopping MariaDB" "$work/demo2.out" &&
   grep -q "SIGINT: stopping" "$VAR/mlopsd.log" &&
   tail -1 "$VAR/mlopsd.log" | grep -q "stopped"; then
  ok "ctrl_c_stops_everything (make exit $rc)"
else
  bad "ctrl_c_stops_everything"; tail -5 "$work/demo2.out"; tail -5 "$VAR/mlopsd.log"
fi

# under make asan / tsan the daemon ran with sanitizers: no reports
if grep -qE "ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:|WARNING: ThreadSanitizer" \
     "$VAR/mlopsd.log" "$work/demo.out" "$work/demo2.out" 2>/dev/null; then
  bad "no_sanitizer_reports"
  grep -m5 -E "Sanitizer|runtime error" "$VAR/mlopsd.log" "$work"/demo*.out
else
  ok "no_sanitizer_reports"
fi

done_
