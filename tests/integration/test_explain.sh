#!/bin/bash
# test_explain.sh - reason codes on /predict (issue 13 part 4): the
# per-field contributions a running server answers with equal Debian's
# python3-xgboost pred_contribs=True (exact TreeSHAP) on the same rows,
# summed per input field with the columns preprocess.json gives each
# input, to 1e-5; they and the bias sum to the margin (python's
# output_margin); bad "explain" values get a 400 naming where.
#
# Steps: database it_explain (db init + seed, sql/features.sql for
# 2025-09-01), `mlopsd models train` with a 2-trial grid into a temp
# registry, promote version 1, serve it, post the version's stored
# validation rows (sample.json) as one batch with every field explained;
# the preprocessed rows come from `mlopsd predict --print-rows`.
. "$(dirname "$0")/../lib.sh"
tl_init explain
PY=/usr/bin/python3
MODEL=credit_score_classification

tl_model_env it_explain

tl_need_pyxgb || finish

scenario a_trained_and_promoted_version
if tl_db_course it_explain 2025-09-01 &&
   "$BIN" models train $MODEL --date 2025-09-01 --max-trials 2 \
     --rounds 40 --run-id explain >"$tmp/train.log" 2>&1 &&
   grep -q '^version 1$' "$tmp/train.log" &&
   "$BIN" models promote $MODEL 1 >"$tmp/promote.log" 2>&1; then
  ok train_and_promote_version_1
else
  cat "$tmp"/*.log; bad train_and_promote_version_1; finish
fi
vdir=$tmp/registry/$MODEL/versions/1

# every feature optional (the stored rows keep their real missing values)
mkdir -p "$tmp/specs"
tl_optional_spec config/models/$MODEL.yaml "$tmp/specs/$MODEL.yaml"
export MLOPSD_MODELS_SPECS_DIR=$tmp/specs
tl_sample_body "$vdir" 300 $MODEL:1
"$BIN" predict $MODEL:1 --file "$tmp/body.json" --print-rows \
  >"$tmp/rows.json" 2>"$tmp/rows.err" && ok rows_printed ||
  { cat "$tmp/rows.err"; bad rows_printed; finish; }

scenario the_server_explains
port=$(free_port)
tl_config "$port" it_explain "$tmp/specs"
"$BIN" -c "$tmp/mlopsd.yaml" serve >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_http "http://127.0.0.1:$port/readyz" 30 && ok server_ready ||
  { cat "$tmp/daemon.log"; bad server_ready; finish; }
url=http://127.0.0.1:$port/predict
post() {  # post NAME BODY_FILE [QUERY] -> $tmp/NAME.out, prints the status
  curl -s -o "$tmp/$1.out" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary @"$2" "$url${3:-}"
}
nin=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["inputs"]))' \
  "$vdir/preprocess.json")
$PY - "$tmp/body.json" "$tmp" "$nin" <<'EOF'
import json, sys
body = json.load(open(sys.argv[1])); d = sys.argv[2]; n = int(sys.argv[3])
one = body["data"][0]
def w(name, obj):
    json.dump(obj, open(d + "/" + name + ".json", "w"))
w("all", dict(body, explain={"top_k": n}))
w("one_true", {"data": one, "explain": True})
w("one_false", {"data": one, "explain": False})
w("one_plain", {"data": one})
w("top2", {"data": one, "explain": {"top_k": 2}})
w("bad_string", {"data": one, "explain": "yes"})
w("bad_number", {"data": one, "explain": 1})
w("bad_k0", {"data": one, "explain": {"top_k": 0}})
w("bad_kbig", {"data": one, "explain": {"top_k": n + 1}})
w("bad_kfrac", {"data": one, "explain": {"top_k": 2.5}})
w("bad_kstr", {"data": one, "explain": {"top_k": "3"}})
w("bad_member", {"data": one, "explain": {"top": 3}})
EOF
eq explain_all_200 "$(post all "$tmp/all.json")" 200

$PY - "$vdir" "$tmp/all.out" "$tmp/rows.json" >"$tmp/py.out" 2>&1 <<'EOF'
import json, sys
import numpy as np
import xgboost as xgb

vdir, answer, rows = sys.argv[1:4]
answer = json.load(open(answer))
doc = json.load(open(rows))
meta = json.load(open(vdir + "/meta.json"))
prep = json.load(open(vdir + "/preprocess.json"))
classes = meta["classes"]
res = []
def check(name, cond, detail=""):
    res.append(cond)
    print(("ok " if cond else "not ok ") + name + (" " + detail if detail else ""))

X = np.array([[np.nan if v is None else v for v in r] for r in doc["rows"]],
             dtype=np.float32)
n = X.shape[0]
check("answer_count", isinstance(answer, list) and len(answer) == n,
      "%d rows" % n)
bst = xgb.Booster(model_file=vdir + "/model.ubj")
bst.set_param({"nthread": 1})
dm = xgb.DMatrix(X, missing=np.nan, feature_names=bst.feature_names)
C = bst.predict(dm, pred_contribs=True)       # (n, K, ncol + 1)
M = bst.predict(dm, output_margin=True)       # (n, K)
check("contribs_shape", C.shape == (n, len(classes), X.shape[1] + 1),
      str(C.shape))
# the project's one-hot mapping: each input's columns, in order
spans, col = [], 0
for inp in prep["inputs"]:
    w = 1 if inp["kind"] == "numeric" else len(inp["vocabulary"]) + 1
    spans.append((inp["name"], col, col + w))
    col += w
check("mapping_covers_columns", col == X.shape[1], "%d of %d" % (col, X.shape[1]))
d_field = d_bias = d_margin = d_sum = 0.0
order_ok = class_ok = True
for i, a in enumerate(answer):
    ex = a["explanation"]
    k = classes.index(a["predict"])
    class_ok &= ex["class"] == a["predict"] and ex["top_k"] == len(spans)
    got = {c["field"]: c["value"] for c in ex["contributions"]}
    want = {nm: float(C[i, k, lo:hi].astype(np.float64).sum())
            for nm, lo, hi in spans}
    if set(got) != set(want):
        class_ok = False
        continue
    d_field = max(d_field, max(abs(got[f] - want[f]) for f in want))
    d_bias = max(d_bias, abs(ex["bias"] - float(C[i, k, -1])))
    d_margin = max(d_margin, abs(ex["margin"] - float(M[i, k])))
    d_sum = max(d_sum, abs(sum(got.values()) + ex["rest"] + ex["bias"]
                           - ex["margin"]))
    vals = [abs(c["value"]) for c in ex["contributions"]]
    order_ok &= all(vals[j] >= vals[j + 1] for j in range(len(vals) - 1))
check("explained_class_is_the_predicted_one_all_fields", class_ok)
check("field_contributions_match_pred_contribs_1e-5", d_field <= 1e-5,
      "max |diff| %.3g over %d rows x %d fields" % (d_field, n, len(spans)))
check("bias_matches_pred_contribs_1e-5", d_bias <= 1e-5, "%.3g" % d_bias)
check("margin_matches_output_margin_1e-5", d_margin <= 1e-5, "%.3g" % d_margin)
check("contributions_plus_bias_sum_to_margin_1e-5", d_sum <= 1e-5,
      "%.3g" % d_sum)
check("sorted_by_abs_value", order_ok)
sys.exit(0 if all(res) else 1)
EOF
rc=$?
cat "$tmp/py.out"
tl_replay "$tmp/py.out"
[ "$rc" = 0 ] || grep -q '^not ok ' "$tmp/py.out" || bad python_ran

scenario global_importance_in_meta_show_and_metadata
curl -s "http://127.0.0.1:$port/metadata" >"$tmp/metadata.json"
"$BIN" models show $MODEL:1 >"$tmp/show.txt" 2>&1
$PY - "$vdir" "$tmp/metadata.json" "$tmp/show.txt" >"$tmp/imp.out" 2>&1 <<'EOF2'
import json, sys
import numpy as np
import xgboost as xgb
vdir, md, show = sys.argv[1:4]
meta = json.load(open(vdir + "/meta.json"))
prep = json.load(open(vdir + "/preprocess.json"))
def check(name, cond, detail=""):
    print(("ok " if cond else "not ok ") + name + (" " + detail if detail else ""))
imp = meta.get("importance") or {}
f = imp.get("fields") or []
names = [i["name"] for i in prep["inputs"]]
check("one_entry_per_input_field", sorted(x["field"] for x in f) == sorted(names),
      "%d of %d" % (len(f), len(names)))
s = [x["mean_abs_shap"] for x in f]
check("sorted_by_mean_abs_shap", s == sorted(s, reverse=True) and s[0] > 0
      and min(s) >= 0, str(s[:3]))
check("rows_and_split", imp.get("rows", 0) > 0 and
      imp.get("split") in ("gate", "valid"), "%s %s" % (imp.get("rows"), imp.get("split")))
check("gain_shares_sum_to_1", abs(sum(x["gain_share"] for x in f) - 1) < 1e-9)
# XGBoost's own total gain per column, summed per field by the mapping
bst = xgb.Booster(model_file=vdir + "/model.ubj")
sc = bst.get_score(importance_type="total_gain")
fn = bst.feature_names or ["f%d" % j for j in range(prep["n_outputs"])]
want, col = {}, 0
for inp in prep["inputs"]:
    w = 1 if inp["kind"] == "numeric" else len(inp["vocabulary"]) + 1
    want[inp["name"]] = sum(sc.get(fn[j], 0.0) for j in range(col, col + w))
    col += w
d = max(abs(x["gain"] - want[x["field"]]) / max(1.0, want[x["field"]]) for x in f)
check("gain_matches_python_total_gain_1e-5", d <= 1e-5, "max rel diff %.3g" % d)
m = json.load(open(md))
check("metadata_has_importance", m.get("importance") == imp)
t = open(show).read()
check("models_show_lists_importance",
      "importance     mean |SHAP| on %d %s rows" % (imp.get("rows", 0), imp.get("split")) in t
      and ("  " + f[0]["field"]) in t)
EOF2
cat "$tmp/imp.out"
tl_replay "$tmp/imp.out"
grep -q '^ok models_show' "$tmp/imp.out" || bad importance_python_ran

scenario explain_options
eq true_200 "$(post one_true "$tmp/one_true.json")" 200
$PY - "$tmp" "$nin" >"$tmp/opt.out" 2>&1 <<'EOF'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
def j(name): return json.load(open(d + "/" + name + ".out"))
def check(name, cond): print(("ok " if cond else "not ok ") + name)
a = j("one_true")
ex = a.get("explanation", {})
check("true_lists_default_top_5", ex.get("top_k") == min(5, n) and
      len(ex.get("contributions", [])) == min(5, n))
s = sum(c["value"] for c in ex.get("contributions", []))
check("top_5_plus_rest_plus_bias_is_margin",
      abs(s + ex.get("rest", 1e9) + ex.get("bias", 0) - ex.get("margin", 0)) <= 1e-5)
EOF
cat "$tmp/opt.out"
tl_replay "$tmp/opt.out"
eq top2_200 "$(post top2 "$tmp/top2.json")" 200
eq top2_count "$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["explanation"]["contributions"]))' "$tmp/top2.out")" 2
eq query_explain_200 "$(post q1 "$tmp/one_plain.json" '?explain=1')" 200
has query_explain_answers "$tmp/q1.out" '"explanation":{"class":'
eq false_200 "$(post one_false "$tmp/one_false.json")" 200
hasnt false_no_explanation "$tmp/one_false.out" '"explanation"'
eq plain_200 "$(post one_plain "$tmp/one_plain.json")" 200
hasnt plain_no_explanation "$tmp/one_plain.out" '"explanation"'
eq query_off_200 "$(post q0 "$tmp/one_plain.json" '?explain=0')" 200
hasnt query_off_no_explanation "$tmp/q0.out" '"explanation"'
# the body's value wins over the query's
eq body_over_query_200 "$(post bq "$tmp/one_false.json" '?explain=1')" 200
hasnt body_over_query_no_explanation "$tmp/bq.out" '"explanation"'

# one booster answers every explanation: parallel requests (2 server
# threads, 8 clients) get the same bytes as one request at a time
scenario parallel_explanations_equal_sequential_ones
$PY - "$tmp/body.json" "$tmp/par.json" "$nin" <<'EOF'
import json, sys
body = json.load(open(sys.argv[1]))
json.dump({"data": body["data"][:20], "explain": {"top_k": int(sys.argv[3])}},
          open(sys.argv[2], "w"))
EOF
eq par_sequential_200 "$(post par_seq "$tmp/par.json")" 200
seq 1 24 | xargs -P 8 -I{} curl -s -o "$tmp/par_{}.out" -X POST \
  -H 'Content-Type: application/json' --data-binary @"$tmp/par.json" "$url"
same=0
for i in $(seq 1 24); do cmp -s "$tmp/par_$i.out" "$tmp/par_seq.out" && same=$((same + 1)); done
eq parallel_answers_identical "$same" 24

scenario bad_explain_values
eq string_400 "$(post bs "$tmp/bad_string.json")" 400
has string_names_explain "$tmp/bs.out" '"explain":"must be true, false or an object {\"top_k\": K}"'
has string_detail_loc "$tmp/bs.out" '"loc":["body","explain"]'
eq number_400 "$(post bn "$tmp/bad_number.json")" 400
has number_names_explain "$tmp/bn.out" '"explain":"must be true, false'
for b in k0 kbig kfrac kstr; do
  eq "${b}_400" "$(post "b$b" "$tmp/bad_$b.json")" 400
  has "${b}_names_top_k" "$tmp/b$b.out" \
    "\"explain.top_k\":\"must be an integer from 1 to $nin (the model's input fields)\""
done
eq member_400 "$(post bm "$tmp/bad_member.json")" 400
has member_names_it "$tmp/bm.out" '"explain.top":"unknown field"'
eq query_bad_400 "$(post bq2 "$tmp/one_plain.json" '?explain=maybe')" 400
has query_bad_names_it "$tmp/bq2.out" 'query parameter explain must be 1, true, 0 or false'
finish
