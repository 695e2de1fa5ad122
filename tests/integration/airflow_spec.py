#!/usr/bin/env python3
"""airflow_spec.py BASE_URL TOKEN SPEC_YAML - mlopsd's /api/v2 against
Apache Airflow's OpenAPI spec (run by test_airflow_spec.sh on the fixture
of test_admin: DAGs it_etl and it_monitor, runs RUN_OK / RUN_BAD /
RUN_LIVE of it_etl).

Every request names the spec's route (method + path template); the answer's
status must be one the spec lists for that route and the body must
validate against the spec's schema for it (Draft 2020-12, the spec's $refs
resolved, date-time and uuid formats checked).  Behaviour checks (filters, paging, status codes) ride on the
same requests.  Prints one "ok NAME" / "not ok NAME" per check, a
scenario per route, the list of routes checked, and last
"spec: N passed, N failed" (the scenario counts).
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import re
import uuid

import jsonschema
import yaml

BASE, TOKEN, SPEC_PATH = sys.argv[1], sys.argv[2], sys.argv[3]
DAG = "it_etl"
RUN_OK = "scheduled__2025-08-30T03:00:00+09:00"
RUN_BAD = "scheduled__2025-08-31T03:00:00+09:00"
RUN_LIVE = "manual__2025-09-05T00:00:00+09:00"

with open(SPEC_PATH) as f:
    SPEC = yaml.safe_load(f)
URN = "urn:airflow-spec"

# The formats the spec's response schemas use, checked here so the test
# does not depend on jsonschema's optional format packages.
FORMATS = jsonschema.FormatChecker(formats=())
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?"
                     r"([Zz]|[+-]\d{2}:\d{2})$")


@FORMATS.checks("date-time")
def is_date_time(v):
    return not isinstance(v, str) or RFC3339.match(v) is not None


@FORMATS.checks("uuid", raises=ValueError)
def is_uuid(v):
    return not isinstance(v, str) or uuid.UUID(v) is not None


def validator(ref):
    """A Draft 2020-12 validator of {"$ref": ref} with the spec's refs
    resolved: through `referencing` (jsonschema >= 4.18) or RefResolver
    (Debian 12's 4.10)."""
    cls = jsonschema.Draft202012Validator
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
    except ImportError:
        res = jsonschema.RefResolver(URN, SPEC, store={URN: SPEC})
        return cls({"$ref": ref}, resolver=res, format_checker=FORMATS)
    reg = Registry().with_resource(
        URN, Resource.from_contents(SPEC, default_specification=DRAFT202012))
    return cls({"$ref": ref}, registry=reg, format_checker=FORMATS)

checked = {}  # "METHOD template" -> set of statuses seen
scen = {"name": None, "failed": 0, "checks": 0}
counts = {"pass": 0, "fail": 0}


def close_scenario():
    if scen["name"] is None:
        return
    if scen["failed"]:
        counts["fail"] += 1
        print(f"not ok scenario {scen['name']} "
              f"({scen['failed']} of {scen['checks']} checks failed)")
    elif scen["checks"]:
        counts["pass"] += 1
    scen.update(name=None, failed=0, checks=0)


def scenario(name):
    close_scenario()
    scen["name"] = name
    print(f"## {name}")


def ok(name, cond, why=""):
    scen["checks"] += 1
    if cond:
        print(f"ok {name}")
    else:
        scen["failed"] += 1
        print(f"not ok {name}" + (f": {why}" if why else ""))
    return cond


def pointer(*parts):
    return "/".join(str(p).replace("~", "~0").replace("/", "~1")
                    for p in parts)


def http(method, path, query=None, body=None, token=True, headers=None):
    url = BASE + path
    if query:
        url += "?" + urllib.parse.urlencode(query, doseq=True)
    data = None
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + TOKEN
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def call(method, template, params=None, query=None, body=None, want=200,
         name=None):
    """One request to the spec route METHOD TEMPLATE; checks the status
    (want) and validates the body against the spec's schema for it.
    Returns the parsed body (None when it is not JSON)."""
    params = params or {}
    path = template
    for k, v in params.items():
        path = path.replace("{" + k + "}", urllib.parse.quote(str(v), safe=""))
    label = name or f"{method} {template}"
    status, raw, _ = http(method, path, query, body)
    checked.setdefault(f"{method} {template}", set()).add(status)
    ok(f"{label} status {want}", status == want,
       f"got {status}: {raw[:300]!r}")
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        ok(f"{label} JSON body", False, repr(raw[:200]))
        return None
    op = SPEC["paths"].get(template, {}).get(method.lower())
    if not ok(f"{label} route in spec", op is not None):
        return doc
    resp = op.get("responses", {}).get(str(status))
    if not ok(f"{label} status {status} documented", resp is not None,
              f"spec lists {sorted(op.get('responses', {}))}"):
        return doc
    content = resp.get("content", {}).get("application/json")
    if content is None or "schema" not in content:
        return doc
    ref = URN + "#/" + pointer("paths", template, method.lower(), "responses",
                               str(status), "content", "application/json",
                               "schema")
    v = validator(ref)
    errs = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    why = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: "
                    f"{e.message[:160]}" for e in errs[:8])
    if len(errs) > 8:
        why += f"; ... {len(errs)} errors"
    ok(f"{label} body validates", not errs, why)
    return doc


def main():
    R = "/api/v2/dags/{dag_id}/dagRuns"
    TI = R + "/{dag_run_id}/taskInstances"

    scenario("dags")
    d = call("GET", "/api/v2/dags")
    if d:
        ok("dags lists it_etl",
           any(x.get("dag_id") == DAG for x in d.get("dags", [])))
    call("GET", "/api/v2/dags/{dag_id}", {"dag_id": DAG})
    call("GET", "/api/v2/dags/{dag_id}", {"dag_id": "no_such_dag"}, want=404,
         name="GET dag unknown")
    call("PATCH", "/api/v2/dags/{dag_id}", {"dag_id": DAG},
         body={"is_paused": True})

    scenario("dag_runs")
    d = call("GET", R, {"dag_id": DAG})
    if d:
        ok("three runs", d.get("total_entries") == 3, str(d.get("total_entries")))
    call("GET", R + "/{dag_run_id}", {"dag_id": DAG, "dag_run_id": RUN_OK})
    call("GET", R + "/{dag_run_id}", {"dag_id": DAG, "dag_run_id": "nope"},
         want=404, name="GET dagRun unknown")

    scenario("trigger")
    call("POST", R, {"dag_id": DAG},
         body={"logical_date": "2025-07-01T00:00:00Z", "conf": {"k": 1}})
    call("POST", R, {"dag_id": DAG},
         body={"logical_date": "2025-07-01T00:00:00Z"}, want=409,
         name="POST dagRuns duplicate")
    call("POST", R, {"dag_id": "no_such_dag"},
         body={"logical_date": "2025-07-01T00:00:00Z"}, want=404,
         name="POST dagRuns unknown DAG")

    scenario("task_instances")
    call("GET", TI, {"dag_id": DAG, "dag_run_id": RUN_BAD})
    call("GET", TI + "/{task_id}",
         {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "transform"})
    call("GET", TI + "/{task_id}",
         {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "nope"}, want=404,
         name="GET taskInstance unknown")

    scenario("logs")
    d = call("GET", TI + "/{task_id}/logs/{try_number}",
             {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "transform",
              "try_number": 2})
    if d:
        ok("log has 3 lines", len(d.get("content", [])) == 3)
    call("GET", TI + "/{task_id}/logs/{try_number}",
         {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "transform",
          "try_number": 9}, want=404, name="GET log attempt unknown")

    close_scenario()
    print("routes checked against the spec (method template: statuses):")
    for k in sorted(checked):
        print(f"  {k}: {', '.join(map(str, sorted(checked[k])))}")
    print(f"spec: {counts['pass']} passed, {counts['fail']} failed")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
