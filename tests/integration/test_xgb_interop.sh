#!/bin/bash
# test_xgb_interop.sh - the registry holds standard artefacts: another
# XGBoost consumer (Debian's python3-xgboost) loads versions/N/model.ubj
# and, on the preprocessed rows `mlopsd predict --print-rows` shows, gets
# the probabilities `mlopsd predict` answers with (to 1e-6) once the
# version's calibration.json temperature is applied with numpy.  The python
# side also rebuilds those rows from the raw requests with nothing but
# preprocess.json, so the transform is readable without mlopsd too.
#
# Steps: database it_interop (mlopsd db init + db seed, sql/features.sql
# for 2025-09-01 through the mariadb client), `mlopsd models train` with a
# 2-trial grid into a temp registry, then the raw validation rows stored
# with the version (sample.json, the request shape) as one batch request.
. "$(dirname "$0")/../lib.sh"
tl_init interop
PY=/usr/bin/python3
MODEL=credit_score_classification

tl_model_env it_interop
export MYSQL_PWD=${MLOPSD_DATABASE_PASSWORD:-}
sql() {
  mariadb --protocol=TCP -h "${MLOPSD_DATABASE_HOST:-127.0.0.1}" \
    -P "${MLOPSD_DATABASE_PORT:-3306}" -u "${MLOPSD_DATABASE_USER:-root}" "$@"
}

tl_need_pyxgb || finish

# 1. data and a trained version
scenario data_and_a_trained_version
if tl_db_course it_interop 2025-09-01 &&
   "$BIN" models train $MODEL --date 2025-09-01 --max-trials 2 \
     --rounds 40 --run-id interop >"$tmp/train.log" 2>&1 &&
   grep -q '^version 1$' "$tmp/train.log"; then
  ok train_version_1
else
  cat "$tmp"/*.log; bad train_version_1; finish
fi
vdir=$tmp/registry/$MODEL/versions/1

# 2. a batch of raw rows: the stored validation sample (about 500 rows of
#    the course spec's 28-day window and gate split; with its real
scenario a_batch_of_raw_rows_the
#    missing values: the predict side uses a copy of the spec where every
#    feature is optional, so nulls pass as missing), minus rows the other
#    request rules refuse (the training data is not filtered by them)
mkdir -p "$tmp/specs"
tl_optional_spec config/models/$MODEL.yaml "$tmp/specs/$MODEL.yaml"
export MLOPSD_MODELS_SPECS_DIR=$tmp/specs
tl_sample_body "$vdir" 600 $MODEL:1
tl_predict_rows $MODEL:1 && ok predict_and_print_rows || {
  cat "$tmp/answer.json" "$tmp/predict.err"; bad predict_and_print_rows
  finish; }

# 3. python-xgboost on the same rows; python preprocessing from the file
scenario python_xgboost_on_the_same_rows
$PY - "$vdir" "$tmp/body.json" "$tmp/answer.json" "$tmp/rows.json" \
  >"$tmp/py.out" 2>&1 <<'EOF'
import json, sys
import numpy as np
import xgboost as xgb

vdir, body, answer, rows = sys.argv[1:5]
body = json.load(open(body))["data"]
answer = json.load(open(answer))
doc = json.load(open(rows))
meta = json.load(open(vdir + "/meta.json"))
prep = json.load(open(vdir + "/preprocess.json"))
classes = meta["classes"]
n = len(body)
res = []
def check(name, cond, detail=""):
    res.append((name, cond))
    print(("ok " if cond else "not ok ") + name + (" " + detail if detail else ""))

X = np.array([[np.nan if v is None else v for v in r] for r in doc["rows"]],
             dtype=np.float32)
out = np.array(doc["outputs"], dtype=np.float64)
check("rows_shape", X.shape == (n, prep["n_outputs"]) and
      doc["columns"] == prep["outputs"] and n >= 400, str(X.shape))
check("rows_have_missing_values", bool(np.isnan(X).any()),
      "%d NaN" % int(np.isnan(X).sum()))

bst = xgb.Booster(model_file=vdir + "/model.ubj")
bst.set_param({"nthread": 1})
dm = xgb.DMatrix(X, missing=np.nan, feature_names=bst.feature_names)
p = bst.predict(dm)
check("python_shape", p.shape == (n, len(classes)), str(p.shape))
# the version's calibration (calibration.json, temperature scaling):
# softmax(log(p) / T), computed here with numpy alone
cal = json.load(open(vdir + "/calibration.json"))
check("calibration_temperature", cal["method"] == "temperature" and
      0.05 <= cal["temperature"] <= 20, str(cal.get("temperature")))
lp = np.log(np.clip(p.astype(np.float64), 1e-300, None)) / cal["temperature"]
lp -= lp.max(axis=1, keepdims=True)
p = np.exp(lp) / np.exp(lp).sum(axis=1, keepdims=True)
d_out = float(np.max(np.abs(p - out)))
check("python_matches_mlopsd_outputs_1e-6", d_out <= 1e-6,
      "max |diff| %.3g over %d rows" % (d_out, n))
labels = [classes[i] for i in np.argmax(p, axis=1)]
conf = np.max(p, axis=1)
check("answer_count", isinstance(answer, list) and len(answer) == n)
same_label = all(a["predict"] == l for a, l in zip(answer, labels))
d_conf = max(abs(a["confidence"] - c) for a, c in zip(answer, conf))
check("answer_labels_match_python", same_label)
check("answer_confidence_matches_python_1e-6", d_conf <= 1e-6,
      "max |diff| %.3g" % d_conf)
check("answer_version", all(a["model_version"] == "1" for a in answer))

# preprocessing from preprocess.json alone
Y = np.full((n, prep["n_outputs"]), np.nan, dtype=np.float32)
for i, r in enumerate(body):
    col = 0
    for inp in prep["inputs"]:
        v = r.get(inp["name"])
        if inp["kind"] == "numeric":
            Y[i, col] = np.nan if v is None else np.float32(
                (v - inp["center"]) / inp["scale"])
            col += 1
            continue
        vocab = inp["vocabulary"]
        Y[i, col:col + len(vocab) + 1] = 0
        if v is not None:
            if inp["kind"] == "categorical":
                toks = [v]
            else:
                d = inp["delimiters"]
                toks, cur = [], ""
                for ch in v:
                    if ch in d:
                        if cur: toks.append(cur)
                        cur = ""
                    else:
                        cur += ch
                if cur: toks.append(cur)
            for t in toks:
                if t in vocab:
                    Y[i, col + vocab.index(t)] = 1
                else:
                    Y[i, col + len(vocab)] = 1
        col += len(vocab) + 1
same = np.array_equal(np.isnan(X), np.isnan(Y)) and \
    np.array_equal(np.nan_to_num(X, nan=-7.0), np.nan_to_num(Y, nan=-7.0))
check("python_preprocessing_matches_mlopsd_rows", same)
sys.exit(0 if all(c for _, c in res) else 1)
EOF
rc=$?
cat "$tmp/py.out"
pass=$((pass + $(grep -c '^ok ' "$tmp/py.out")))
fail=$((fail + $(grep -c '^not ok ' "$tmp/py.out")))
# a python crash counts as a failure of its own
if [ "$rc" != 0 ] && ! grep -q '^not ok ' "$tmp/py.out"; then
  bad python_ran
fi
finish
