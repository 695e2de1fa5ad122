#!/usr/bin/env python3
"""lib_sink.py - an HTTP server that records every request it receives,
for the http-task tests of test_security.sh.

  lib_sink.py PORTFILE LOGFILE

Binds 127.0.0.1 on a free port, writes the port to PORTFILE, then appends
one JSON line per request to LOGFILE: {"method", "path", "headers": [[name,
value], ...], "body"}.  Answers 200 "ok", or the status N for a path
/status/N.  Runs until killed.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": list(self.headers.items()),
                                "body": body}) + "\n")
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, *args):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
