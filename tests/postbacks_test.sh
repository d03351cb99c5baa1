#!/usr/bin/env bash
# postbacks_test.sh - postbacks to editors (issue 17), through the real
# processes on free loopback ports: affiliate-server, affiliate-bridge,
# affiliate-worker, and receivers this script starts
# (tests/postback_receiver.py, Python's http.server: an implementation of
# the receiving side that is not ours, which checks every delivery's
# Standard Webhooks signature with Python's hmac and records it).
#   1. the registry over REST and the CLI: URL rules and the SSRF refusal
#      (without --postback-allow-private), the whsec_ secret shown once,
#      rotation, editor scoping with API keys, delete.
#   2. the outbox: each change's event written with it, none for a change
#      refused (rolled back); order.created, order.status_changed and
#      application.decided delivered, signed, with a stable payload.
#   3. delivery by the workers: 500 twice then 200 (retried, recorded
#      once), a receiver that stays down (dead after N, redelivered by
#      hand), one that sleeps past the timeout, 410 (not retried), 429 with
#      Retry-After (honoured), an endpoint turned off after its failing
#      streak and on again, a rotation between two attempts (the retry
#      signed with the new secret).
#   4. orders ingested at full speed while a receiver hangs keep their
#      throughput (both figures printed); a worker without
#      --postback-allow-private refuses a loopback endpoint at delivery.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/affiliate-postbacks-XXXXXX)
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
export AFFILIATE_WORKER_SECRET=postbacks-test-worker-secret
export AFFILIATE_WEBHOOK_SECRET=postbacks-test-webhook-secret

# start_server [ARGS...]: the server with the test's settings and ARGS.
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
# $work/body.
req() {
	local args=(-s -o "$work/body" -w '%{http_code}' -X "$1")
	[ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	[ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
	code=$(curl "${args[@]}" "$B$2")
}
# expect NAME STATUS METHOD PATH [BODY] [KEY] -- PATTERN...
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
		not_ok "$name: $m $p → $code, wanted $want: $(cat "$work/body")"
		return 1
	fi
	for pat in "$@"; do
		if ! grep -q -- "$pat" "$work/body"; then
			not_ok "$name: '$pat' not in $(cat "$work/body")"
			return 1
		fi
	done
	ok "$name"
}
jfield() { py_expr "$1" "$work/body"; }

# The receiver (tests/postback_receiver.py), which also answers the
# test's JSON checks (py_expr, py_check).
rx=$work/rx
mkdir -p "$rx"
rx_port=$(free_port)
python3 "$HERE/postback_receiver.py" "$rx" "$rx_port" >"$work/receiver.log" 2>&1 &
pids+=($!)
R="http://127.0.0.1:$rx_port"
wait_for "$work/receiver.log" "receiver: listening" || exit 1
# py_expr EXPR [FILE]: the value of a Python expression over rs (what the
# receiver got) and d (FILE's JSON); py_check FILE CODE: CODE's asserts
# hold (else its failure is printed).
py_expr() { curl -s -G --data-urlencode "expr=$1" --data-urlencode "file=${2:-}" "$R/_expr"; }
py_check() {
	local out
	out=$(curl -s -w '\n%{http_code}' -G --data-urlencode "code=$2" --data-urlencode "file=$1" "$R/_check")
	[ "${out##*$'\n'}" = 200 ] || { echo "${out%$'\n'*}" | tail -3 >&2; return 1; }
}

start_server
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$rpc_url" \
	>"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/bridge.log" "bridge: listening" || exit 1

# ---- 1. the registry ----
ev='["order.created"]'
expect "a URL that is not http(s) is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"ftp://example.com/x","events":'"$ev"'}' "" -- "http:// or https://"
expect "user:password@ in the URL is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"http://u:p@example.com/","events":'"$ev"'}' "" -- "user:password"
for target in "127.0.0.1:9" "10.1.2.3" "172.16.0.1" "192.168.1.1" \
	"169.254.169.254" "[::1]" "[fe80::1]" "[::ffff:127.0.0.1]" "localhost" \
	"0.0.0.0" "100.64.0.1"; do
	expect "SSRF: http://$target/ is refused without --postback-allow-private" 400 \
		POST /postback-endpoints \
		'{"editor_id":1,"url":"http://'"$target"'/hook","events":'"$ev"'}' "" -- \
		"loopback, private or link-local"
done
expect "an unknown event type is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"http://192.0.2.1/","events":["order.deleted"]}' "" -- "unknown event type"
expect "no event at all is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"http://192.0.2.1/","events":[]}' "" -- "at least one"
expect "an unknown editor is 404" 404 POST /postback-endpoints \
	'{"editor_id":999,"url":"http://192.0.2.1/","events":'"$ev"'}'
expect "a public address is taken (TEST-NET, never dialled here)" 201 \
	POST /postback-endpoints \
	'{"editor_id":3,"url":"http://192.0.2.1/hook","events":["order.created","application.decided"]}' "" -- \
	'"secret":"whsec_' '"enabled":true'
pub_id=$(jfield 'd["endpoint"]["id"]')
check "the secret is whsec_ and 32 bytes of base64" \
	py_check "$work/body" 's=d["secret"]; assert s.startswith("whsec_") and len(base64.b64decode(s[6:], validate=True)) == 32'
secret1=$(jfield 'd["secret"]')

stop_server
start_server --postback-allow-private on
check "the server says private targets are allowed" grep -q "postback endpoints may be on loopback" "$work/server.log"
expect "with --postback-allow-private, a loopback endpoint is taken" 201 \
	POST /postback-endpoints \
	'{"editor_id":1,"url":"http://127.0.0.1:9/hook","events":["order.created"]}' "" -- '"secret":"whsec_'
lo_id=$(jfield 'd["endpoint"]["id"]')
expect "the list shows the endpoints, never a secret" 200 GET /postback-endpoints "" "" -- \
	'"url":"http://192.0.2.1/hook"' '"events":\["order.created","application.decided"\]'
check "no secret in the list" bash -c "! grep -q whsec_ '$work/body'"
expect "the list of one editor" 200 GET "/postback-endpoints?editor_id=3" "" "" -- "\"id\":$pub_id"
check "... and only that editor's" bash -c "! grep -q '\"editor_id\":1' '$work/body'"
expect "rotate: a new secret, shown once" 200 POST "/postback-endpoints/$pub_id/rotate-secret" "" "" -- '"secret":"whsec_'
secret2=$(jfield 'd["secret"]')
check "the rotated secret differs" [ "$secret1" != "$secret2" ]
expect "rotate of an unknown endpoint is 404" 404 POST "/postback-endpoints/9999/rotate-secret"

# Editor keys: each editor acts on its own endpoints only.
"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key >"$work/admin" 2>>"$work/create.log"
admin=$(tail -n 1 "$work/admin")
AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" keys create --editor 3 >"$work/body"
key3=$(jfield 'd["token"]')
AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" keys create --editor 2 >"$work/body"
key2=$(jfield 'd["token"]')
expect "an editor key lists its own endpoints" 200 GET /postback-endpoints "" "$key3" -- "\"id\":$pub_id"
check "... and no other editor's" bash -c "! grep -q '\"id\":$lo_id,' '$work/body'"
expect "an editor key cannot register for another editor" 403 POST /postback-endpoints \
	'{"editor_id":3,"url":"http://127.0.0.1:9/","events":'"$ev"'}' "$key2"
expect "another editor's endpoint is not found for an editor key" 404 \
	DELETE "/postback-endpoints/$pub_id" "" "$key2"
expect "another editor's log is not found for an editor key" 404 \
	GET "/postback-endpoints/$pub_id/attempts" "" "$key2"
expect "the owner deletes its endpoint" 200 DELETE "/postback-endpoints/$pub_id" "" "$key3" -- "\"id\":$pub_id"
expect "deleted: gone from the list" 200 GET /postback-endpoints "" "$key3"
check "... the list is empty" [ "$(cat "$work/body")" = "[]" ]
expect "deleting it again is 404" 404 DELETE "/postback-endpoints/$pub_id" "" "$key3"
expect "a wrong method on the collection is 405" 405 PUT /postback-endpoints

# The CLI, over RPC.
"$BIN/affiliate" --url "$rpc_url" postbacks create http://127.0.0.1:9/cli \
	order.created,order.status_changed --editor 2 >"$work/body" 2>"$work/err"
check "affiliate postbacks create prints the endpoint and its secret" \
	py_check "$work/body" 'assert d["secret"].startswith("whsec_") and d["endpoint"]["events"] == ["order.created","order.status_changed"] and d["endpoint"]["editor_id"] == 2'
cli_id=$(jfield 'd["endpoint"]["id"]')
"$BIN/affiliate" --url "$rpc_url" postbacks list --editor 2 >"$work/body"
check "affiliate postbacks list shows it" \
	py_check "$work/body" 'assert [e["id"] for e in d["endpoints"]] == ['"$cli_id"']'
"$BIN/affiliate" --url "$rpc_url" postbacks delete "$cli_id" >"$work/body"
check "affiliate postbacks delete exits 0" [ $? = 0 ]
"$BIN/affiliate" --url "$rpc_url" postbacks bogus >/dev/null 2>&1
check "an unknown postbacks command is a usage error (2)" [ $? = 2 ]

# At most 16 live endpoints an editor (each is written a delivery and a
# job in the order's own transaction); a deleted one frees its place.
caps=()
for i in $(seq 1 16); do
	req POST /postback-endpoints '{"editor_id":3,"url":"http://127.0.0.1:9/cap'"$i"'","events":'"$ev"'}'
	[ "$code" = 201 ] || break
	caps+=("$(jfield 'd["endpoint"]["id"]')")
done
check "editor 3 registers 16 endpoints (201 each)" [ "${#caps[@]}" = 16 ]
expect "the 17th is refused: 400 FAILED_PRECONDITION, saying why" 400 POST /postback-endpoints \
	'{"editor_id":3,"url":"http://127.0.0.1:9/cap17","events":'"$ev"'}' "" -- \
	'"code":"FAILED_PRECONDITION"' 'editor 3 has 16 postback endpoints, the most one may have: delete one first'
expect "one deleted ..." 200 DELETE "/postback-endpoints/${caps[0]}"
expect "... frees its place" 201 POST /postback-endpoints \
	'{"editor_id":3,"url":"http://127.0.0.1:9/cap17","events":'"$ev"'}'
caps[0]=$(jfield 'd["endpoint"]["id"]')
for id in "${caps[@]}"; do req DELETE "/postback-endpoints/$id"; done
expect "editor 3 has none left" 200 GET "/postback-endpoints?editor_id=3"
check "... the list is empty" [ "$(cat "$work/body")" = "[]" ]

# ---- 2-4. events and their delivery ----
stop_server
start_server --postback-allow-private on --postback-attempts 4 \
	--postback-backoff 200 --postback-disable-after 6 --job-backoff 50
"$BIN/affiliate-worker" --jobs "$jobs_url" --results "$results_url" \
	--concurrency 4 --review-delay 10 --postback-allow-private on \
	--postback-timeout 1000 --postback-connect-timeout 500 \
	--log-level debug >"$work/worker.log" 2>&1 &
worker_pid=$!
pids+=($worker_pid)

# register NAME EDITOR PATH EVENTS: the endpoint's id into $NAME_id, its
# secret into the receiver's secrets.json.
echo '{}' >"$rx/secrets.json"
register() {
	req POST /postback-endpoints \
		'{"editor_id":'"$2"',"url":"'"$R$3"'","events":'"$4"'}'
	[ "$code" = 201 ] || { not_ok "register $3: $code $(cat "$work/body")"; return 1; }
	eval "$1_id=$(jfield 'd["endpoint"]["id"]')"
	py_expr 'json.dump(dict(json.load(open("'"$rx/secrets.json"'")), **{"'"$3"'": d["secret"]}), open("'"$rx/secrets.json"'.new", "w"))' "$work/body" >/dev/null
	mv "$rx/secrets.json.new" "$rx/secrets.json"
}
register ok 1 /ok '["order.created","order.status_changed","application.decided"]'
register flaky 1 /flaky '["order.created"]'
register switch 2 /switch '["order.created"]'
register slow 3 /slow '["order.created"]'
register gone 4 /gone '["order.created"]'
register limited 4 /limited '["order.created"]'
register down 5 /down '["order.created"]'

# order ID EDITOR [STATUS] [AMOUNT]: a partner's signed webhook; the
# status into $code.
order() {
	local body='{"order_id":"'"$1"'","advertiser_id":1,"user_id":'"$2"',"amount":'"${4:-49.9}"',"commission":4.99'"${3:+,\"status\":\"$3\"}"'}'
	local sig
	sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$AFFILIATE_WEBHOOK_SECRET" | awk '{print $NF}')
	code=$(curl -s -o "$work/body" -w '%{http_code}' -X POST \
		-H "X-Partner-Signature: $sig" --data-binary "$body" "$B/webhook/orders")
}
# rx_count PYTHON-CONDITION: how many received requests match (r is one).
rx_count() { py_expr "sum(1 for r in rs if ($1))"; }
# wait_rx N CONDITION [SECONDS]: until at least N requests match.
wait_rx() {
	for _ in $(seq 1 $((${3:-10} * 10))); do
		[ "$(rx_count "$2")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
events_stored() { backend_sql "SELECT count(*) FROM postback_events"; }
# attempts ENDPOINT: its delivery log into $work/body.
# attempts ID [N]: the endpoint's log into $work/body; with N, asked again
# (5 s at most) until it holds N attempts: the receiver has an attempt
# before the worker's result reaches the server and its log.
attempts() {
	for _ in $(seq 1 50); do
		req GET "/postback-endpoints/$1/attempts"
		[ -z "${2:-}" ] && return
		[ "$(grep -o '"attempt":' "$work/body" | wc -l)" -ge "$2" ] && return
		sleep 0.1
	done
}

touch "$rx/down"
order pb-1 1
check "an order for editor 1 is stored (201)" [ "$code" = 201 ]
wait_rx 1 'r["path"]=="/ok"'
check "order.created reached /ok, signed (checked with Python's hmac)" \
	[ "$(rx_count 'r["path"]=="/ok" and r["sig"]=="ok" and r["type"]=="order.created" and r["data"]["order_id"]=="pb-1"')" = 1 ]
check "the payload: id evt_<32 hex> (= webhook-id), type, RFC 3339 timestamp, the order as data" \
	py_check "" 'r=rs[0]
assert re.fullmatch(r"evt_[0-9a-f]{32}", r["event_id"]) and r["id"]==r["event_id"], r
d=r["data"]; assert d["editor_id"]==1 and d["amount_cents"]==4990 and d["commission_cents"]==499 and d["status"]=="pending", d'
attempts "$ok_id" 1
check "the endpoint's log: attempt 1, 200, delivered" \
	py_check "$work/body" 'a=d; assert len(a)==1 and a[0]["attempt"]==1 and a[0]["status_code"]==200 and a[0]["delivery_state"]=="delivered" and a[0]["latency_ms"]>=0, a'

# 500 twice then 200: retried, and the event recorded once.
wait_rx 3 'r["path"]=="/flaky"' 10
check "/flaky: 500, 500, then 200, all with the same webhook-id" \
	py_check "" 'rs=[r for r in rs if r["path"]=="/flaky"]
assert [r["status"] for r in rs]==[500,500,200] and len({r["id"] for r in rs})==1 and all(r["sig"]=="ok" for r in rs), rs'
check "/flaky: the event was taken (2xx) once" [ "$(rx_count 'r["path"]=="/flaky" and r["status"]==200')" = 1 ]
attempts "$flaky_id" 3
check "/flaky's log: attempts 3, 2, 1 (newest first): 200, 500, 500; delivered" \
	py_check "$work/body" 'a=d; assert [(x["attempt"],x["status_code"]) for x in a]==[(3,200),(2,500),(1,500)] and a[0]["delivery_state"]=="delivered", a'

# A receiver that stays down: dead after 4 attempts, then sent by hand.
order pb-2 2
wait_rx 4 'r["path"]=="/switch"' 15
sleep 1 # time for a fifth attempt, were there one
attempts "$switch_id" 4
check "/switch down: 4 attempts of 503, then the delivery is dead" \
	py_check "$work/body" 'a=d; assert [x["status_code"] for x in a]==[503]*4 and a[0]["delivery_state"]=="dead" and "503" in a[0]["error"], a'
check "no fifth attempt" [ "$(rx_count 'r["path"]=="/switch"')" = 4 ]
delivery=$(jfield 'd[0]["delivery_id"]')
rm -f "$rx/down"
expect "a dead delivery can be sent again by hand (202)" 202 \
	POST "/postback-deliveries/$delivery/redeliver" "" "" -- '"state":"pending"'
wait_rx 1 'r["path"]=="/switch" and r["status"]==200' 10
check "redelivered: /switch, up again, takes it, same webhook-id" \
	py_check "" 'rs=[r for r in rs if r["path"]=="/switch"]
assert len(rs)==5 and rs[-1]["status"]==200 and len({r["id"] for r in rs})==1 and rs[-1]["sig"]=="ok", rs'
attempts "$switch_id" 5
check "the log shows the redelivery as attempt 1, delivered" \
	py_check "$work/body" 'a=d; assert (a[0]["attempt"],a[0]["status_code"],a[0]["delivery_state"])==(1,200,"delivered") and len(a)==5, a'
expect "a delivered delivery is sent again on request too" 202 \
	POST "/postback-deliveries/$delivery/redeliver"
expect "an unknown delivery is 404" 404 POST "/postback-deliveries/999999/redeliver"

# A receiver that sleeps past the timeout (1 s): given up, retried.
order pb-3 3
wait_rx 2 'r["path"]=="/slow"' 15
attempts "$slow_id" 1
check "/slow: the attempt timed out after about 1 s (status 0)" \
	py_check "$work/body" 'a=d; x=a[-1]; assert x["status_code"]==0 and "timed out" in x["error"] and 900<=x["latency_ms"]<2500, a'

# 410: final at once; 429 with Retry-After: 2: the next attempt waits.
order pb-4 4
wait_rx 2 'r["path"]=="/limited"' 15
wait_rx 1 'r["path"]=="/gone"' 5
sleep 1
check "/gone (410) is not retried" [ "$(rx_count 'r["path"]=="/gone"')" = 1 ]
attempts "$gone_id" 1
check "/gone's delivery is dead after one attempt" \
	py_check "$work/body" 'a=d; assert len(a)==1 and a[0]["status_code"]==410 and a[0]["delivery_state"]=="dead", a'
check "/limited: the retry came after Retry-After (2 s), not the 200 ms backoff" \
	py_check "" 'rs=[r for r in rs if r["path"]=="/limited"]
assert [r["status"] for r in rs]==[429,200] and rs[1]["t"]-rs[0]["t"]>=1.9, rs'

# A rotation between two attempts: the retry is signed with the new secret.
register rot 2 /rotating '["order.created"]'
order pb-rot 2
wait_rx 1 'r["path"]=="/rotating"' 10
req POST "/postback-endpoints/$rot_id/rotate-secret"
py_expr 'json.dump(dict(json.load(open("'"$rx/secrets.json"'")), **{"/rotating": d["secret"]}), open("'"$rx/secrets.json"'.new", "w"))' "$work/body" >/dev/null
mv "$rx/secrets.json.new" "$rx/secrets.json"
wait_rx 2 'r["path"]=="/rotating"' 10
check "after a rotation, the retry of an earlier event verifies with the new secret" \
	py_check "" 'rs=[r for r in rs if r["path"]=="/rotating"]; assert [(r["status"], r["sig"]) for r in rs[:2]]==[(429,"ok"),(200,"ok")] and all(r["id"]==rs[0]["id"] and (r["status"], r["sig"])==(200,"ok") for r in rs[2:]), rs'
# (More than one 200 happens on a slow host, e.g. under ASan: the worker's
# 1 s timeout ran out before it read the 200 the receiver had sent, so it
# tried again, as at-least-once delivery does; each with the new secret.)

# A long failing streak turns the endpoint off (6 here).
order pb-5a 5
order pb-5b 5
for _ in $(seq 1 100); do
	req GET "/postback-endpoints?editor_id=5"
	grep -q '"enabled":false' "$work/body" && break
	sleep 0.1
done
check "/down: off after 6 failed attempts in a row, saying why" \
	py_check "$work/body" 'e=d[0]; assert e["enabled"] is False and e["failure_streak"]==6 and "6 failed attempts in a row" in e["disabled_reason"], e'
sleep 1
n_down=$(rx_count 'r["path"]=="/down"')
# Two deliveries alternate: the other one's attempt may be on its way when
# the sixth failure turns the endpoint off.
check "... and none started after that (6, or 7 with one in flight)" \
	[ "$n_down" -ge 6 ] && [ "$n_down" -le 7 ]
req GET "/postback-endpoints/$down_id/attempts"
check "both of its deliveries are dead" \
	py_check "$work/body" 'a=d; assert {x["delivery_state"] for x in a}=={"dead"} and len({x["delivery_id"] for x in a})==2, a'
order pb-5c 5
sleep 1
check "an endpoint that is off gets no new event" [ "$(rx_count 'r["path"]=="/down"')" = "$n_down" ]
expect "enable turns it on again, its streak reset" 200 POST "/postback-endpoints/$down_id/enable" "" "" -- \
	'"enabled":true' '"failure_streak":0'

# The status moves, and an application's decision.
order pb-1 1 approved
check "the order's status moves (200)" [ "$code" = 200 ]
wait_rx 1 'r["path"]=="/ok" and r["type"]=="order.status_changed"' 10
check "order.status_changed reached /ok with the new status, signed" \
	[ "$(rx_count 'r["path"]=="/ok" and r["type"]=="order.status_changed" and r["data"]["status"]=="approved" and r["sig"]=="ok"')" = 1 ]
req GET "/advertisers?editor_id=1&limit=1"
adv=$(jfield 'd[0]["id"]')
expect "editor 1 applies" 202 POST /applications '{"advertiser_id":'"$adv"',"editor_id":1}'
app=$(jfield 'd["id"]')
wait_rx 1 'r["path"]=="/ok" and r["type"]=="application.decided"' 10
check "application.decided reached /ok: the application, approved, signed" \
	[ "$(rx_count 'r["path"]=="/ok" and r["type"]=="application.decided" and r["data"]["id"]=='"$app"' and r["data"]["status"]=="approved" and r["sig"]=="ok"')" = 1 ]

# Nothing for a change that was refused (rolled back).
before=$(events_stored)
order pb-1 1 approved 12.5
check "the same order_id with another amount is refused (409)" [ "$code" = 409 ]
order pb-1 1 pending
check "a status moving back is refused" [ "$code" != 200 ] && [ "$code" != 201 ]
order pb-9 999
check "an order for an unknown editor is refused (404 or 422)" [ "$code" = 404 ] || [ "$code" = 422 ]
check "no event was written for any of them" [ "$(events_stored)" = "$before" ]
order pb-1b 1
check "...while an accepted order writes one (with its deliveries)" [ "$(events_stored)" = $((before + 1)) ]

# ---- 4. ingest while a receiver hangs ----
# load N EDITOR TAG: N signed orders for EDITOR over 4 keep-alive
# connections; prints the seconds taken and how many were not 201.
load() {
	python3 - "$http_port" "$AFFILIATE_WEBHOOK_SECRET" "$1" "$2" "$3" <<'PY'
import hashlib, hmac, http.client, sys, threading, time
port, secret, n, editor, tag = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
bad = []
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(k, n, 4):
        body = ('{"order_id":"%s-%d","advertiser_id":1,"user_id":%d,"amount":10,"commission":1}' % (tag, i, editor)).encode()
        c.request("POST", "/webhook/orders", body, {"X-Partner-Signature": hmac.new(secret, body, hashlib.sha256).hexdigest()})
        r = c.getresponse(); r.read()
        if r.status != 201: bad.append(r.status)
t = time.monotonic()
ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
[x.start() for x in ts]; [x.join() for x in ts]
print("%.3f %d" % (time.monotonic() - t, len(bad)))
PY
}
# Editor 5 gets no postback (its endpoint deleted), editor 6's go to a
# receiver that hangs; the rounds alternate, 3 x 100 orders each, so that
# the rest of the (shared) host weighs on both alike.
# A hanging receiver must stay on for the whole run: no streak limit.
stop_server
start_server --postback-allow-private on --postback-attempts 4 \
	--postback-backoff 200 --postback-disable-after 1000000
expect "editor 5's endpoint is deleted (the baseline has no postback)" 200 DELETE "/postback-endpoints/$down_id"
register hang 6 /hang '["order.created"]'
base_s=0 hang_s=0 bad=0
for round in 1 2 3; do
	read -r t b < <(load 100 5 "base$round")
	base_s=$(awk -v a="$base_s" -v b="$t" 'BEGIN { print a + b }')
	bad=$((bad + b))
	read -r t b < <(load 100 6 "hang$round")
	hang_s=$(awk -v a="$hang_s" -v b="$t" 'BEGIN { print a + b }')
	bad=$((bad + b))
done
base_rate=$(awk -v s="$base_s" 'BEGIN { printf "%d", 300 / s }')
hang_rate=$(awk -v s="$hang_s" 'BEGIN { printf "%d", 300 / s }')
echo "# ingest: $base_rate orders/s with no postback; $hang_rate orders/s with each order's postback going to a receiver that hangs (1 s timeout, 4 worker slots)"
check "every order of both runs was stored (201)" [ "$bad" = 0 ]
wait_rx 4 'r["path"]=="/hang"' 5
check "the hanging receiver was being tried meanwhile (every worker slot)" \
	[ "$(rx_count 'r["path"]=="/hang"')" -ge 4 ]
attempts "$hang_id" 1
check "... each attempt given up after the 1 s timeout" \
	py_check "$work/body" 'a=d; assert a and all(x["status_code"]==0 and "timed out" in x["error"] for x in a), a'
# The figures are printed above; the check is loose because a shared
# host moves both rates a lot (187 against 76 seen under load, 316
# against 204 alone straight after): ingest waiting on the receiver
# would be about 4 orders/s (4 slots, 1 s timeout), far below a quarter.
check "ingest keeps at least a quarter of its throughput while the receiver hangs" \
	[ $((hang_rate * 4)) -ge "$base_rate" ]
check "every delivery's signature verified (all paths)" \
	[ "$(rx_count 'r["sig"]!="ok"')" = 0 ]

# ---- the worker's own SSRF check, at delivery ----
# A worker without --postback-allow-private refuses to dial a loopback
# endpoint the server took (the name may point elsewhere by now): final.
expect "deleting the hanging endpoint gives its queue up" 200 DELETE "/postback-endpoints/$hang_id"
kill "$worker_pid"
wait "$worker_pid" 2>/dev/null
"$BIN/affiliate-worker" --jobs "$jobs_url" --results "$results_url" \
	--concurrency 4 --postback-timeout 1000 >"$work/worker2.log" 2>&1 &
pids+=($!)
order pb-ssrf 1
for _ in $(seq 1 100); do
	attempts "$ok_id"
	grep -q "loopback, private or link-local" "$work/body" && break
	sleep 0.1
done
check "a worker without --postback-allow-private refuses 127.0.0.1 at delivery: one attempt, dead" \
	py_check "$work/body" 'x=d[0]; assert x["status_code"]==0 and "loopback, private or link-local" in x["error"] and x["delivery_state"]=="dead" and x["attempt"]==1, d'
check "... and the receiver never saw that order" [ "$(rx_count 'r["data"] and r["data"].get("order_id")=="pb-ssrf"')" = 0 ]

tap_done
