#!/usr/bin/python3
"""unseen.py - score model versions on customers no version trained on.

The customers: ../shared/data/credit/predict_requests.jsonl (4,628 August
Kaggle customers outside the course tables, cleaned into the request
format), their labels from kaggle_train_august_raw.csv (Customer_ID
CUS_0x... in hex = the request's decimal customer_id).

For each version it runs `mlopsd predict NAME:V --input FILE` (the
product's own path: preprocessing, evaluator, calibration) for the
answers, and `mlopsd predict NAME:V --file - --print-rows` for the raw
class probabilities before calibration; then prints one line per version:

  unseen v3: n=4628 accuracy=0.6012 ece_raw=0.0712 ece=0.0213 \
      brier_raw=0.5233 brier=... mean_conf_raw=0.672 mean_conf=0.611

ECE as src/calib.c: 15 equal-width bins of the top probability, bin b
holds (b/15, (b+1)/15] (the first also 0).  The calibrated ECE uses the
`confidence` of the answers.  The Brier score after calibration needs
every class probability, which answers do not carry: it is printed only
for the raw probabilities.

usage: unseen.py MLOPSD_BIN MODEL VERSION... (registry and specs from the
       environment, as mlopsd reads them: MLOPSD_MODELS_REGISTRY_DIR, ...)
  UNSEEN_DATA  folder of the two files (default ../shared/data/credit
               next to the source tree, else /work/shared/data/credit)
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

BINS = 15
CHUNK = 2000


def data_dir():
    d = os.environ.get("UNSEEN_DATA")
    if d:
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    for c in (os.path.join(here, "..", "..", "shared", "data", "credit"),
              "/work/shared/data/credit"):
        if os.path.exists(os.path.join(c, "predict_requests.jsonl")):
            return c
    sys.exit("unseen: no predict_requests.jsonl (set UNSEEN_DATA)")


def labels(path):
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            cid = row["Customer_ID"]
            if not cid.startswith("CUS_0x"):
                sys.exit("unseen: %s: Customer_ID %r is not CUS_0x..." %
                         (path, cid))
            out[int(cid[6:], 16)] = row["Credit_Score"]
    return out


def ece(conf, hit):
    sc = [0.0] * BINS
    sa = [0.0] * BINS
    cnt = [0] * BINS
    for c, h in zip(conf, hit):
        b = min(BINS - 1, max(0, math.ceil(c * BINS) - 1))
        sc[b] += c
        sa[b] += h
        cnt[b] += 1
    n = len(conf)
    return sum(abs(sa[b] / cnt[b] - sc[b] / cnt[b]) * cnt[b] / n
               for b in range(BINS) if cnt[b])


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.split("\n\n")[-1])
    mlopsd, model, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
    d = data_dir()
    lab = labels(os.path.join(d, "kaggle_train_august_raw.csv"))
    req_path = os.path.join(d, "predict_requests.jsonl")
    rows = [json.loads(line)["data"] for line in open(req_path)]
    y = []
    for r in rows:
        if r["customer_id"] not in lab:
            sys.exit("unseen: customer %d has no label" % r["customer_id"])
        y.append(lab[r["customer_id"]])
    for v in versions:
        ref = "%s:%s" % (model, v)
        out = subprocess.run([mlopsd, "predict", ref, "--input", req_path],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit("unseen: mlopsd predict %s --input: exit %d: %s" %
                     (ref, out.returncode, out.stderr.strip()[:500]))
        ans = [json.loads(line) for line in out.stdout.splitlines()]
        if len(ans) != len(rows) or any("error" in a for a in ans):
            sys.exit("unseen: %s: %d answers for %d rows (or errors)" %
                     (ref, len(ans), len(rows)))
        # raw: the same version without its calibration.json, copied into
        # a scratch registry (whatever the calibration method)
        with tempfile.TemporaryDirectory(prefix="unseen.") as tmp:
            vdir = os.path.join(tmp, model, "versions", str(v))
            shutil.copytree(version_dir(model, v), vdir,
                            ignore=shutil.ignore_patterns("calibration.json"))
            env = dict(os.environ, MLOPSD_MODELS_REGISTRY_DIR=tmp)
            outs = raw_outputs(mlopsd, ref, rows, env)
        classes = meta_classes(model, v)
        n = len(rows)
        hit = [a["predict"] == t for a, t in zip(ans, y)]
        conf = [float(a["confidence"]) for a in ans]
        # raw: arg max and top probability of the uncalibrated outputs;
        # class order is the spec's (the answers name the class)
        if classes is None:
            classes = class_order(ans, outs)
        rhit, rconf, brier = [], [], 0.0
        for o, t in zip(outs, y):
            k = max(range(len(o)), key=lambda j: o[j])
            rhit.append(classes[k] == t)
            rconf.append(o[k])
            brier += sum((o[j] - (classes[j] == t)) ** 2
                         for j in range(len(o)))
        print("unseen %s v%s: n=%d accuracy=%.4f ece_raw=%.4f ece=%.4f "
              "brier_raw=%.4f mean_conf_raw=%.4f mean_conf=%.4f "
              "raw_accuracy=%.4f" %
              (model, v, n, sum(hit) / n, ece(rconf, rhit), ece(conf, hit),
               brier / n, sum(rconf) / n, sum(conf) / n, sum(rhit) / n))
        sys.stdout.flush()


def version_dir(model, v):
    reg = os.environ.get("MLOPSD_MODELS_REGISTRY_DIR")
    if not reg:
        sys.exit("unseen: set MLOPSD_MODELS_REGISTRY_DIR (a folder registry)")
    return os.path.join(reg, model, "versions", str(v))


def raw_outputs(mlopsd, ref, rows, env):
    """Class probabilities of every row from --print-rows (in blocks: a
    request holds at most 4,096 items)."""
    outs = []
    for i in range(0, len(rows), CHUNK):
        body = json.dumps({"data": rows[i:i + CHUNK]})
        env["MLOPSD_SERVER_MAX_BODY_BYTES"] = str(len(body) + 4096)
        raw = subprocess.run([mlopsd, "predict", ref, "--file", "-",
                              "--print-rows"], input=body,
                             capture_output=True, text=True, env=env)
        if raw.returncode:
            sys.exit("unseen: mlopsd predict %s --print-rows: exit %d: %s" %
                     (ref, raw.returncode,
                      (raw.stdout + raw.stderr).strip()[:500]))
        outs += json.loads(raw.stdout)["outputs"]
    return outs


def meta_classes(model, v):
    """The class of each output column: meta.json's classes (the spec's
    order), when the registry is a folder; else None."""
    p = os.path.join(version_dir(model, v), "meta.json")
    try:
        return json.load(open(p))["classes"]
    except (OSError, KeyError, ValueError):
        return None


def class_order(ans, outs):
    """The class of each output column, from rows where the answer names
    the arg max (calibration keeps the arg max)."""
    order = {}
    for a, o in zip(ans, outs):
        k = max(range(len(o)), key=lambda j: o[j])
        order.setdefault(k, a["predict"])
        if len(order) == len(o):
            break
    if len(order) != len(outs[0]):
        sys.exit("unseen: cannot tell the class of every output column")
    return [order[j] for j in range(len(outs[0]))]


if __name__ == "__main__":
    main()
