#!/usr/bin/env python3
"""postback_receiver.py DIR PORT - an editor's postback receiver for
tests/postbacks_test.sh, written against the Standard Webhooks
specification with Python's own hmac and base64 (not the project's
signer). Every request is checked and recorded as one JSON line in
DIR/received.jsonl: path, webhook-id, the signature's verdict, the
event's type, the status answered and the time.

The secrets to check with are read from DIR/secrets.json ({path: secret})
at each request. The answer depends on the path:
  /ok        200
  /flaky     500 to the first two requests of each webhook-id, then 200
  /switch    503 while DIR/down exists, else 200
  /slow      sleeps 3 s, then 200 (past the worker's timeout)
  /hang      sleeps 20 s, then 200
  /gone      410
  /limited   429 with Retry-After: 2 to the first request of each id, then 200
  /rotating  the same with Retry-After: 3 (time for the test to rotate)
  /down      503

The test asks the receiver too, so that a check costs a request, not a
Python start (seconds on a loaded host), with the query's parameters:
  GET /_expr?expr=E[&file=F]   the value of the expression E
  GET /_check?code=C[&file=F]  200 when the statements C run (asserts),
                               else 500 and the failure
where rs is the list of the records so far, d the JSON in file F.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import traceback
import urllib.parse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, PORT = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
seen = {}
records = []


def verify(secret, msg_id, ts, body, header):
    if not secret.startswith("whsec_"):
        return "no whsec_ secret"
    key = base64.b64decode(secret[6:])
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    try:
        if abs(time.time() - int(ts)) > 300:
            return "stale timestamp"
    except ValueError:
        return "bad timestamp"
    for part in header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return "ok"
    return "bad signature"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        env = {"json": json, "re": re, "base64": base64}
        with lock:
            env["rs"] = list(records)
        try:
            if q.get("file"):
                with open(q["file"]) as f:
                    env["d"] = json.load(f)
            if url.path == "/_expr":
                self.answer(200, str(eval(q["expr"], env)))
            elif url.path == "/_check":
                exec(q["code"], env)
                self.answer(200, "ok")
            else:
                self.answer(404, "no such query")
        except Exception:
            self.answer(500, traceback.format_exc())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        try:
            with open(os.path.join(DIR, "secrets.json")) as f:
                secret = json.load(f).get(self.path, "")
        except (OSError, ValueError):
            secret = ""
        verdict = verify(secret, msg_id, ts, body,
                         self.headers.get("webhook-signature", ""))
        try:
            ev = json.loads(body)
        except ValueError:
            ev = {}
        with lock:
            n = seen.get((self.path, msg_id), 0) + 1
            seen[(self.path, msg_id)] = n
        status, extra = 200, {}
        if self.path == "/flaky" and n <= 2:
            status = 500
        elif self.path == "/switch" and os.path.exists(os.path.join(DIR, "down")):
            status = 503
        elif self.path == "/gone":
            status = 410
        elif self.path == "/limited" and n == 1:
            status, extra = 429, {"Retry-After": "2"}
        elif self.path == "/rotating" and n == 1:
            status, extra = 429, {"Retry-After": "3"}
        elif self.path == "/down":
            status = 503
        # Recorded on arrival: a sender that gives up waiting was here.
        rec = {"path": self.path, "id": msg_id, "sig": verdict,
               "type": ev.get("type"), "event_id": ev.get("id"),
               "data": ev.get("data"), "status": status, "t": time.time(),
               "n": n}
        with lock, open(os.path.join(DIR, "received.jsonl"), "a") as f:
            records.append(rec)
            f.write(json.dumps(rec) + "\n")
        if self.path == "/slow":
            time.sleep(3)
        elif self.path == "/hang":
            time.sleep(20)
        try:
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the worker gave up waiting


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("receiver: listening", flush=True)
server.serve_forever()
