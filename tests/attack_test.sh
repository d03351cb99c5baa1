#!/usr/bin/env bash
# attack_test.sh - hostile input against the newest surfaces (issue 18),
# through the real processes on free loopback ports: affiliate-server,
# affiliate-bridge, affiliate-worker, the affiliate CLI and a receiver that
# misbehaves on purpose (tests/hostile_receiver.py). Every bad input must
# get a clear error (JSON over HTTP, a status over RPC), never a crash, a
# hang or a silent drop. Each check names what it once did, where it did
# something else before its fix:
#   1. postback endpoints: SSRF spellings of loopback and private
#      addresses (decimal, hex, octal, short IPv4; IPv6 loopback, mapped,
#      SIIT, 6to4, NAT64), other schemes, userinfo, ports, long hosts,
#      bracketed IPv4, odd event lists, another editor's scope;
#   2. catalog admin: wrong types, nulls, bounds, C1 control characters,
#      non-admin keys, and the read cache seeing a revocation at once;
#   3. order detail: an order_id with '/' or of 64 three-byte characters
#      read back by its (encoded) path; another editor's is 404;
#   4. dead jobs admin: non-admin keys, bad states, limits and cursors;
#   5. `affiliate rpc`: every service the server serves, hostile text;
#   6. Standard Webhooks: too many signatures, stale or future or
#      malformed timestamps;
#   7. delivery against hostile receivers: a body without end after 200,
#      headers without end, and a dead postback job retried by the jobs
#      admin after its delivery was redelivered (one job per delivery).
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/affiliate-attack-XXXXXX)
pids=()
. "$HERE/tap.sh"
. "$HERE/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

http_port=$(free_port)
BACKEND_DATA_DIR=$work/data
rpc_url="ipc://$work/rpc.sock"
jobs_url="ipc://$work/jobs.sock"
results_url="ipc://$work/results.sock"
B="http://127.0.0.1:$http_port"
export AFFILIATE_WORKER_SECRET=attack-test-worker-secret
export AFFILIATE_WEBHOOK_SECRET=attack-test-webhook-secret

start_server() {
	"$BIN/affiliate-server" --listen "$rpc_url" --data-dir "$work/data" \
		--redis off --jobs "$jobs_url" --results "$results_url" \
		"$@" >>"$work/server.log" 2>&1 &
	server_pid=$!
	pids+=($server_pid)
	wait_for "$work/server.log" "server: ready" || exit 1
}
stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null
	: >"$work/server.log"
}

# req METHOD PATH [BODY] [KEY]: the status into $code, the body into
# $work/body (the path is sent as it is written: no normalising).
req() {
	local args=(-s --path-as-is -o "$work/body" -w '%{http_code}' -X "$1")
	[ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	[ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
	code=$(curl "${args[@]}" "$B$2")
}
# expect NAME STATUS METHOD PATH [BODY] [KEY] -- PATTERN...: the status,
# then each pattern (grep -F) in the body; an error body must be JSON.
expect() {
	local name=$1 want=$2
	shift 2
	local m=$1 p=$2 b=${3:-} k=${4:-}
	shift 2
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] && [ "$1" = -- ] && shift
	req "$m" "$p" "$b" "$k"
	if [ "$code" != "$want" ]; then
		not_ok "$name: $m ${p:0:80} → $code, wanted $want: $(head -c 300 "$work/body")"
		return 1
	fi
	if [ "$code" -ge 400 ] && ! grep -q '^{"error":{"code":"' "$work/body"; then
		not_ok "$name: the error is not JSON: $(head -c 300 "$work/body")"
		return 1
	fi
	for pat in "$@"; do
		if ! grep -qF -- "$pat" "$work/body"; then
			not_ok "$name: '$pat' not in $(head -c 300 "$work/body")"
			return 1
		fi
	done
	ok "$name"
}
# One Python process answers the script's JSON questions and makes its
# Standard Webhooks requests (a process per question cost 0.3-0.7 s each
# on a busy host).
coproc PY { python3 -u -c '
import base64, hashlib, hmac, http.client, json, sys, urllib.parse
for line in sys.stdin:
    cmd, *a = line.rstrip("\n").split("\t")
    try:
        if cmd == "F":  # F FILE EXPR: EXPR over d, the JSON in FILE
            d = json.load(open(a[0]))
            out = str(eval(a[1]))
        else:  # S BASE SECRET ID TIMESTAMP NSIG ORDER_ID OUT: a webhook
            base, key, mid, ts, n, oid, path = a
            body = ("{\"order_id\":\"%s\",\"advertiser_id\":2,\"user_id\":1,"
                    "\"amount\":12.5,\"commission\":1.25}" % oid).encode()
            mac = base64.b64encode(hmac.new(key.encode(), f"{mid}.{ts}.".encode() + body,
                                            hashlib.sha256).digest()).decode()
            u = urllib.parse.urlparse(base)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("POST", "/webhook/orders", body=body, headers={"webhook-id": mid,
                "webhook-timestamp": ts, "webhook-signature": " ".join(["v1," + mac] * int(n))})
            r = c.getresponse()
            open(path, "wb").write(r.read())
            out = str(r.status)
    except Exception as e:
        out = "error: %r" % e
    print(out.replace("\n", " "))
'; }
pids+=("$PY_PID")
py() { # py LINE: the helper's one-line answer
	local out
	printf '%s\n' "$1" >&"${PY[1]}"
	read -r -t 15 out <&"${PY[0]}"
	echo "$out"
}
field() { py "F	$work/body	$1"; }

start_server
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$rpc_url" \
	>"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/bridge.log" "bridge: listening" || exit 1
"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key >"$work/admin" 2>>"$work/create.log"
admin=$(tail -n 1 "$work/admin")
keyof() { AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" keys create --editor "$1" >"$work/body" && field 'd["token"]'; }
key1=$(keyof 1)
key2=$(keyof 2)
key5=$(keyof 5)
key6=$(keyof 6)

# ---- 1. postback endpoints, as a hostile editor ----
# For editors 5 and 6, who get no order here: what is taken points at
# TEST-NET addresses, which nothing may ever dial.
ev='["order.created"]'
register() { # register NAME STATUS URL PATTERN
	expect "$1" "$2" POST /postback-endpoints \
		'{"editor_id":5,"url":"'"$3"'","events":'"$ev"'}' "" -- "$4"
}
private="a loopback, private or link-local address"
for url in http://2130706433/ http://0x7f.1/ http://127.1/ http://0177.0.0.1/ \
	http://0x7f000001/ http://127.000.000.001/ HTTP://127.0.0.1/ http://LOCALHOST/ \
	http://0/ http://0.0.0.0/ 'http://[::1]/' 'http://[0:0:0:0:0:0:0:1]/' 'http://[::]/' \
	'http://[::ffff:127.0.0.1]/' 'http://[::ffff:7f00:1]/' 'http://[::127.0.0.1]/' \
	'http://[64:ff9b::7f00:1]/' 'http://[::ffff:a9fe:a9fe]/'; do
	register "SSRF: $url is refused" 400 "$url" "$private"
done
# Once taken: SIIT (::ffff:0:a.b.c.d) and 6to4 (2002:AABB:CCDD::) spell
# a private IPv4 address too (a host with a 6to4 tunnel sends the second
# to 127.0.0.1).
register "SSRF: SIIT [::ffff:0:7f00:1] is refused (was 201)" 400 'http://[::ffff:0:7f00:1]/' "$private"
register "SSRF: 6to4 of 127.0.0.1 [2002:7f00:1::] is refused (was 201)" 400 'http://[2002:7f00:1::]/' "$private"
register "SSRF: 6to4 of 192.168.1.1 is refused (was 201)" 400 'http://[2002:c0a8:101::1]/' "$private"
register "a 6to4 address of a public IPv4 address is taken" 201 'http://[2002:801:101::1]/' '"secret":"whsec_'
register "a zone id in an IPv6 host is refused" 400 'http://[fe80::1%25eth0]/' "bad host"
register "an IPv4 address in brackets is refused (was resolved and taken)" 400 \
	'http://[192.0.2.1]/' "[...] holds an IPv6 address"
register "a port with a sign is refused (was taken; curl refused it at every delivery)" 400 \
	'http://192.0.2.1:+80/' "bad port"
register "port 0 is refused" 400 'http://192.0.2.1:0/' "bad port"
register "port 65536 is refused" 400 'http://192.0.2.1:65536/' "bad port"
register "a host over 255 bytes says so (was: no host)" 400 \
	"http://$(printf 'a%.0s' $(seq 300)).example/" "host is longer than 255 bytes"
register "a URL over 2048 bytes is refused" 400 \
	"http://192.0.2.1/$(printf 'a%.0s' $(seq 2100))" "longer than 2048 bytes"
for url in file:///etc/passwd gopher://192.0.2.1/ ftp://192.0.2.1/ dict://192.0.2.1/ 'http:/x/'; do
	register "the scheme of $url is refused" 400 "$url" "must start with http:// or https://"
done
register "user:password@ is refused" 400 'http://127.0.0.1:80@192.0.2.1/' "user:password@"
register "an encoded @ in the authority is refused" 400 'http://127.0.0.1%2f@192.0.2.1/' "user:password@"
expect "a NUL byte in the URL is refused" 400 POST /postback-endpoints \
	'{"editor_id":5,"url":"http://192.0.2.1/\u0000x","events":'"$ev"'}' "" -- "not allowed"
expect "the same event three times is one event" 201 POST /postback-endpoints \
	'{"editor_id":5,"url":"http://192.0.2.1/dup","events":["order.created","order.created","order.created"]}' "" -- \
	'"events":["order.created"]'
expect "an empty event name is refused" 400 POST /postback-endpoints \
	'{"editor_id":5,"url":"http://192.0.2.1/","events":[""]}' "" -- "unknown event type ''"
printf '{"editor_id":5,"url":"http://192.0.2.1/","events":["%s"]}' \
	"$(head -c 900000 /dev/zero | tr '\0' x)" >"$work/big.json"
expect "a 900 KB event name is refused, quoted short" 400 POST /postback-endpoints \
	"@$work/big.json" "" -- "unknown event type 'xxxxxxxxxxxxxxxx"
check "... and the message stays short" [ "$(wc -c <"$work/body")" -lt 400 ]
expect "events that are not a list are refused" 400 POST /postback-endpoints \
	'{"editor_id":5,"url":"http://192.0.2.1/","events":"order.created"}' "" -- "events must be an array"
expect "an editor_id over int64 is refused" 400 POST /postback-endpoints \
	'{"editor_id":9223372036854775808,"url":"http://192.0.2.1/","events":'"$ev"'}' "" -- "too big integer"
expect "a secret in the request is refused" 400 POST /postback-endpoints \
	'{"editor_id":5,"url":"http://192.0.2.1/","events":'"$ev"',"secret":"whsec_x"}' "" -- "unknown field 'secret'"
expect "editor 6's key cannot register for editor 5" 403 POST /postback-endpoints \
	'{"editor_id":5,"url":"http://192.0.2.1/","events":'"$ev"'}' "$key6"
expect "editor 5's endpoint" 201 POST /postback-endpoints \
	'{"url":"http://192.0.2.1/e5","events":'"$ev"'}' "$key5" -- '"editor_id":5'
ep1=$(field 'd["endpoint"]["id"]')
for what in "DELETE /postback-endpoints/$ep1" "POST /postback-endpoints/$ep1/rotate-secret" \
	"POST /postback-endpoints/$ep1/enable" "GET /postback-endpoints/$ep1/attempts"; do
	expect "editor 6's key: $what is 404" 404 ${what% *} ${what#* } "" "$key6"
done
expect "editor 6's key lists none of editor 5's endpoints" 200 GET /postback-endpoints "" "$key6"
check "... an empty list" [ "$(cat "$work/body")" = "[]" ]
expect "editor 6's key cannot list editor 5's" 403 GET "/postback-endpoints?editor_id=5" "" "$key6"
expect "attempts: limit 1001 is refused" 400 GET "/postback-endpoints/$ep1/attempts?limit=1001"
expect "attempts: a negative cursor is refused" 400 GET "/postback-endpoints/$ep1/attempts?after=-5"
expect "redeliver: id 0 is refused" 400 POST /postback-deliveries/0/redeliver
expect "redeliver: an unknown delivery is 404" 404 POST /postback-deliveries/999999/redeliver
expect "redeliver: a body is refused (was ignored)" 400 POST /postback-deliveries/999999/redeliver \
	'{"delivery_id":1}' "" -- "takes no body"

# ---- 2. catalog admin ----
adv() { expect "$1" "$2" PATCH /advertisers/2 "$3" "$admin" -- "$4"; }
expect "an editor key cannot create an advertiser" 403 POST /advertisers \
	'{"name":"X","category":"c","currency":"EUR"}' "$key1"
expect "no key cannot create an advertiser" 401 POST /advertisers \
	'{"name":"X","category":"c","currency":"EUR"}'
expect "an editor key cannot grant eligibility" 403 PUT /editors/1/advertisers/2 "" "$key1"
adv "a C1 control character (U+0085) in a name is refused (was stored)" 400 \
	'{"name":"a\u0085b"}' "name must not contain control characters"
adv "a C1 control character (U+009B, CSI) in a category is refused (was stored)" 400 \
	'{"category":"x\u009b2J"}' "category must not contain control characters"
adv "a C1 control character in a website is refused (was stored)" 400 \
	'{"website":"https://a.example/\u0085"}' "website must not contain spaces or control characters"
adv "a C0 control character is refused" 400 '{"name":"a\u0001b"}' "control characters"
adv "DEL is refused" 400 '{"name":"a\u007fb"}' "control characters"
adv "150 two-byte characters are a name" 200 "{\"name\":\"$(printf '\\u00e9%.0s' $(seq 150))\"}" '"id":2'
adv "201 characters are not" 400 "{\"name\":\"$(printf 'a%.0s' $(seq 201))\"}" "1 to 200 characters"
adv "a blank name is refused" 400 '{"name":"   "}' "not blank"
adv "a name that is a number is refused" 400 '{"name":123}' "name must be a string"
adv "null changes nothing, and says so" 400 '{"name":null}' "nothing to change"
adv "an unknown field is refused" 400 '{"bogus":1}' "unknown field 'bogus'"
adv "a read-only field is refused" 400 '{"created_at":"2020-01-01T00:00:00Z"}' "unknown field 'created_at'"
adv "the id in the body is refused" 400 '{"id":3}' "id is given in the path"
adv "a rate of -1 is refused" 400 '{"commission_rate_bps":-1}' "from 0 to 10000"
adv "a rate of 10001 is refused" 400 '{"commission_rate_bps":10001}' "from 0 to 10000"
adv "a rate over int32 is refused" 400 '{"commission_rate_bps":2147483648}' "out of range"
adv "a rate as a string is refused" 400 '{"commission_rate_bps":"650"}' "must be an integer"
for cur in eur EURO E1R '' 'ÉUR'; do
	adv "currency '$cur' is refused" 400 "{\"currency\":\"$cur\"}" "ISO 4217"
done
adv "a javascript: website is refused" 400 '{"website":"javascript:alert(1)"}' "http:// or https://"
adv "a duplicate key is refused" 400 '{"name":"x","name":"y"}' "duplicate object key"
expect "advertiser 0 is refused" 400 PATCH /advertisers/0 '{"name":"x"}' "$admin"
expect "advertiser -1 is refused" 400 PATCH /advertisers/-1 '{"name":"x"}' "$admin"
expect "an advertiser id over int64 is refused" 400 PATCH /advertisers/9223372036854775808 '{"name":"x"}' "$admin"
expect "advertiser 2^63-1 is not found" 404 PATCH /advertisers/9223372036854775807 '{"name":"x"}' "$admin"
# The read cache after a change: warmed, then revoked: the next
# anonymous read is the refusal, not the kept 200.
expect "eligible before (warms the cache)" 200 GET "/advertisers/2?editor_id=1"
expect "eligible before, from the cache" 200 GET "/advertisers/2?editor_id=1"
expect "revoke" 200 DELETE /editors/1/advertisers/2 "" "$admin" -- '"eligible":false'
expect "the next read sees the revocation" 403 GET "/advertisers/2?editor_id=1"
expect "... in any spelling of the query" 403 GET "/advertisers/2?editor_id=01"
expect "a body on PUT eligibility is refused (was ignored: a grant)" 400 PUT /editors/1/advertisers/2 \
	'{"eligible":false}' "$admin" -- "takes no body"
expect "... and nothing was granted" 403 GET "/advertisers/2?editor_id=1"
expect "grant again (an empty object is no body)" 200 PUT /editors/1/advertisers/2 '{ }' "$admin" -- \
	'"eligible":true'
expect "the next read sees the grant" 200 GET "/advertisers/2?editor_id=1"

# ---- 3. order and application detail ----
sign_and_post() { # sign_and_post BODY: the status into $code
	printf '%s' "$1" >"$work/order.json"
	local sig
	sig=$("$BIN/affiliate" webhook sign "$work/order.json")
	code=$(curl -s -o "$work/body" -w '%{http_code}' -X POST -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$B/webhook/orders")
}
sign_and_post '{"order_id":"INV/2026/7","advertiser_id":2,"user_id":1,"amount":10,"commission":1}'
check "an order whose id has '/' is stored ($code)" [ "$code" = 201 ]
expect "it is read back as /orders/INV%2F2026%2F7 (was 404: no route)" 200 \
	GET /orders/INV%2F2026%2F7 "" "" -- '"order_id":"INV/2026/7"'
expect "... the same with a lower-case escape" 200 GET /orders/INV%2f2026%2f7 "" "" -- '"order_id":"INV/2026/7"'
expect "... not by its unencoded path" 404 GET /orders/INV/2026/7 "" "" -- "no route"
expect "... another editor's key is 404" 404 GET /orders/INV%2F2026%2F7 "" "$key2"
expect "... its editor's key reads it" 200 GET /orders/INV%2F2026%2F7 "" "$key1" -- '"editor_id":1'
long=$(printf '日%.0s' $(seq 64))
enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$long")
sign_and_post '{"order_id":"'"$long"'","advertiser_id":2,"user_id":1,"amount":10,"commission":1}'
check "an order whose id is 64 three-byte characters is stored ($code)" [ "$code" = 201 ]
expect "it is read back by its path (was 414)" 200 GET "/orders/$enc" "" "" -- "\"order_id\":\"$long\""
expect "a 300-byte order_id in the path is 414" 414 GET "/orders/$(printf 'a%.0s' $(seq 300))" "" "" -- "too long"
expect "an encoded .. is an order_id, not a step up" 404 GET /orders/%2e%2e%2fjobs "" "" -- 'no order with order_id ../jobs'
expect "an encoded NUL is refused" 400 GET /orders/A%00 "" "" -- "encoded NUL"
expect "a lone % is an order_id" 404 GET /orders/% "" "" -- "no order with order_id %"
expect "bytes that are not UTF-8 are refused" 400 GET /orders/%FF "" "" -- "valid UTF-8"
expect "CR LF in an order_id is never a header" 404 GET "/orders/%0d%0aX-Evil:%201" "" "" -- 'no order'
check "... no X-Evil header came back" bash -c "! curl -s -D - -o /dev/null '$B/orders/%0d%0aX-Evil:%201' | grep -qi '^X-Evil'"
expect "an unknown query parameter on an order is refused" 400 GET "/orders/A-1?editor_id=2" "" "" -- "unknown parameter"
expect "application 0 is refused" 400 GET /applications/0
expect "application +1 is refused" 400 GET /applications/+1
expect "application 0x1 is refused" 400 GET /applications/0x1
expect "an application id over int64 is refused" 400 GET /applications/99999999999999999999
expect "apply (editor 1)" 202 POST /applications '{"advertiser_id":3,"editor_id":1}' "$key1"
app=$(field 'd["id"]')
expect "another editor's application is 404" 404 GET "/applications/$app" "" "$key2"
expect "its editor's key reads it, encoded" 200 GET "/applications/%3$app" "" "$key1"

# ---- 4. dead jobs admin ----
expect "jobs: no key is 401" 401 GET /jobs
expect "jobs: an editor key is 403" 403 GET /jobs "" "$key1"
expect "jobs: retry with an editor key is 403" 403 POST /jobs/1/retry "" "$key1"
expect "jobs: retry-dead with an editor key is 403" 403 POST /jobs/retry-dead "" "$key1"
expect "jobs: state DEAD is refused" 400 GET "/jobs?state=DEAD" "" "$admin" -- "state must be dead, queued or inflight"
expect "jobs: state done is refused" 400 GET "/jobs?state=done" "" "$admin"
expect "jobs: a state given twice is refused" 400 GET "/jobs?state=dead&state=queued" "" "$admin" -- "given twice"
expect "jobs: limit 1001 is refused" 400 GET "/jobs?limit=1001" "" "$admin"
expect "jobs: a negative cursor is refused" 400 GET "/jobs?after=-1" "" "$admin"
expect "jobs: a cursor over int64 is refused" 400 GET "/jobs?after=99999999999999999999" "" "$admin"
expect "jobs: a NUL in the state is refused" 400 GET "/jobs?state=dead%00x" "" "$admin"
expect "jobs: retry of job 0 is refused" 400 POST /jobs/0/retry "" "$admin"
expect "jobs: retry of an unknown job is 404" 404 POST /jobs/999999/retry "" "$admin"

# ---- 5. affiliate rpc: every service, hostile text ----
rpc() { # rpc ARGS...: stdout+stderr to $work/out, the exit status in $rc
	AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" rpc "$@" >"$work/out" 2>&1
	rc=$?
}
rpc
for svc in JobAdminService CatalogService PostbackService; do
	check "affiliate rpc lists $svc (was missing)" grep -q "affiliate.v1.$svc" "$work/out"
done
rpc PostbackService ListPostbackEndpoints 'editor_id: 5'
check "affiliate rpc calls PostbackService (was: no service) ($rc)" [ "$rc" = 0 ]
rpc CatalogService UpdateAdvertiser 'id: 2 name: "a\302\205b" update_mask: "name"'
check "... and CatalogService, refusing a C1 control character (1)" \
	bash -c "[ $rc = 1 ] && grep -q 'INVALID_ARGUMENT (3): name must not contain control characters' '$work/out'"
rpc_text() { # rpc_text NAME TEXT MESSAGE: exit 2 with the parser's message
	rpc PostbackService CreatePostbackEndpoint "$2"
	if [ "$rc" = 2 ] && grep -qF -- "$3" "$work/out"; then ok "$1"; else
		not_ok "$1: exit $rc: $(head -c 300 "$work/out")"; fi
}
rpc_text "an unterminated string ending in \\ says so (was: unknown escape \\0)" \
	'url: "http://x\' 'line 1, column 16: the string has no closing " (it ends in a lone \)'
rpc_text "an unterminated string" 'url: "http://x' 'the string has no closing "'
rpc_text "\\x without a digit" 'url: "\x' '\x needs a hex digit'
rpc_text "an octal escape over 255" 'url: "\777"' 'octal escape above \377'
rpc_text "a lone surrogate" 'url: "\ud800"' '\u needs 4 hex digits of a Unicode scalar value'
rpc_text "past U+10FFFF" 'url: "\U00110000"' '\U needs 8 hex digits'
rpc_text "a NUL in a string" 'url: "a\000b"' 'url is a string: UTF-8 without \0'
rpc_text "bytes that are not UTF-8" 'url: "\xff"' 'url is a string: UTF-8 without \0'
rpc_text "a number over int64" 'editor_id: 99999999999999999999999' 'is not a valid 64-bit integer'
rpc_text "a number under int64" 'editor_id: -9223372036854775809' 'is not a valid 64-bit integer'
rpc_text "a float for an integer" 'editor_id: 1e5' 'is not a valid 64-bit integer'
rpc_text "an unclosed list" 'events: [' 'expected a quoted string'
rpc_text "5000 nested braces where there is no message" "$(printf 'editor_id {%.0s' $(seq 5000))" \
	"line 1, column 11: expected ':' after editor_id"
rpc_text "a field given twice" 'editor_id: 1 editor_id: 2' 'editor_id is not repeated and is given twice'
python3 -c 'print("events: [" + ",".join(["\"order.created\""] * 20000) + "] editor_id: 5 url: \"http://192.0.2.1/\"")' |
	AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" rpc PostbackService CreatePostbackEndpoint - >"$work/out" 2>&1
rc=$?
check "20,000 events from stdin: the server's field bound, status 3 ($rc)" \
	bash -c "[ $rc = 1 ] && grep -q 'INVALID_ARGUMENT (3): .*too many fields' '$work/out'"

# ---- 6. Standard Webhooks ----
now=$(date +%s)
swpost() { # swpost ID TIMESTAMP NSIG [ORDER_ID]: the status into $code
	code=$(py "S	$B	$AFFILIATE_WEBHOOK_SECRET	$1	$2	$3	${4:-SW-$1}	$work/body")
}
swpost msg_a "$now" 1
check "a Standard Webhook is taken ($code)" [ "$code" = 201 ]
swpost msg_b "$now" 9
check "nine v1 signatures: 401 ($code)" [ "$code" = 401 ]
check "... saying so (was: malformed)" grep -qF "the webhook-signature header has more than 8 v1 signatures" "$work/body"
swpost msg_c "$((now + 3600))" 1
check "an hour ahead: 401 ($code)" bash -c "[ $code = 401 ] && grep -qF '300 s ahead' '$work/body'"
swpost msg_d "$((now - 3600))" 1
check "an hour old: 401 ($code)" bash -c "[ $code = 401 ] && grep -qF '300 s old' '$work/body'"
for ts in abc 1e9 -1 99999999999999999999 "$now.5" 0x10; do
	swpost msg_e "$ts" 1
	check "timestamp '$ts': 401 ($code)" bash -c "[ $code = 401 ] && grep -qF 'malformed (Unix seconds)' '$work/body'"
done
swpost msg_a "$now" 1 SW-other
check "msg_a again with another order: 200 with the first order, as documented ($code)" \
	bash -c "[ $code = 200 ] && grep -qF '\"order_id\":\"SW-msg_a\"' '$work/body'"
check "the server still answers" curl -sf -o /dev/null "$B/"

# ---- 7. delivery against hostile receivers; dead postback jobs ----
stop_server
start_server --postback-allow-private on --postback-attempts 2 --postback-backoff 100 \
	--postback-disable-after 100 --job-backoff 50
rx_port=$(free_port)
python3 "$HERE/hostile_receiver.py" "$rx_port" "$work/rx.log" &
pids+=($!)
wait_for "$work/rx.log" "receiver: listening" || exit 1
"$BIN/affiliate-worker" --jobs "$jobs_url" --results "$results_url" \
	--concurrency 4 --postback-allow-private on --postback-timeout 3000 \
	--postback-connect-timeout 500 >"$work/worker.log" 2>&1 &
pids+=($!)
R="http://127.0.0.1:$rx_port"
endpoint() { # endpoint EDITOR PATH: the id into $ep
	expect "endpoint $2 for editor $1" 201 POST /postback-endpoints \
		'{"editor_id":'"$1"',"url":"'"$R$2"'","events":'"$ev"'}'
	ep=$(field 'd["endpoint"]["id"]')
}
# attempts EP N: waits (8 s at most) until endpoint EP's log holds N
# attempts with the last one final; the log into $work/body.
attempts() {
	for _ in $(seq 1 160); do
		req GET "/postback-endpoints/$1/attempts"
		[ "$(field 'len(d)')" -ge "$2" ] &&
			[ "$(field 'd[0]["delivery_state"]')" != pending ] && return 0
		sleep 0.05
	done
	return 1
}
endpoint 3 /gone
gone=$ep
sign_and_post '{"order_id":"G-1","advertiser_id":2,"user_id":3,"amount":10,"commission":1}'
check "an order for editor 3 ($code)" [ "$code" = 201 ]
check "410: dead after one attempt" attempts "$gone" 1
dlv=$(field 'd[0]["delivery_id"]')
expect "another editor's key cannot redeliver it" 404 POST "/postback-deliveries/$dlv/redeliver" "" "$key2"
expect "redeliver the dead delivery" 202 POST "/postback-deliveries/$dlv/redeliver"
check "410 again: dead again" attempts "$gone" 2
expect "the delivery's two jobs are dead" 200 GET "/jobs?state=dead" "" "$admin"
dead_ids=$(field '" ".join(str(j["id"]) for j in d if j["kind"] == "postback" and j["ref_id"] == '"$dlv"')')
check "... both listed ($dead_ids)" [ "$(echo $dead_ids | wc -w)" = 2 ]
expect "retry-dead takes one job for the delivery (was 2: two jobs sending it at once)" 202 \
	POST /jobs/retry-dead "" "$admin" -- '{"retried":1,"skipped":1}'
check "its attempt is made, once" attempts "$gone" 3
sleep 0.5
check "the receiver got it three times, not four" [ "$(grep -c 'got /gone' "$work/rx.log")" = 3 ]
req GET "/postback-endpoints/$gone/attempts"
check "the log numbers the attempt 1 (attempts counted again from 1)" [ "$(field 'd[0]["attempt"]')" = 1 ]
set -- $dead_ids
expect "a lone retry of the dead job sends its delivery again" 202 POST "/jobs/$1/retry" "" "$admin" -- \
	'"kind":"postback"'
check "... once more" attempts "$gone" 4
check "... numbered attempt 1 again" [ "$(field 'd[0]["attempt"]')" = 1 ]
expect "delete the endpoint" 200 DELETE "/postback-endpoints/$gone"
expect "retry of the other dead job: 409, its endpoint is deleted (was 202, sent again)" 409 \
	POST "/jobs/$2/retry" "" "$admin" -- "or its endpoint is deleted"
expect "retry-dead skips the jobs whose endpoint is gone" 202 POST /jobs/retry-dead "" "$admin" -- \
	'{"retried":0,"skipped":2}'
sleep 0.3
check "... and nothing more is sent" [ "$(grep -c 'got /gone' "$work/rx.log")" = 4 ]

endpoint 1 /bigbody
big=$ep
endpoint 1 /bighead
head=$ep
sign_and_post '{"order_id":"H-1","advertiser_id":2,"user_id":1,"amount":10,"commission":1}'
check "an order for editor 1 ($code)" [ "$code" = 201 ]
check "200 then a body without end: one attempt" attempts "$big" 1
check "... delivered (was: timed out after 3 s, retried, dead)" \
	[ "$(field 'd[0]["delivery_state"]')/$(field 'd[0]["status_code"]')" = delivered/200 ]
check "... in well under the timeout ($(field 'd[0]["latency_ms"]') ms)" \
	[ "$(field 'd[0]["latency_ms"]')" -lt 2000 ]
check "headers without end: the attempts end" attempts "$head" 2
check "... saying why (was: Out of memory)" \
	[ "$(field 'd[0]["error"]')" = "the answer's headers are larger than 65536 bytes" ]
check "the worker still runs" kill -0 "${pids[-1]}"
check "the server still answers" curl -sf -o /dev/null "$B/"
tap_done
