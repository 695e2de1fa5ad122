#!/bin/bash
# test_ct_s3.sh - the continuous-training DAG and a hot swap with the
# registry on S3 (issue 15): a real daemon (`mlopsd serve`), MariaDB
# (database it_ct_s3) and the local Swift of tests/s3.sh
# (models.registry_url: s3://BUCKET/ct-PID, registry_dir its cache):
#
#   1. CT for 2025-09-01 (extract, train, validate, deploy) succeeds on
#      every task; version 1 is a row in registry_version whose files are
#      in the bucket, production points at it, /metadata serves it.
#   2. `mlopsd models list/show` read the S3 registry, also from another
#      cache directory (a second host): the files come from the bucket,
#      verified, into that cache's .objects/.
#   3. `mlopsd models train` registers version 2 on S3; `models promote`
#      moves production (a row) and the running server swaps to version 2
#      (hot swap through MariaDB); `models rollback` swaps back to 1.
#   3b. Two `models train` processes at once get 3 and 4; one killed -9
#      at its commit row (the registry's test hook stops it there) leaves
#      no version and the next gets the next number; every
#      version reads complete from a fresh cache.
#   4. The admin API lists the model's versions and aliases on S3.
#   5. `mlopsd models migrate` copies the S3 registry into a directory
#      (numbers, aliases, bytes kept; a second run copies nothing) and the
#      directory back into S3 (another prefix and database).
. "$(dirname "$0")/../lib.sh"
tl_init ct_s3
MODEL=credit_score_classification
CT=credit_score_classification_ct

if [ -z "${MLOPSD_TEST_S3_ENDPOINT:-}" ] || [ -z "${MLOPSD_DATABASE_HOST:-}" ]; then
  scenario needs
  skip s3_store "no S3 store or database (tests/run.sh starts tests/s3.sh and MariaDB)"
  tl_done; exit
fi

export MLOPSD_DATABASE_NAME=it_ct_s3
export MLOPSD_MODELS_SPECS_DIR=$tmp/specs
export MLOPSD_SCHEDULER_DAGS_DIR=$tmp/dags
unset MLOPSD_MODELS_REGISTRY_DIR
PREFIX=ct-$$
URL=s3://$MLOPSD_TEST_S3_BUCKET/$PREFIX
q() { sql it_ct_s3 -e "$1"; }
port=$(free_port)
api=http://127.0.0.1:$port
mlopsd() { "$BIN" -c "$tmp/mlopsd.yaml" "$@"; }

scenario config
mkdir -p "$tmp/specs" "$tmp/dags"
tl_spec_copy "$tmp/specs/$MODEL.yaml" 'max_depth=[4]' \
  'colsample_bytree=[1.0]' 'lambda=[3]' num_boost_round=20 \
  early_stopping_rounds=5
sed -E -e 's/^( *retries:).*/\1 0/' config/dags/credit_score_ct.yaml \
  >"$tmp/dags/credit_score_ct.yaml"
tl_config "$port" it_ct_s3 "$tmp/specs" "  tick_ms: 200" "  workers: 2"
# the models section gets the S3 keys (tl_config wrote registry_dir: the
# cache)
python3 - "$tmp/mlopsd.yaml" "$URL" "$MLOPSD_TEST_S3_ENDPOINT" \
  "${MLOPSD_TEST_S3_REGION:-us-east-1}" <<'PY'
import sys
p, url, ep, region = sys.argv[1:5]
s = open(p).read()
s = s.replace("models:\n", "models:\n  registry_url: %s\n  s3_endpoint: %s\n"
              "  s3_region: %s\n" % (url, ep, region), 1)
open(p, "w").write(s)
PY
check config_has_url grep -q "registry_url: $URL" "$tmp/mlopsd.yaml"
if mlopsd dags validate >"$tmp/validate.out" 2>&1; then ok dags_valid
else cat "$tmp/validate.out"; bad dags_valid; fi

scenario data
tl_check_db tl_db_seeded it_ct_s3

scenario ct_dag_on_s3
MLOPSD_ADMIN_TOKEN=ct-s3-token "$BIN" -c "$tmp/mlopsd.yaml" serve \
  >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
check daemon_up wait_http "$api/healthz" 60
served_version() { tl_served_version "$api"; }
wait_served() { tl_wait_served "$api" "$1" 20; }  # the hot swap
if mlopsd dags trigger "$CT" --date 2025-09-01 --wait --timeout 300 \
     >"$tmp/ct.out" 2>&1; then ok ct_run_succeeded
else sed 's/^/  | /' "$tmp/ct.out" | tail -30; tail -30 "$tmp/daemon.log"; bad ct_run_succeeded; fi
RUN=$(sed -n 's/^queued run //p' "$tmp/ct.out" | tail -1)
eq ct_all_four_tasks_success "$(q "SELECT COUNT(*) FROM task_instance WHERE
  run_id = '$RUN' AND state = 'success'")" 4
eq version_row "$(q "SELECT GROUP_CONCAT(version) FROM registry_version
  WHERE model = '$MODEL'")" 1
eq production_row "$(q "SELECT version FROM registry_alias WHERE
  model = '$MODEL' AND alias = 'production'")" 1
# the files are in the bucket under the draft the row names (the second
# cache below reads them from there); this host's cache holds version 1
check cache_has_v1 test -f "$tmp/registry/$MODEL/versions/1/model.ubj"
eq served_v1 "$(wait_served 1)" 1

scenario cli_and_second_host
if mlopsd models list >"$tmp/list.out" 2>&1; then ok models_list
else cat "$tmp/list.out"; bad models_list; fi
has models_list_shows_model "$tmp/list.out" "$MODEL"
# a second host: another cache directory, the same bucket and database
if MLOPSD_MODELS_REGISTRY_DIR=$tmp/cache2 mlopsd models show "$MODEL:1" --json \
     >"$tmp/show2.out" 2>"$tmp/show2.err"; then ok show_from_second_cache
else cat "$tmp/show2.err"; bad show_from_second_cache; fi
has second_cache_meta "$tmp/show2.out" '"version"'
n_obj=$(ls "$tmp/cache2/.objects" 2>/dev/null | wc -l)
if [ "$n_obj" -ge 1 ]; then ok second_cache_objects_by_sha256
else bad second_cache_objects_by_sha256 "no files in $tmp/cache2/.objects"; fi
# each cached object's name is its sha256
okhash=1
for f in "$tmp"/cache2/.objects/*; do
  [ -f "$f" ] || continue
  [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || okhash=0
done
eq cached_objects_match_their_names "$okhash" 1

scenario hot_swap_on_s3
if mlopsd models train "$MODEL" --date 2025-09-01 >"$tmp/train.out" 2>&1
then ok models_train_v2; else tail -20 "$tmp/train.out"; bad models_train_v2; fi
eq version_rows_1_2 "$(q "SELECT GROUP_CONCAT(version ORDER BY version)
  FROM registry_version WHERE model = '$MODEL'")" "1,2"
if mlopsd models promote "$MODEL" 2 --reason "test_ct_s3" >"$tmp/promote.out" 2>&1
then ok promote_v2; else cat "$tmp/promote.out"; bad promote_v2; fi
eq served_v2_after_promote "$(wait_served 2)" 2
if mlopsd models rollback "$MODEL" >"$tmp/rollback.out" 2>&1
then ok rollback; else cat "$tmp/rollback.out"; bad rollback; fi
eq served_v1_after_rollback "$(wait_served 1)" 1
eq production_row_back_to_1 "$(q "SELECT version FROM registry_alias WHERE
  model = '$MODEL' AND alias = 'production'")" 1

scenario two_trainers_and_a_kill
# two processes register at once: 3 and 4, no gap, no duplicate; then a
# trainer killed (-9) at its commit row leaves no version, and the next
# gets 5
mlopsd models train "$MODEL" --date 2025-09-01 >"$tmp/tA.out" 2>&1 &
pa=$!
mlopsd models train "$MODEL" --date 2025-09-01 >"$tmp/tB.out" 2>&1 &
pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
eq two_trainers_ok "$ra $rb" "0 0"
eq versions_1_to_4 "$(q "SELECT GROUP_CONCAT(version ORDER BY version)
  FROM registry_version WHERE model = '$MODEL'")" "1,2,3,4"
# the binary itself in the background (not the mlopsd function, whose
# subshell a kill would not reach), stopped by the registry's test hook
# inside its commit transaction (version row written, not committed)
MLOPSD_TEST_STOP_AT_COMMIT_ROW=1 "$BIN" -c "$tmp/mlopsd.yaml" models train \
  "$MODEL" --date 2025-09-01 >"$tmp/tK.out" 2>&1 &
pk=$!
for _ in $(seq 1 1200); do
  case "$(ps -o stat= -p $pk 2>/dev/null)" in T*|"") break ;; esac
  sleep 0.1
done
eq trainer_stopped_at_commit_row "$(ps -o stat= -p $pk 2>/dev/null | cut -c1)" T
kill -9 $pk 2>/dev/null; wait $pk 2>/dev/null
n_after=$(q "SELECT COUNT(*) FROM registry_version WHERE model = '$MODEL'")
max_after=$(q "SELECT MAX(version) FROM registry_version WHERE model = '$MODEL'")
eq no_gap_after_kill "$n_after" "$max_after"
if mlopsd models train "$MODEL" --date 2025-09-01 >"$tmp/tN.out" 2>&1
then ok train_after_kill; else tail -5 "$tmp/tN.out"; bad train_after_kill; fi
eq next_number_after_kill "$(sed -n 's/^version //p' "$tmp/tN.out")" "$((max_after + 1))"
# every version is complete: readable from a fresh cache
allok=1
for v in $(seq 1 $((max_after + 1))); do
  MLOPSD_MODELS_REGISTRY_DIR=$tmp/cache4 mlopsd models show "$MODEL:$v" \
    >/dev/null 2>&1 || allok=0
done
eq all_versions_complete "$allok" 1

scenario admin_api_on_s3
vers=$(curl -s -H 'Authorization: Bearer ct-s3-token' \
  "$api/api/v2/models/$MODEL" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
    print(",".join(str(v.get("version")) for v in d["versions"]),
          d.get("production_version"))
except Exception as e: print("error", e)')
eq admin_versions_and_production "$vers" "$(seq -s, $((max_after + 1)) -1 1) 1"  # newest first

scenario migrate_s3_to_dir_and_back
if mlopsd models migrate --to "$tmp/exported" >"$tmp/mig1.out" 2>&1
then ok migrate_to_dir; else cat "$tmp/mig1.out"; bad migrate_to_dir; fi
nv=$((max_after + 1))
has migrate_to_dir_counts "$tmp/mig1.out" "$nv versions copied, 0 already there"
eq exported_versions "$(ls "$tmp/exported/$MODEL/versions" | sort -n | tr '\n' ' ')" "$(seq -s' ' 1 $nv) "
eq exported_production "$(tr -d ' \n' <"$tmp/exported/$MODEL/aliases/production")" 1
check exported_model_loads test -s "$tmp/exported/$MODEL/versions/2/model.ubj"
# the copy is byte for byte: compare with this host's cache
if cmp -s "$tmp/exported/$MODEL/versions/1/model.ubj" \
          "$tmp/registry/$MODEL/versions/1/model.ubj"; then ok exported_bytes_equal
else bad exported_bytes_equal; fi
# a second run copies nothing
mlopsd models migrate --to "$tmp/exported" >"$tmp/mig2.out" 2>&1
has migrate_again_skips "$tmp/mig2.out" "0 versions copied, $nv already there"
# and back into S3 (another prefix, another database: one object-storage
# registry per database)
if sql -e "DROP DATABASE IF EXISTS it_ct_s3_back" &&
   MLOPSD_DATABASE_NAME=it_ct_s3_back mlopsd db init >"$tmp/mig-db.out" 2>&1 &&
   MLOPSD_DATABASE_NAME=it_ct_s3_back mlopsd models migrate \
     --from "$tmp/exported" --to "$URL-back" >"$tmp/mig3.out" 2>&1
then ok migrate_dir_to_s3; else cat "$tmp/mig-db.out" "$tmp/mig3.out"; bad migrate_dir_to_s3; fi
has migrate_back_counts "$tmp/mig3.out" "$nv versions copied, 0 already there"
eq back_version_rows "$(sql it_ct_s3_back -e "SELECT COUNT(*), MAX(version)
  FROM registry_version WHERE model = '$MODEL'")" "$nv	$nv"
eq back_production_row "$(sql it_ct_s3_back -e "SELECT version FROM
  registry_alias WHERE model = '$MODEL' AND alias = 'production'")" 1
# read back from the bucket into a fresh cache: the same bytes
if MLOPSD_DATABASE_NAME=it_ct_s3_back MLOPSD_MODELS_REGISTRY_URL="$URL-back" \
   MLOPSD_MODELS_REGISTRY_DIR=$tmp/cache3 mlopsd models show "$MODEL:1" --json \
   >"$tmp/show3.out" 2>&1 &&
   cmp -s "$tmp/cache3/$MODEL/versions/1/model.ubj" \
          "$tmp/exported/$MODEL/versions/1/model.ubj"; then ok back_bytes_equal
else cat "$tmp/show3.out"; bad back_bytes_equal; fi
sql -e "DROP DATABASE IF EXISTS it_ct_s3_back"

tl_done
