#!/usr/bin/env python3
"""openapi_check.py BASE_URL TOKEN SPEC_YAML - GET /openapi.json of a
daemon on the test_admin fixture (run by test_airflow_spec.sh):

- it is an OpenAPI 3.1 document: a JSON Schema of the document's
  structure (below: openapi, info, paths of operations with responses,
  path parameters declared for every {name} of the template, unique
  operationIds), every schema in it a valid JSON Schema 2020-12, and
  openapi-spec-validator's verdict where that package is installed;
- /predict's request body is the model spec's fields (SPEC_YAML): every
  feature, numeric bounds, integer, categorical allowed values;
- every documented route answers something other than 404 (GET with the
  fixture's ids; other methods with a malformed body, so nothing changes).

Prints "ok NAME" / "not ok NAME" and last "openapi: N passed, N failed".
"""
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import yaml

BASE, TOKEN, SPEC_YAML = sys.argv[1], sys.argv[2], sys.argv[3]
counts = {"pass": 0, "fail": 0}

IDS = {"dag_id": "it_etl", "run_id": "scheduled__2025-08-30T03:00:00+09:00",
       "task_id": "extract", "try_number": "1",
       "name": "credit_score_classification", "version": "1",
       "file": "app.js"}


def ok(name, cond, why=""):
    counts["pass" if cond else "fail"] += 1
    print(f"ok {name}" if cond else f"not ok {name}" + (f": {why}" if why else ""))
    return cond


def http(method, path, body=None):
    h = {"Authorization": "Bearer " + TOKEN}
    if body is not None:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE + path, data=body, method=method,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# The structure of an OpenAPI 3.1 document, as far as mlopsd uses it.
SCHEMA_OBJ = {"type": ["object", "boolean"]}
MEDIA = {"type": "object", "properties": {"schema": SCHEMA_OBJ}}
CONTENT = {"type": "object", "additionalProperties": MEDIA}
OAS = {
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"},
        "info": {"type": "object", "required": ["title", "version"],
                 "properties": {"title": {"type": "string"},
                                "version": {"type": "string"}}},
        "paths": {
            "type": "object",
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {
                "type": "object",
                "propertyNames": {"enum": ["get", "put", "post", "delete",
                                           "options", "head", "patch",
                                           "trace", "summary",
                                           "description", "parameters"]},
                "additionalProperties": {
                    "type": "object",
                    "required": ["responses"],
                    "properties": {
                        "operationId": {"type": "string"},
                        "summary": {"type": "string"},
                        "tags": {"type": "array",
                                 "items": {"type": "string"}},
                        "parameters": {"type": "array", "items": {
                            "type": "object", "required": ["name", "in"],
                            "properties": {
                                "in": {"enum": ["path", "query", "header",
                                                "cookie"]},
                                "required": {"type": "boolean"},
                                "schema": SCHEMA_OBJ}}},
                        "requestBody": {"type": "object",
                                        "required": ["content"],
                                        "properties": {"content": CONTENT}},
                        "responses": {
                            "type": "object", "minProperties": 1,
                            "propertyNames": {
                                "pattern": "^([1-5][0-9X]{2}|default)$"},
                            "additionalProperties": {
                                "type": "object",
                                "required": ["description"],
                                "properties": {"content": CONTENT}}},
                        "security": {"type": "array"}}}}},
        "components": {"type": "object", "properties": {
            "schemas": {"type": "object", "additionalProperties": SCHEMA_OBJ},
            "securitySchemes": {"type": "object"}}},
    },
}


def schemas_in(doc):
    """Every schema object of the document (components, parameters,
    bodies, answers)."""
    for s in doc.get("components", {}).get("schemas", {}).values():
        yield s
    for item in doc["paths"].values():
        for op in item.values():
            for p in op.get("parameters", []):
                yield p.get("schema", {})
            for part in [op.get("requestBody", {})] + list(
                    op.get("responses", {}).values()):
                for m in part.get("content", {}).values():
                    yield m.get("schema", {})


def main():
    st, raw = http("GET", "/openapi.json")
    ok("openapi.json 200", st == 200, str(st))
    try:
        doc = json.loads(raw)
    except ValueError:
        ok("openapi.json is JSON", False, repr(raw[:200]))
        return 1
    errs = list(jsonschema.Draft202012Validator(OAS).iter_errors(doc))
    ok("document structure (OpenAPI 3.1)", not errs,
       "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:120]}"
                 for e in errs[:5]))
    bad = []
    for s in schemas_in(doc):
        try:
            jsonschema.Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            bad.append(e.message[:120])
    ok("every schema is valid JSON Schema 2020-12", not bad, "; ".join(bad[:3]))
    opids, dup, undeclared = set(), [], []
    for path, item in doc["paths"].items():
        names = re.findall(r"\{([^}]+)\}", path)
        for m, op in item.items():
            if op.get("operationId") in opids:
                dup.append(op["operationId"])
            opids.add(op.get("operationId"))
            declared = {p["name"] for p in op.get("parameters", [])
                        if p["in"] == "path" and p.get("required")}
            if set(names) != declared:
                undeclared.append(f"{m} {path}")
    ok("operationIds unique", not dup, str(dup[:3]))
    ok("path parameters declared", not undeclared, str(undeclared[:3]))
    try:
        from openapi_spec_validator import validate
    except ImportError:
        print("note: openapi-spec-validator is not installed here; the "
              "structural checks above stand in for it")
    else:
        try:
            validate(doc)
            ok("openapi-spec-validator", True)
        except Exception as e:  # its error types differ between versions
            ok("openapi-spec-validator", False, str(e)[:300])

    # /predict's body from the model spec
    spec = yaml.safe_load(open(SPEC_YAML))
    item = doc.get("components", {}).get("schemas", {}).get("PredictItem", {})
    body = (doc["paths"].get("/predict", {}).get("post", {})
            .get("requestBody", {}).get("content", {})
            .get("application/json", {}).get("schema", {}))
    ok("/predict documented with a data body",
       "data" in body.get("properties", {}))
    ex = body.get("properties", {}).get("explain", {}).get("oneOf", [])
    topk = [o.get("properties", {}).get("top_k", {}) for o in ex
            if o.get("type") == "object"]
    ok("/predict documents explain (boolean or {top_k})",
       any("boolean" in (o.get("type") or []) for o in ex) and topk and
       topk[0].get("type") == "integer" and topk[0].get("minimum") == 1,
       str(ex)[:200])
    qp = [p.get("name") for p in (doc["paths"].get("/predict", {})
                                  .get("post", {}).get("parameters", []))
          if p.get("in") == "query"]
    ok("/predict documents ?explain", "explain" in qp, str(qp))
    props = item.get("properties", {})
    feats = spec["features"]
    want = [f["name"] for k in ("numeric", "categorical", "text")
            for f in feats.get(k, []) or []]
    missing = [n for n in want if n not in props]
    ok("every spec field in PredictItem", want and not missing,
       f"missing {missing[:5]}")
    for f in feats.get("numeric", []) or []:
        p = props.get(f["name"], {})
        t = p.get("type", [])
        if f.get("integer"):
            ok(f"{f['name']} integer", "integer" in t, str(t))
        if "gt" in f:
            ok(f"{f['name']} exclusiveMinimum",
               p.get("exclusiveMinimum") == f["gt"], str(p))
        for k, jk in (("ge", "minimum"), ("min", "minimum"),
                      ("le", "maximum"), ("max", "maximum")):
            if k in f:
                ok(f"{f['name']} {jk}", p.get(jk) == f[k], str(p))
    for f in feats.get("categorical", []) or []:
        allowed = f.get("allowed") or f.get("values")
        if allowed:
            en = [v for v in props.get(f["name"], {}).get("enum", [])
                  if v is not None]
            ok(f"{f['name']} allowed values", en == [str(v) for v in allowed],
               f"{en} vs {allowed}")
    ok("documented routes include the console link target",
       "/openapi.json" in doc["paths"])

    # every documented route answers (not 404)
    answered = []
    for path, item in sorted(doc["paths"].items()):
        for m in item:
            concrete = re.sub(r"\{([^}]+)\}",
                              lambda g: urllib.parse.quote(IDS.get(g.group(1),
                                                                   "x"),
                                                           safe=""), path)
            body = None if m == "get" else b'{"malformed": '
            st, raw = http(m.upper(), concrete, body)
            answered.append(f"{m.upper()} {path}: {st}")
            ok(f"{m.upper()} {path} answers", st != 404,
               f"{st} {raw[:160]!r}")
    print("routes documented and probed:")
    for a in answered:
        print("  " + a)
    print(f"openapi: {counts['pass']} passed, {counts['fail']} failed")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
