#!/bin/bash
# test_k8s_manifest.sh - docs/k8s/mlopsd.yaml (the Kubernetes example of
# docs/scale-out.md) is well formed: every document parses (python3-yaml),
# has apiVersion/kind/metadata.name; there are a ConfigMap, a Secret, an
# api and a scheduler Deployment (serve --role, /readyz readiness and
# /healthz liveness probes on a declared port, secrets from the Secret's
# keys), a Service selecting the api pods; the ConfigMap's mlopsd.yaml
# uses only keys of docs/configuration.md.  No cluster runs here.
. "$(dirname "$0")/../lib.sh"
cd "${MLOPSD_SRC:-$(dirname "$0")/../..}" || exit 1
T=$(mktemp -d /tmp/it_k8s.XXXXXX); trap 'rm -rf "$T"' EXIT
scenario manifest
python3 - docs/k8s/mlopsd.yaml docs/configuration.md >"$T/out" 2>&1 <<'EOF'
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
keys = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", open(sys.argv[2]).read(), re.M))
def ok(name, cond):
    print(("ok " if cond else "not ok ") + name)
by = {}
for d in docs:
    ok("has apiVersion, kind, metadata.name %s" % d.get("kind"),
       all(k in d for k in ("apiVersion", "kind", "metadata")) and d["metadata"].get("name"))
    by.setdefault(d["kind"], []).append(d)
for k in ("ConfigMap", "Secret", "Deployment", "Service", "PersistentVolumeClaim"):
    ok("kind " + k, k in by)
cm = by["ConfigMap"][0]
conf = yaml.safe_load(cm["data"]["mlopsd.yaml"])
used = {"%s.%s" % (s, k) for s, m in conf.items() for k in m}
ok("config keys documented: %s" % sorted(used - keys), used <= keys)
secret_keys = set(by["Secret"][0].get("stringData", {}))
roles = {}
for dep in by["Deployment"]:
    spec = dep["spec"]
    tl = spec["template"]["metadata"]["labels"]
    ok("%s selector matches its pods" % dep["metadata"]["name"],
       all(tl.get(k) == v for k, v in spec["selector"]["matchLabels"].items()))
    c = spec["template"]["spec"]["containers"][0]
    args = c.get("args", [])
    role = args[args.index("--role") + 1] if "--role" in args else None
    roles[role] = dep
    ports = {p.get("name") for p in c.get("ports", [])}
    rp, lp = c.get("readinessProbe", {}), c.get("livenessProbe", {})
    ok("%s readiness /readyz" % role, rp.get("httpGet", {}).get("path") == "/readyz"
       and rp["httpGet"].get("port") in ports)
    ok("%s liveness /healthz" % role, lp.get("httpGet", {}).get("path") == "/healthz"
       and lp["httpGet"].get("port") in ports)
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            ok("%s env %s from the Secret" % (role, e["name"]),
               ref["name"] == by["Secret"][0]["metadata"]["name"] and ref["key"] in secret_keys)
    vols = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
    ok("%s mounts declared volumes" % role,
       all(m["name"] in vols for m in c.get("volumeMounts", [])))
ok("roles api and scheduler", set(roles) == {"api", "scheduler"})
svc = by["Service"][0]["spec"]
api_labels = roles["api"]["spec"]["template"]["metadata"]["labels"]
sched_labels = roles["scheduler"]["spec"]["template"]["metadata"]["labels"]
ok("service selects the api pods",
   all(api_labels.get(k) == v for k, v in svc["selector"].items()))
ok("service does not select schedulers",
   not all(sched_labels.get(k) == v for k, v in svc["selector"].items()))
EOF
cat "$T/out"
if grep -q '^not ok' "$T/out" || ! grep -q '^ok' "$T/out"; then bad manifest_checks; else ok manifest_checks; fi
tl_done
