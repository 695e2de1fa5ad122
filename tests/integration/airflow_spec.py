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
import time
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
    d = call("POST", R, {"dag_id": DAG},
             body={"logical_date": "2025-07-02T00:00:00Z", "dag_run_id": None,
                   "note": "from a client"},
             name="POST dagRuns dag_run_id null, note")
    ok("trigger stores the note", d and d.get("note") == "from a client")
    for bad in ("n" * 1001, 5):
        d = call("POST", R, {"dag_id": DAG},
                 body={"logical_date": "2025-07-09T00:00:00Z", "note": bad},
                 want=422, name="POST dagRuns bad note")
        ok("bad note named", d and [tuple(x["loc"]) for x in d["detail"]] ==
           [("body", "note")], str(d)[:300])
    d = call("POST", R, {"dag_id": DAG},
             body={"logical_date": "2025-07-03T00:00:00Z",
                   "dag_run_id": "client named run"},
             name="POST dagRuns dag_run_id given")
    ok("the client's dag_run_id kept",
       d and d.get("dag_run_id") == "client named run", str(d)[:200])
    d = call("GET", R + "/{dag_run_id}",
             {"dag_id": DAG, "dag_run_id": "client named run"},
             name="GET dagRun by the client's id")
    d = call("POST", R, {"dag_id": DAG},
             body={"logical_date": "2025-07-04T00:00:00Z",
                   "dag_run_id": "client named run"}, want=409,
             name="POST dagRuns dag_run_id taken")
    ok("409 names the run with that id", d and (d.get("dag_run") or {})
       .get("logical_date", "").startswith("2025-07-03"), str(d)[:200])
    d = call("GET", R, {"dag_id": DAG},
             {"logical_date_gte": "2025-07-04T00:00:00Z",
              "logical_date_lte": "2025-07-04T23:00:00Z"},
             name="GET dagRuns after a taken id")
    ok("a refused rename left no run", d and d["total_entries"] == 0,
       str(d and d["total_entries"]))
    # Airflow 3: no logical date is a run without one, at run_after = now
    d = call("POST", R, {"dag_id": "it_monitor"}, body={"logical_date": None},
             name="POST dagRuns logical_date null")
    ok("logical_date null stays null", d and d.get("logical_date") is None
       and d.get("data_interval_start") is None, str(d)[:300])
    ok("run_after is the trigger's instant", d and
       d.get("run_after", "").startswith(time.strftime("%Y-%m-%d",
                                                       time.gmtime())),
       str(d)[:300])
    d2 = call("POST", R, {"dag_id": "it_monitor"}, body={},
              name="POST dagRuns no date")
    # two triggers without a date are two runs, even within one second
    ok("second trigger without a date: a run of its own", d and d2 and
       d2.get("logical_date") is None and
       d2.get("dag_run_id") != d.get("dag_run_id"), str(d2)[:300])
    d = call("POST", R, {"dag_id": "it_monitor"},
             body={"logical_date": None, "run_after": "2025-07-06T00:00:00Z"},
             name="POST dagRuns run_after given")
    ok("run_after given is kept", d and d.get("logical_date") is None and
       d.get("run_after") == "2025-07-06T00:00:00Z", str(d)[:300])
    d = call("GET", R + "/{dag_run_id}",
             {"dag_id": "it_monitor", "dag_run_id": (d or {}).get("dag_run_id")},
             name="GET dagRun without a logical date")
    ok("a stored null logical date reads back null",
       d and d.get("logical_date") is None, str(d)[:300])
    # fractions of a second are kept (Airflow answers microseconds)
    d = call("POST", R, {"dag_id": DAG},
             body={"logical_date": "2025-07-05T01:02:03.25Z"},
             name="POST dagRuns with milliseconds")
    ok("milliseconds kept", d and d.get("logical_date") ==
       "2025-07-05T01:02:03.250000Z" and
       ".250000" in d.get("dag_run_id", ""), str(d)[:300])
    d = call("POST", R, {"dag_id": DAG},
             body={"logical_date": "2025-07-05T01:02:03.5Z"},
             name="POST dagRuns another fraction of that second")
    ok("another fraction of the same second is another run",
       d and d.get("logical_date") == "2025-07-05T01:02:03.500000Z",
       str(d)[:300])
    call("POST", R, {"dag_id": DAG},
         body={"logical_date": "2025-07-05T01:02:03.250Z"}, want=409,
         name="POST dagRuns same fraction again")
    d = call("POST", R, {"dag_id": DAG},
             body={"logical_date": None, "run_after": "yesterday"}, want=422,
             name="POST dagRuns bad run_after")
    ok("422 names run_after", d and d["detail"][0]["loc"] ==
       ["body", "run_after"], str(d))
    d = call("POST", R, {"dag_id": DAG}, body={"logical_date": "2025-02-30"},
             want=422, name="POST dagRuns bad date")
    ok("422 names the field", d and d["detail"][0]["loc"] ==
       ["body", "logical_date"], str(d))
    call("POST", R, {"dag_id": DAG}, body=b"{\"logical_date\": ", want=422,
         name="POST dagRuns bad JSON")
    call("POST", R, {"dag_id": "no_such_dag"},
         body={"logical_date": "2025-07-01T00:00:00Z"}, want=404,
         name="POST dagRuns unknown DAG")

    scenario("dag_runs_query")
    ids = lambda d: [r["dag_run_id"] for r in (d or {}).get("dag_runs", [])]
    p0 = call("GET", R, {"dag_id": DAG}, {"limit": 1, "offset": 0},
              name="dagRuns limit=1 offset=0")
    p1 = call("GET", R, {"dag_id": DAG}, {"limit": 1, "offset": 1},
              name="dagRuns limit=1 offset=1")
    ok("offset moves the page", len(ids(p0)) == 1 and len(ids(p1)) == 1
       and ids(p0) != ids(p1), f"{ids(p0)} {ids(p1)}")
    d = call("GET", R, {"dag_id": DAG}, {"state": "failed"},
             name="dagRuns state=failed")
    ok("state filter", ids(d) == [RUN_BAD] and d["total_entries"] == 1,
       str(ids(d)))
    d = call("GET", R, {"dag_id": DAG}, {"state": ["failed", "success"]},
             name="dagRuns state=failed&state=success")
    ok("repeated state", sorted(ids(d)) == sorted([RUN_OK, RUN_BAD]),
       str(ids(d)))
    d = call("GET", R, {"dag_id": DAG}, {"run_type": "manual"},
             name="dagRuns run_type=manual")
    ok("run_type filter", d and all(r["run_type"] == "manual"
                                    for r in d["dag_runs"]) and d["dag_runs"])
    d = call("GET", R, {"dag_id": DAG}, {"order_by": "logical_date"},
             name="dagRuns order_by=logical_date")
    lds = [r["logical_date"] for r in (d or {}).get("dag_runs", [])]
    ok("order_by ascending", lds == sorted(lds) and len(lds) >= 3, str(lds))
    d = call("GET", R, {"dag_id": DAG}, {"order_by": "-logical_date"},
             name="dagRuns order_by=-logical_date")
    lds = [r["logical_date"] for r in (d or {}).get("dag_runs", [])]
    ok("order_by descending", lds == sorted(lds, reverse=True), str(lds))
    d = call("GET", R, {"dag_id": DAG},
             {"logical_date_gte": "2025-08-30T00:00:00Z",
              "logical_date_lte": "2025-08-31T00:00:00Z"},
             name="dagRuns logical_date range")
    ok("date range", ids(d) == [RUN_BAD], str(ids(d)))
    d = call("GET", R, {"dag_id": "~"}, {"limit": 100},
             name="dagRuns of every DAG (~)")
    ok("~ lists runs", d and d["total_entries"] >= 3)
    for q, nm in (({"state": "bogus"}, "state=bogus"),
                  ({"limit": -1}, "limit=-1"),
                  ({"order_by": "secret"}, "order_by=secret"),
                  ({"start_date_gte": "yesterday"}, "start_date_gte=bad")):
        d = call("GET", R, {"dag_id": DAG}, q, want=422,
                 name=f"dagRuns {nm}")
        ok(f"{nm} says where", d and d["detail"] and
           d["detail"][0]["loc"][0] == "query")
    d = call("GET", R, {"dag_id": DAG}, {"limit": 0}, name="dagRuns limit=0")
    ok("limit=0 gives an empty page", d and d["dag_runs"] == []
       and d["total_entries"] >= 3)

    scenario("dags_query")
    dag_ids = lambda d: [x["dag_id"] for x in (d or {}).get("dags", [])]
    d = call("GET", "/api/v2/dags", query={"paused": "true"},
             name="dags paused=true")
    ok("paused filter", DAG in dag_ids(d) and "it_monitor" not in dag_ids(d),
       str(dag_ids(d)))
    d = call("GET", "/api/v2/dags", query={"tags": "etl"}, name="dags tags=etl")
    ok("tags filter", dag_ids(d) == [DAG], str(dag_ids(d)))
    d = call("GET", "/api/v2/dags", query={"dag_id_pattern": "it_m%"},
             name="dags dag_id_pattern")
    ok("pattern filter", dag_ids(d) == ["it_monitor"], str(dag_ids(d)))
    d = call("GET", "/api/v2/dags", query={"limit": 1, "offset": 1},
             name="dags limit=1 offset=1")
    ok("dags offset", len(dag_ids(d)) == 1 and d["total_entries"] >= 2)
    d = call("GET", "/api/v2/dags", query={"order_by": "-dag_id"},
             name="dags order_by=-dag_id")
    ok("dags descending", dag_ids(d) == sorted(dag_ids(d), reverse=True)
       and len(dag_ids(d)) >= 2)
    call("GET", "/api/v2/dags", query={"paused": "maybe"}, want=422,
         name="dags paused=maybe")
    call("PATCH", "/api/v2/dags/{dag_id}", {"dag_id": DAG},
         body={"is_paused": "yes"}, want=422, name="PATCH dag bad body")

    scenario("task_instances")
    call("GET", TI, {"dag_id": DAG, "dag_run_id": RUN_BAD})
    call("GET", TI + "/{task_id}",
         {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "transform"})
    call("GET", TI + "/{task_id}",
         {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "nope"}, want=404,
         name="GET taskInstance unknown")

    scenario("task_instances_query")
    d = call("GET", TI, {"dag_id": DAG, "dag_run_id": RUN_BAD},
             {"state": "failed"}, name="taskInstances state=failed")
    ok("ti state filter", d and [t["task_id"] for t in d["task_instances"]]
       == ["transform"])
    d = call("GET", TI, {"dag_id": "~", "dag_run_id": "~"}, {"limit": 100},
             name="taskInstances of every run (~/~)")
    ok("~/~ lists all", d and d["total_entries"] >= 9, str(d and d["total_entries"]))
    d = call("GET", TI, {"dag_id": DAG, "dag_run_id": "~"},
             {"task_id": "load"}, name="taskInstances ~ run, task_id=load")
    ok("~ run with task_id", d and d["total_entries"] >= 3 and
       all(t["task_id"] == "load" for t in d["task_instances"]))
    call("GET", TI, {"dag_id": DAG, "dag_run_id": RUN_BAD},
         {"state": "nope"}, want=422, name="taskInstances state=nope")

    scenario("logs")
    d = call("GET", TI + "/{task_id}/logs/{try_number}",
             {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "transform",
              "try_number": 2})
    if d:
        ok("log has 3 lines", len(d.get("content", [])) == 3)
        tok = d.get("continuation_token")
        d2 = call("GET", TI + "/{task_id}/logs/{try_number}",
                  {"dag_id": DAG, "dag_run_id": RUN_BAD,
                   "task_id": "transform", "try_number": 2}, {"token": tok},
                  name="GET log token=")
        ok("token: nothing new after the last line",
           d2 is not None and d2.get("content") == [], str(d2)[:200])
        d3 = call("GET", TI + "/{task_id}/logs/{try_number}",
                  {"dag_id": DAG, "dag_run_id": RUN_BAD,
                   "task_id": "transform", "try_number": 2},
                  {"limit": 1}, name="GET log limit=1")
        d4 = call("GET", TI + "/{task_id}/logs/{try_number}",
                  {"dag_id": DAG, "dag_run_id": RUN_BAD,
                   "task_id": "transform", "try_number": 2},
                  {"token": (d3 or {}).get("continuation_token")},
                  name="GET log token=first line")
        ok("token continues after the first line",
           d4 and len(d4["content"]) == 2 and d3 and
           d4["content"][0]["event"] != d3["content"][0]["event"])
    call("GET", TI + "/{task_id}/logs/{try_number}",
         {"dag_id": DAG, "dag_run_id": RUN_BAD, "task_id": "transform",
          "try_number": 9}, want=404, name="GET log attempt unknown")

    scenario("describe")
    d = call("GET", "/api/v2/version")
    ok("version is mlopsd's", d and d.get("server") == "mlopsd")
    d = call("GET", "/api/v2/monitor/health")
    ok("metadatabase healthy", d and d["metadatabase"]["status"] == "healthy")
    d = call("GET", "/api/v2/dags/{dag_id}/details", {"dag_id": DAG})
    ok("details: start_date and timezone", d and d.get("start_date")
       and d.get("timezone") and d.get("latest_dag_version"))
    call("GET", "/api/v2/dags/{dag_id}/details", {"dag_id": "nope"},
         want=404, name="GET details unknown")
    d = call("GET", "/api/v2/dags/{dag_id}/tasks", {"dag_id": DAG})
    ok("tasks in order", d and [t["task_id"] for t in d["tasks"]] ==
       ["extract", "transform", "load"])
    ok("downstream ids", d and d["tasks"][0]["downstream_task_ids"] ==
       ["transform"])
    d = call("GET", "/api/v2/dags/{dag_id}/tasks", {"dag_id": DAG},
             {"order_by": "task_id"}, name="GET tasks order_by=task_id")
    got = [t["task_id"] for t in (d or {}).get("tasks", [])]
    ok("tasks sorted", got == ["extract", "load", "transform"], str(got))
    call("GET", "/api/v2/dags/{dag_id}/tasks/{task_id}",
         {"dag_id": DAG, "task_id": "load"})
    call("GET", "/api/v2/dags/{dag_id}/tasks/{task_id}",
         {"dag_id": DAG, "task_id": "nope"}, want=404, name="GET task unknown")
    call("GET", "/api/v2/importErrors")
    d = call("GET", "/api/v2/dagStats")
    st = {x["dag_id"]: {y["state"]: y["count"] for y in x["stats"]}
          for x in (d or {}).get("dags", [])}
    ok("dagStats counts", st.get(DAG, {}).get("failed") == 1 and
       st.get(DAG, {}).get("success", 0) >= 1 and "it_monitor" in st, str(st))
    d = call("GET", "/api/v2/dagStats", query={"dag_ids": "it_monitor"},
             name="GET dagStats dag_ids")
    ok("dagStats filter", d and [x["dag_id"] for x in d["dags"]] ==
       ["it_monitor"])

    scenario("runs_batch")
    L = "/api/v2/dags/{dag_id}/dagRuns/list"
    d = call("POST", L, {"dag_id": "~"},
             body={"states": ["failed"], "dag_ids": [DAG]})
    ok("batch filter", d and [r["dag_run_id"] for r in d["dag_runs"]] ==
       [RUN_BAD], str(d)[:200])
    d = call("POST", L, {"dag_id": "~"},
             body={"page_limit": 1, "page_offset": 1, "order_by": "logical_date"},
             name="POST dagRuns/list page")
    ok("batch page", d and len(d["dag_runs"]) == 1 and d["total_entries"] >= 3)
    call("POST", L, {"dag_id": "~"}, body={"states": ["nope"]}, want=422,
         name="POST dagRuns/list bad state")
    d = call("POST", L, {"dag_id": "~"},
             body={"order_by": "-nope", "page_limit": -1}, want=422,
             name="POST dagRuns/list bad order_by")
    ok("batch 422 names body fields", d and sorted(
        tuple(x["loc"]) for x in d["detail"]) ==
       [("body", "order_by"), ("body", "page_limit")], str(d)[:300])
    d = call("POST", L, {"dag_id": "~"},
             body={"order_by": "-run_after", "page_limit": 2},
             name="POST dagRuns/list newest first")
    ok("batch order desc", d and len(d["dag_runs"]) == 2 and
       d["dag_runs"][0]["run_after"] > d["dag_runs"][1]["run_after"],
       str(d)[:300])
    call("POST", L, {"dag_id": "no_such_dag"}, body={}, want=404,
         name="POST dagRuns/list unknown DAG")

    scenario("run_patch_and_clear")
    P = R + "/{dag_run_id}"
    d = call("PATCH", P, {"dag_id": DAG, "dag_run_id": RUN_OK},
             body={"note": "checked by hand"})
    ok("note stored", d and d.get("note") == "checked by hand")
    d = call("GET", P, {"dag_id": DAG, "dag_run_id": RUN_OK},
             name="GET dagRun after note")
    ok("note kept", d and d.get("note") == "checked by hand")
    call("PATCH", P, {"dag_id": DAG, "dag_run_id": RUN_OK},
         body={"state": "running"}, want=422, name="PATCH dagRun bad state")
    call("PATCH", P, {"dag_id": DAG, "dag_run_id": "nope"},
         body={"note": "x"}, want=404, name="PATCH dagRun unknown")
    d = call("PATCH", P, {"dag_id": DAG, "dag_run_id": RUN_OK},
             body={"note": ["x"]}, want=422, name="PATCH dagRun bad note")
    ok("PATCH bad note named", d and [tuple(x["loc"]) for x in d["detail"]]
       == [("body", "note")], str(d)[:300])
    d = call("GET", P, {"dag_id": DAG, "dag_run_id": RUN_OK},
             name="GET dagRun after bad note")
    ok("bad note changed nothing", d and d.get("note") == "checked by hand")
    C = "/api/v2/dags/{dag_id}/clearTaskInstances"
    call("POST", C, {"dag_id": "no_such_dag"}, body={}, want=404,
         name="POST clearTaskInstances unknown DAG")
    call("POST", C, {"dag_id": DAG}, body={"task_ids": "load"}, want=422,
         name="POST clearTaskInstances bad task_ids")
    d = call("POST", C, {"dag_id": DAG}, body={"dag_run_id": RUN_BAD},
             name="POST clearTaskInstances dry run")
    ok("dry run lists the failed ones", d and sorted(
        t["task_id"] for t in d["task_instances"]) == ["load", "transform"],
       str(d)[:300])
    d = call("GET", TI + "/{task_id}", {"dag_id": DAG, "dag_run_id": RUN_BAD,
                                          "task_id": "transform"},
             name="GET taskInstance after dry run")
    ok("dry run changed nothing", d and d["state"] == "failed")
    d = call("POST", C, {"dag_id": DAG},
             body={"dag_run_id": RUN_BAD, "dry_run": False,
                   "task_ids": ["load"]},
             name="POST clearTaskInstances")
    ok("cleared one", d and [t["task_id"] for t in d["task_instances"]]
       == ["load"])
    d = call("GET", TI + "/{task_id}", {"dag_id": DAG, "dag_run_id": RUN_BAD,
                                          "task_id": "load"},
             name="GET taskInstance after clear")
    ok("cleared task scheduled again", d and d["state"] in
       ("scheduled", "queued", "running", "upstream_failed"), str(d and d["state"]))
    d = call("GET", P, {"dag_id": DAG, "dag_run_id": RUN_BAD},
             name="GET dagRun after clear")
    ok("its run queued again", d and d["state"] in ("queued", "running",
                                                     "failed"), d and d["state"])
    d = call("PATCH", P, {"dag_id": DAG, "dag_run_id": RUN_BAD},
             body={"state": "failed"}, name="PATCH dagRun state=failed")
    ok("marked failed", d and d["state"] == "failed")

    close_scenario()
    print("routes checked against the spec (method template: statuses):")
    for k in sorted(checked):
        print(f"  {k}: {', '.join(map(str, sorted(checked[k])))}")
    print(f"spec: {counts['pass']} passed, {counts['fail']} failed")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
