#!/usr/bin/env python3
"""openapi_check.py - every live answer of a running bridge checked against
the bridge's own /openapi.json (tests/openapi_test.sh starts the processes).

Each answer's status must be one the operation declares (the default
response stands only for 500, 502 and 504), its body must match that
response's schema (jsonschema, an implementation independent of the
generator in bridge/openapi.c; date-time checked by RFC 3339's pattern),
its Content-Type must be a declared media type, and every header of the
API's own (Link, Retry-After, RateLimit-*, WWW-Authenticate,
X-Request-Id) must be declared on that response. Scripted cases drive the
known routes to each success and error; then every operation in the
document, known or added later, is called once more generically, and once
with the server killed (503).

usage: openapi_check.py URL EDITOR_KEY WEBHOOK_SECRET SERVER_PID MAX_BODY
Prints TAP-like lines ("ok - ...", "not ok - ..."); exits 1 on a failure.
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import sys
import time
import urllib.parse
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import jsonschema  # noqa: E402  (python3-jsonschema, deps-dev)

URL, EDITOR_KEY, SECRET, SERVER_PID, MAX_BODY = sys.argv[1:6]
MAX_BODY = int(MAX_BODY)
u = urllib.parse.urlsplit(URL)
HOST, PORT = u.hostname, u.port
API_HEADERS = ["Link", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
               "RateLimit-Reset", "WWW-Authenticate", "X-Request-Id"]
failed = 0
driven = set()

fc = jsonschema.FormatChecker()
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@fc.checks("date-time")
def is_date_time(v):
    return not isinstance(v, str) or RFC3339.match(v) is not None


def ok(name):
    print("ok - " + name)


def not_ok(name):
    global failed
    failed += 1
    print("not ok - " + name)


def request(method, target, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, PORT, timeout=10)
    h = dict(headers or {})
    if body is not None and "Content-Type" not in h:
        h["Content-Type"] = "application/json"
    c.request(method, target, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hs, data


def fetch_doc():
    st, _, data = request("GET", "/openapi.json")
    assert st == 200, st
    return json.loads(data)


DOC = fetch_doc()
RESOLVER = jsonschema.RefResolver.from_schema(DOC)


def deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        _, obj = RESOLVER.resolve(obj["$ref"])
    return obj


def template_of(path):
    for tmpl in DOC["paths"]:
        rx = "^" + re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(tmpl)) + "$"
        if re.match(rx, path):
            return tmpl
    return None


def check_answer(method, target, st, hs, data):
    """The answer against the document; returns a list of what is wrong."""
    path = urllib.parse.urlsplit(target).path
    tmpl = template_of(path)
    if tmpl is None or method.lower() not in DOC["paths"][tmpl]:
        return ["%s %s is not in the document" % (method, path)]
    driven.add((tmpl, method.lower()))
    op = DOC["paths"][tmpl][method.lower()]
    resp = op["responses"].get(str(st))
    if resp is None and st in (500, 502, 504):
        resp = op["responses"].get("default")
    if resp is None:
        return ["status %d is not declared for %s %s (declared: %s)" % (
            st, method, tmpl, ", ".join(op["responses"]))]
    resp = deref(resp)
    errs = []
    declared = {k.lower() for k in resp.get("headers", {})}
    for h in API_HEADERS:
        if h.lower() in hs and h.lower() not in declared:
            errs.append("header %s is sent but not declared for %d" % (h, st))
    for name, hd in resp.get("headers", {}).items():
        sch = deref(deref(hd).get("schema", {}))
        v = hs.get(name.lower())
        if v is not None and sch.get("type") == "integer" and not re.match(r"^\d+$", v):
            errs.append("header %s: %r is not an integer" % (name, v))
    content = resp.get("content", {})
    ctype = hs.get("content-type", "").split(";")[0].strip()
    if data and ctype not in content:
        errs.append("Content-Type %s is not declared (%s)" % (ctype, ", ".join(content)))
        return errs
    if ctype == "application/json" and data:
        try:
            body = json.loads(data)
        except ValueError as e:
            return errs + ["body is not JSON: %s" % e]
        schema = content[ctype]["schema"]
        v = jsonschema.Draft4Validator(schema, resolver=RESOLVER, format_checker=fc)
        for e in sorted(v.iter_errors(body), key=lambda e: list(e.path))[:3]:
            errs.append("body at /%s: %s" % ("/".join(map(str, e.path)), e.message[:200]))
    return errs


def case(name, method, target, want, body=None, headers=None, must=None):
    """One call: the exact status wanted, then the document's check; must
    (a function of status, headers, parsed body) adds what the case is
    about."""
    st, hs, data = request(method, target, body, headers)
    if st != want:
        not_ok("%s: %s %s -> %d, wanted %d: %s" % (name, method, target, st, want, data[:300]))
        return None
    errs = check_answer(method, target, st, hs, data)
    if not errs and must is not None:
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        why = must(hs, parsed)
        if why:
            errs.append(why)
    if errs:
        not_ok("%s: %s %s %d: %s" % (name, method, target, st, "; ".join(errs)))
    else:
        ok("%s: %s %s %d as documented" % (name, method, target, st))
    return hs


def signed(body):
    return {"X-Partner-Signature": hmac.new(SECRET.encode(), body.encode(),
                                            hashlib.sha256).hexdigest()}


def has_header(h):
    return lambda hs, b: None if h.lower() in hs else "no %s header" % h


def details_id(hs, b):
    d = b["error"].get("details")
    return None if d and d.get("id") else "no error.details with the application"


KEY = {"Authorization": "Bearer " + EDITOR_KEY}
BAD_KEY = {"Authorization": "Bearer aff_1_" + "0" * 64}

# ---- the known routes, success and each error they can give ----
case("health", "GET", "/", 200)
case("advertisers", "GET", "/advertisers?editor_id=1", 200)
case("advertisers, a page", "GET", "/advertisers?limit=2", 200, must=has_header("Link"))
case("advertisers, malformed editor", "GET", "/advertisers?editor_id=-1", 400)
case("advertisers, unknown parameter", "GET", "/advertisers?bogus=1", 400)
case("advertisers, unknown editor", "GET", "/advertisers?editor_id=42", 404)
case("advertisers, a wrong key", "GET", "/advertisers", 401, headers=BAD_KEY,
     must=has_header("WWW-Authenticate"))
case("advertiser", "GET", "/advertisers/2?editor_id=1", 200)
case("advertiser, malformed id", "GET", "/advertisers/abc", 400)
case("advertiser, unknown", "GET", "/advertisers/999", 404)
case("advertiser, not eligible", "GET", "/advertisers/1?editor_id=1", 403)
case("apply", "POST", "/applications", 202, '{"advertiser_id":2,"editor_id":1}')
case("apply again", "POST", "/applications", 409, '{"advertiser_id":2,"editor_id":1}',
     must=details_id)
case("apply, not eligible", "POST", "/applications", 403, '{"advertiser_id":1,"editor_id":1}')
case("apply, unknown advertiser", "POST", "/applications", 404,
     '{"advertiser_id":999,"editor_id":1}')
case("apply, malformed body", "POST", "/applications", 400, '{"advertiser_id":')
case("apply, body over the cap", "POST", "/applications", 413, "x" * (MAX_BODY + 1))
case("applications", "GET", "/applications", 200)
case("applications, bad limit", "GET", "/applications?limit=x", 400)
case("applications, another editor's (editor key)", "GET", "/applications?editor_id=2", 403,
     headers=KEY)
case("application", "GET", "/applications/1", 200)
case("application, unknown", "GET", "/applications/999", 404)
order = '{"order_id":"OA-1","advertiser_id":2,"user_id":1,"amount":49.9,"commission":4.99}'
case("webhook, new order", "POST", "/webhook/orders", 201, order, signed(order))
case("webhook, duplicate", "POST", "/webhook/orders", 200, order, signed(order))
other = order.replace("49.9", "50")
case("webhook, same id, other amount", "POST", "/webhook/orders", 409, other, signed(other))
case("webhook, no signature", "POST", "/webhook/orders", 401, order)
bad = '{"order_id":"","advertiser_id":2}'
case("webhook, invalid body", "POST", "/webhook/orders", 400, bad, signed(bad))
unk = order.replace('"advertiser_id":2', '"advertiser_id":999').replace("OA-1", "OA-2")
case("webhook, unknown advertiser", "POST", "/webhook/orders", 404, unk, signed(unk))
case("webhook, body over the cap", "POST", "/webhook/orders", 413, "x" * (MAX_BODY + 1))
case("orders", "GET", "/orders", 200)
case("orders, bad limit", "GET", "/orders?limit=abc", 400)
# The year of the webhook's order above: its groups checked to the schema.
year = time.strftime("%Y", time.gmtime())
case("earnings by advertiser", "GET",
     "/reports/earnings?from=%s-01-01&to=%s-12-31" % (year, year), 200,
     must=lambda hs, b: None if b["groups"] else "no group: %s" % b)
case("earnings by day at +02:00", "GET",
     "/reports/earnings?from=%s-01-01&to=%s-12-31&group_by=day&tz=%%2B02:00" % (year, year), 200,
     must=lambda hs, b: None if b["groups"] else "no group: %s" % b)
case("earnings, from after to", "GET",
     "/reports/earnings?from=2026-02-01&to=2026-01-01", 400)
case("openapi", "GET", "/openapi.json", 200)
case("livez", "GET", "/livez", 200)
case("readyz", "GET", "/readyz", 200)
case("metrics", "GET", "/metrics", 200)
# The editor key's bucket (--rate-limit 0.1/4 in openapi_test.sh) runs dry.
for i in range(8):
    st, hs, data = request("GET", "/advertisers/2", headers=KEY)
    if st == 429:
        break
case("over the rate limit", "GET", "/advertisers/2", 429, headers=KEY,
     must=has_header("Retry-After"))

# ---- every operation the document has, generically (routes added later
# are covered too): path parameters 1, a body of {} where one is taken ----
OWN = {"/openapi.json", "/livez", "/readyz", "/metrics"}


def generic_target(tmpl):
    return re.sub(r"\{[^/]*?\}", "1", tmpl)


def generic(tag, want_status=None):
    for tmpl, item in DOC["paths"].items():
        for method in item:
            target = generic_target(tmpl)
            body = "{}" if method in ("post", "put", "patch") else None
            st, hs, data = request(method.upper(), target, body)
            if want_status is not None and tmpl not in OWN and st != want_status:
                not_ok("%s: %s %s -> %d, wanted %d" % (tag, method.upper(), target, st,
                                                      want_status))
                continue
            errs = check_answer(method.upper(), target, st, hs, data)
            if errs:
                not_ok("%s: %s %s %d: %s" % (tag, method.upper(), target, st, "; ".join(errs)))
            else:
                ok("%s: %s %s %d as documented" % (tag, method.upper(), target, st))


generic("generic")
every = {(t, m) for t, item in DOC["paths"].items() for m in item}
missing = every - driven
if missing:
    not_ok("operations never driven: %s" % sorted(missing))
else:
    ok("all %d operations of the document were driven" % len(every))

# ---- the server gone: every route answers 503, as documented ----
os.kill(int(SERVER_PID), signal.SIGKILL)
time.sleep(0.2)
generic("server down", 503)
case("readyz, server down", "GET", "/readyz", 503)

print("# %d failed" % failed)
sys.exit(1 if failed else 0)
