#!/usr/bin/python3
"""mkmodels.py OUTDIR - write the small XGBoost model seeds of the
fuzz_tree corpus (tests/fuzz/corpus/tree/): one model per objective the
native evaluator supports, plus a dart model it must refuse, each as
UBJSON and JSON.  Deterministic (fixed seed), a few KB each.  Needs the
Debian package python3-xgboost (/usr/bin/python3)."""
import os
import sys

import numpy as np
import xgboost as xgb

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)
X = rng.normal(size=(200, 5)).astype(np.float32)
X[rng.random(X.shape) < 0.1] = np.nan
y3 = (X[:, 0] > 0).astype(int) + (np.nan_to_num(X[:, 1]) > 0.5).astype(int)
yb = (np.nan_to_num(X[:, 2]) > 0).astype(int)
yr = np.nan_to_num(X[:, 3]) * 2 + 1


def save(name, params, y, rounds):
    params = dict(params, seed=1, nthread=1)
    b = xgb.train(params, xgb.DMatrix(X, label=y), rounds)
    for ext in ("ubj", "json"):
        b.save_model(os.path.join(out, "seed-%s.%s" % (name, ext)))


save("softprob", {"objective": "multi:softprob", "num_class": 3,
                  "max_depth": 2, "eta": 0.3}, y3, 3)
save("softmax", {"objective": "multi:softmax", "num_class": 3,
                 "max_depth": 2}, y3, 2)
save("logistic", {"objective": "binary:logistic", "max_depth": 3}, yb, 3)
save("regress", {"objective": "reg:squarederror", "max_depth": 2}, yr, 3)
save("dart", {"objective": "binary:logistic", "booster": "dart",
              "max_depth": 1}, yb, 2)
