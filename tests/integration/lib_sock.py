#!/usr/bin/env python3
"""lib_sock.py - raw-socket clients for the HTTP limit tests of
test_security.sh (what curl cannot do: hold connections, send slowly).

  lib_sock.py slow PORT INTERVAL MAXWAIT
      send a POST /predict one byte every INTERVAL seconds; print
      "closed AFTER_S SENT_BYTES" when the server closes the connection
      (or answers), "open MAXWAIT SENT_BYTES" if it is still open after
      MAXWAIT seconds.
  lib_sock.py idle PORT MAXWAIT
      connect and send nothing; print "closed AFTER_S" or "open MAXWAIT".
  lib_sock.py many PORT N MAXWAIT
      open N connections that send half a request line and wait; print
      "opened N_CONNECTED closed N_CLOSED_BY_SERVER after AFTER_S" once
      every connection was closed by the server or MAXWAIT passed.
"""
import select
import socket
import sys
import time


def closed(s):
    try:
        return s.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except BlockingIOError:
        return False


mode = sys.argv[1]
port = int(sys.argv[2])
t0 = time.monotonic()
if mode == "slow":
    interval, maxwait = float(sys.argv[3]), float(sys.argv[4])
    body = b'{"data": {"customer_id": 1}}'
    req = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
           b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
           + body)
    s = socket.create_connection(("127.0.0.1", port))
    sent = 0
    while time.monotonic() - t0 < maxwait:
        r, _, _ = select.select([s], [], [], interval)
        if r:
            print(f"closed {time.monotonic() - t0:.1f} {sent}")
            sys.exit(0)
        try:
            s.send(req[sent:sent + 1])
            sent += 1
        except OSError:
            print(f"closed {time.monotonic() - t0:.1f} {sent}")
            sys.exit(0)
        if sent >= len(req):
            break
    print(f"open {maxwait} {sent}")
elif mode == "idle":
    maxwait = float(sys.argv[3])
    s = socket.create_connection(("127.0.0.1", port))
    r, _, _ = select.select([s], [], [], maxwait)
    if r and closed(s):
        print(f"closed {time.monotonic() - t0:.1f}")
    else:
        print(f"open {maxwait}")
elif mode == "many":
    n, maxwait = int(sys.argv[3]), float(sys.argv[4])
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.send(b"GET /healthz HT")
            s.setblocking(False)
            socks.append(s)
        except OSError:
            break
    opened = len(socks)
    done = 0
    live = list(socks)
    while live and time.monotonic() - t0 < maxwait:
        r, _, _ = select.select(live, [], [], 0.5)
        for s in r:
            if closed(s):
                live.remove(s)
                s.close()
                done += 1
    print(f"opened {opened} closed {done} after {time.monotonic() - t0:.1f}")
