#!/usr/bin/env python3
"""lib_load.py - a prediction load generator that remembers every answer.

Used by test_fault_*.sh and tests/soak/soak.sh.  Each request carries its
own customer_id (START, START+1, ...), so the test can match the answers
with the rows of credit_predictions_api_log one by one.  Every request
ends as one line "ID OUTCOME" in OUT:

  200, 503, ...  the HTTP status the server answered
  REF            the connection was refused (nothing was sent)
  000            sent (or being sent), but no answer came (reset, EOF)

  lib_load.py --port P --out FILE --start ID [--threads N] [--count N]
              [--seconds S] [--rate R] [--stop-after-refused K]
              [--path /predict] [--body FILE] [--close] [--batch N]

Keep-alive connections (one per thread) unless --close.  --rate limits the
total requests per second.  Stops after --count requests, after --seconds,
on SIGTERM/SIGINT, when K connections in a row were refused, or after
--stop-after-errors E answers other than 200.  Prints a
summary line "sent=N 200=N other=N refused=N noanswer=N" at the end.
With --batch N each request carries N items ({"data": [...]}) with the
customer_ids ID..ID+N-1, and each item gets its own line (the request's
outcome); the counts are per request.
"""
import argparse
import http.client
import json
import signal
import socket
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--start", type=int, default=1)
ap.add_argument("--threads", type=int, default=4)
ap.add_argument("--count", type=int, default=0)
ap.add_argument("--seconds", type=float, default=0)
ap.add_argument("--rate", type=float, default=0)
ap.add_argument("--stop-after-refused", type=int, default=0)
ap.add_argument("--path", default="/predict")
ap.add_argument("--body", default="sql/data/predict_example.json")
ap.add_argument("--close", action="store_true")
ap.add_argument("--batch", type=int, default=0)
ap.add_argument("--stop-after-errors", type=int, default=0)
a = ap.parse_args()

template = json.load(open(a.body))
stop = threading.Event()
lock = threading.Lock()
next_id = [a.start]
issued = [0]
out = open(a.out, "w", buffering=1)
counts = {"sent": 0, "200": 0, "other": 0, "refused": 0, "noanswer": 0}
t0 = time.monotonic()


def take_id():
    with lock:
        if stop.is_set():
            return None
        if a.count and issued[0] >= a.count:
            return None
        if a.seconds and time.monotonic() - t0 >= a.seconds:
            return None
        if a.rate:
            due = t0 + issued[0] / a.rate
        i = next_id[0]
        next_id[0] += max(a.batch, 1)
        issued[0] += 1
    if a.rate:
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
    return i


def record(i, outcome):
    with lock:
        for k in range(max(a.batch, 1)):
            out.write(f"{i + k} {outcome}\n")
        counts["sent"] += outcome != "REF"
        if outcome == "200":
            counts["200"] += 1
        elif outcome == "REF":
            counts["refused"] += 1
        elif outcome == "000":
            counts["noanswer"] += 1
        else:
            counts["other"] += 1
            if a.stop_after_errors and counts["other"] >= a.stop_after_errors:
                stop.set()


def worker():
    conn = None
    refused_run = 0
    while not stop.is_set():
        i = take_id()
        if i is None:
            break
        body = dict(template)
        if a.batch:
            body["data"] = [dict(template["data"], customer_id=i + k)
                            for k in range(a.batch)]
        else:
            body["data"] = dict(template["data"], customer_id=i)
        payload = json.dumps(body).encode()
        hdr = {"Content-Type": "application/json"}
        if a.close:
            hdr["Connection"] = "close"
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
            try:
                conn.connect()
            except (ConnectionRefusedError, socket.timeout, OSError):
                conn = None
                record(i, "REF")
                refused_run += 1
                if a.stop_after_refused and \
                        refused_run >= a.stop_after_refused:
                    stop.set()
                else:
                    time.sleep(0.05)
                continue
        refused_run = 0
        try:
            conn.request("POST", a.path, payload, hdr)
            r = conn.getresponse()
            r.read()
            record(i, str(r.status))
            if a.close or r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (http.client.HTTPException, OSError):
            record(i, "000")
            try:
                conn.close()
            except OSError:
                pass
            conn = None
    if conn is not None:
        conn.close()


signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
ts = [threading.Thread(target=worker) for _ in range(a.threads)]
for t in ts:
    t.start()
while any(t.is_alive() for t in ts):
    time.sleep(0.05)
out.close()
print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
