#!/usr/bin/env bash
# stdwebhooks_test.sh - partners' webhooks signed by code that is not ours,
# through the real affiliate-bridge and affiliate-server over HTTP: the
# Standard Webhooks form (webhook-id, webhook-timestamp, webhook-signature)
# signed with Python's hmac and base64, and the t=,v1= form under its
# Stripe-Signature alias signed with the openssl command line. Valid
# (201, stored), wrong (401, the JSON error), stale (401, nothing
# stored), rotation of the global secrets and of an advertiser's own
# (old and new both accepted), a replayed webhook-id with another
# order_id (200 with the first order, stored once; again after a server
# restart on SQLite, through a second server on PostgreSQL: the id is in
# the database, not in a server's memory), malformed headers (clear 4xx,
# the server still answering), and `affiliate webhook sign --standard`.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-stdwh-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop # before wait: PostgreSQL is a child too
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }
export BACKEND_DATA_DIR=$work/data

# The Standard Webhooks signature, computed here with Python's own hmac
# and base64 (as the standardwebhooks library does): a whsec_ secret is
# the key it decodes to, any other secret its own bytes.
# One Python for the whole test (a start costs 0.1-0.7 s on a busy host):
# it reads "SECRET ID TIMESTAMP FILE" lines and answers each signature.
coproc PYSIGN { python3 -u -c '
import base64, hashlib, hmac, sys
for line in sys.stdin:
    secret, msg_id, ts, path = line.split()
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    body = open(path, "rb").read()
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    print("v1," + base64.b64encode(mac).decode())
'; }
pids+=("$PYSIGN_PID")
pysign() { # pysign SECRET ID TIMESTAMP FILE
	local sig
	echo "$1 $2 $3 $4" >&"${PYSIGN[1]}"
	read -r -t 10 sig <&"${PYSIGN[0]}"
	echo "$sig"
}
# The t=<unix>,v1=<hex> form with the openssl command line.
osslsign() { # osslsign SECRET TIMESTAMP FILE
	printf 't=%s,v1=%s\n' "$2" "$({ printf '%s.' "$2"; cat "$3"; } |
		openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1)"
}
body() { # body FILE ORDER_ID ADVERTISER
	printf '{"order_id":"%s","advertiser_id":%s,"user_id":1,"amount":12.5,"commission":1.25}' \
		"$2" "$3" >"$1"
}
post() { # post FILE HEADER...: prints the status; the answer in $work/resp
	local f=$1 args=()
	shift
	for h in "$@"; do args+=(-H "$h"); done
	curl -s -o "$work/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' "${args[@]}" \
		--data-binary "@$f" "http://127.0.0.1:$port/webhook/orders"
}
std() { # std SECRET ID TIMESTAMP FILE: post signed with the three headers
	post "$4" "webhook-id: $2" "webhook-timestamp: $3" \
		"webhook-signature: $(pysign "$1" "$2" "$3" "$4")"
}
stored() { # stored ORDER_ID: how many rows hold it
	backend_sql "SELECT count(*) FROM orders WHERE order_id = '$1'"
}
error_is() { # error_is CODE MESSAGE: the JSON error in $work/resp
	grep -qF "{\"error\":{\"code\":\"$1\",\"message\":\"$2\"" "$work/resp" ||
		{ echo "# got: $(cat "$work/resp")"; return 1; }
}
start_server() { # start_server N: server N (rpc$N.sock) and its bridge
	"$BIN/affiliate-server" --listen "ipc://$work/rpc$1.sock" \
		--data-dir "$work/data${1#1}" --redis off \
		--jobs "ipc://$work/jobs$1.sock" --results "ipc://$work/results$1.sock" \
		>"$work/server$1.log" 2>&1 &
	pids+=($!)
	server_pid=$!
	wait_for "$work/server$1.log" "server: ready" || return 1
	# A restarted server gets a new bridge; a second one a bridge of its
	# own beside the first's ($port1).
	if [ -n "${bridge_pid:-}" ] && [ "$1" = 1 ]; then
		kill -9 "$bridge_pid" 2>/dev/null
		wait "$bridge_pid" 2>/dev/null
	fi
	port1=${port:-}
	port=$(free_port)
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$port" \
		--server "ipc://$work/rpc$1.sock" >"$work/bridge$1.log" 2>&1 &
	pids+=($!)
	bridge_pid=$!
	wait_for "$work/bridge$1.log" "bridge: listening"
}

# Two global secrets, as during a rotation: the new one written
# whsec_<base64> (as Svix hands them out), the old one a plain string.
new=whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(24)).decode())')
old=partner-old-secret
# An admin key, for the advertiser's own secrets.
"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key >"$work/admin" 2>/dev/null
admin=$(cat "$work/admin")
export AFFILIATE_WEBHOOK_SECRET="$new,$old"
start_server 1 || { not_ok "the server and the bridge start"; tap_done; exit; }
now=$(date +%s)

body "$work/s1" S-1 2
code=$(std "$new" msg_S1 "$now" "$work/s1")
check "a Standard Webhooks request signed by Python: 201 ($code)" [ "$code" = 201 ]
check "its order is in the answer" grep -q '"order_id":"S-1"' "$work/resp"
check "and stored once, to the cent" \
	[ "$(backend_sql "SELECT count(*), sum(amount_cents) FROM orders WHERE order_id = 'S-1'")" = "1|1250" ]
code=$(std "$new" msg_S1 "$now" "$work/s1")
check "the same request again: 200 ($code)" [ "$code" = 200 ]

# The same webhook-id with another order_id (re-signed, so it verifies):
# the order the id stored first, and nothing new.
body "$work/s2" S-2 2
code=$(std "$new" msg_S1 "$now" "$work/s2")
check "a replayed webhook-id with another order_id: 200 ($code)" [ "$code" = 200 ]
check "answers the order that id stored (S-1)" grep -q '"order_id":"S-1"' "$work/resp"
check "S-2 is not stored" [ "$(stored S-2)" = 0 ]
check "the id is kept once in webhook_ids" \
	[ "$(backend_sql "SELECT count(*), min(order_id) FROM webhook_ids WHERE webhook_id = 'msg_S1'")" = "1|S-1" ]
# The id is scoped by advertiser: another advertiser's msg_S1 is its own.
body "$work/s2b" S-2B 3
code=$(std "$new" msg_S1 "$now" "$work/s2b")
check "the same webhook-id from another advertiser stores its order: 201 ($code)" \
	[ "$code" = 201 ] && [ "$(stored S-2B)" = 1 ]

# Wrong secret, tampered body, stale and future timestamps.
code=$(std whsec_d3JvbmctYnV0LXdlbGwtZm9ybWVk msg_W1 "$now" "$work/s2")
check "signed with another secret: 401 ($code)" [ "$code" = 401 ]
check "with a clear JSON error" error_is UNAUTHENTICATED "the signature does not match the body"
sig=$(pysign "$new" msg_W2 "$now" "$work/s1")
code=$(post "$work/s2" "webhook-id: msg_W2" "webhook-timestamp: $now" "webhook-signature: $sig")
check "a signature of another body: 401 ($code)" [ "$code" = 401 ]
body "$work/s3" S-3 2
code=$(std "$new" msg_S3 "$((now - 301))" "$work/s3")
check "a timestamp 301 s old, correctly signed: 401 ($code)" [ "$code" = 401 ]
check "says it is stale" error_is UNAUTHENTICATED "the webhook-timestamp is more than 300 s old"
code=$(std "$new" msg_S3 "$((now + 400))" "$work/s3")
check "a timestamp 400 s ahead: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the webhook-timestamp is more than 300 s ahead"
check "nothing of them is stored" [ "$(stored S-2)$(stored S-3)" = 00 ]
check "and no id of a refused request is kept" \
	[ "$(backend_sql "SELECT count(*) FROM webhook_ids WHERE webhook_id IN ('msg_W1', 'msg_W2', 'msg_S3')")" = 0 ]

# Rotation of the global secrets: the old (raw) one still signs, and a
# sender may send both signatures, space-separated.
code=$(std "$old" msg_S3 "$now" "$work/s3")
check "signed with the old secret during the rotation: 201 ($code)" [ "$code" = 201 ]
body "$work/s4" S-4 2
sigs="$(pysign whsec_d3JvbmctYnV0LXdlbGwtZm9ybWVk msg_S4 "$now" "$work/s4") $(pysign "$new" msg_S4 "$now" "$work/s4")"
code=$(post "$work/s4" "webhook-id: msg_S4" "webhook-timestamp: $now" "webhook-signature: $sigs")
check "two signatures, one by an unknown key and one by the new: 201 ($code)" [ "$code" = 201 ]

# An advertiser's own secrets (hex, made by the server), rotated: the
# partner signs with whsec_ + base64(secret).
AFFILIATE_KEY=$admin "$BIN/affiliate" --url "ipc://$work/rpc1.sock" webhook secret rotate --advertiser 3 >"$work/rot1"
a3_old=$(sed -n 's/.*"secret": "\([0-9a-f]*\)".*/\1/p' "$work/rot1")
AFFILIATE_KEY=$admin "$BIN/affiliate" --url "ipc://$work/rpc1.sock" webhook secret rotate --advertiser 3 >"$work/rot2"
a3_new=$(sed -n 's/.*"secret": "\([0-9a-f]*\)".*/\1/p' "$work/rot2")
check "advertiser 3 has two secrets" [ ${#a3_old} = 64 ] && [ ${#a3_new} = 64 ] && [ "$a3_old" != "$a3_new" ]
b64() { printf '%s' "$1" | base64 -w0; }
body "$work/a1" A3-1 3
code=$(std "whsec_$(b64 "$a3_new")" msg_A1 "$now" "$work/a1")
check "advertiser 3, whsec_ of its new secret: 201 ($code)" [ "$code" = 201 ]
body "$work/a2" A3-2 3
code=$(std "whsec_$(b64 "$a3_old")" msg_A2 "$now" "$work/a2")
check "whsec_ of its previous secret, in its grace period: 201 ($code)" [ "$code" = 201 ]
body "$work/a3" A3-3 3
code=$(std "$new" msg_A3 "$now" "$work/a3")
check "the global secret no longer signs for it: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the signature does not match the body (checked with advertiser's own secret)"
check "stored: A3-1 and A3-2, not A3-3" [ "$(stored A3-1)$(stored A3-2)$(stored A3-3)" = 110 ]

# Stripe-Signature: the t=,v1= form (openssl here) under Stripe's name.
body "$work/p1" P-1 2
code=$(post "$work/p1" "Stripe-Signature: $(osslsign "$old" "$now" "$work/p1")")
check "Stripe-Signature signed with openssl: 201 ($code)" [ "$code" = 201 ] && [ "$(stored P-1)" = 1 ]
body "$work/p2" P-2 2
code=$(post "$work/p2" "Stripe-Signature: $(osslsign wrong "$now" "$work/p2")")
check "a wrong Stripe-Signature: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the signature does not match the body"
sig=$(osslsign "$old" "$now" "$work/p2")
code=$(post "$work/p2" "Stripe-Signature: $sig" "X-Partner-Signature: $sig")
check "Stripe-Signature and X-Partner-Signature both: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "X-Partner-Signature and Stripe-Signature are both given: send one"
code=$(post "$work/p2" "X-Partner-Signature: $sig")
check "X-Partner-Signature still works: 201 ($code)" [ "$code" = 201 ]

# Malformed headers: a clear answer each, never a crash.
body "$work/m" M-1 2
code=$(post "$work/m" "webhook-id: msg_M" "webhook-timestamp: $now" "webhook-signature: v1,not base64!")
check "a webhook-signature that is not base64: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the webhook-signature header is malformed (v1,<base64> entries separated by spaces)"
code=$(post "$work/m" "webhook-timestamp: $now" "webhook-signature: $(pysign "$new" msg_M "$now" "$work/m")")
check "no webhook-id: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the webhook-id header is missing"
code=$(post "$work/m" "webhook-id: msg_M" "webhook-timestamp: soon" "webhook-signature: v1,AAAA")
check "a webhook-timestamp that is not Unix seconds: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the webhook-timestamp header is malformed (Unix seconds)"
code=$(post "$work/m" "webhook-id: msg_M" "webhook-timestamp: $now" "webhook-signature: v1a,AAAA")
check "no v1 entry: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "the webhook-signature header has no v1 signature"
code=$(post "$work/m" "webhook-id: msg_M" "webhook-timestamp: $now" \
	"webhook-signature: $(pysign "$new" msg_M "$now" "$work/m")" "X-Partner-Signature: $(osslsign "$old" "$now" "$work/m")")
check "two signature forms at once: 401 ($code)" [ "$code" = 401 ] &&
	error_is UNAUTHENTICATED "two signature forms: send X-Partner-Signature (or Stripe-Signature), or the webhook-id, webhook-timestamp and webhook-signature headers, not both"
code=$(post "$work/m" "webhook-id: msg_M" "webhook-id: msg_N" "webhook-timestamp: $now" \
	"webhook-signature: $(pysign "$new" msg_M "$now" "$work/m")")
check "webhook-id given twice: 400 ($code)" [ "$code" = 400 ] &&
	error_is INVALID_ARGUMENT "the webhook-id header is given twice"
check "none of them stored M-1" [ "$(stored M-1)" = 0 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
check "the bridge and the server still answer: 200 ($code)" [ "$code" = 200 ]

# affiliate webhook sign --standard: three header lines curl sends as is,
# whose signature Python computes the same.
body "$work/c1" C-1 2
AFFILIATE_WEBHOOK_SECRET="$new" "$BIN/affiliate" webhook sign --standard "$work/c1" >"$work/hdrs"
mapfile -t h <"$work/hdrs"
check "sign --standard prints webhook-id, webhook-timestamp, webhook-signature" \
	bash -c "[ \"\${1%%:*}|\${2%%:*}|\${3%%:*}\" = 'webhook-id|webhook-timestamp|webhook-signature' ]" _ "${h[@]}"
check "the signature is the one Python computes for that id and time" \
	[ "${h[2]#webhook-signature: }" = "$(pysign "$new" "${h[0]#webhook-id: }" "${h[1]#webhook-timestamp: }" "$work/c1")" ]
code=$(post "$work/c1" "${h[@]}")
check "and the server takes them: 201 ($code)" [ "$code" = 201 ]

# The webhook-id is kept in the database: after a restart (SQLite), or
# through a second server sharing the database (PostgreSQL), the id
# replayed with yet another order_id still stores nothing.
if backend_pg; then
	start_server 2 || not_ok "a second server on the same database starts"
	where="through a second server on the same database"
else
	kill -9 "$server_pid"
	wait "$server_pid" 2>/dev/null
	start_server 1 || not_ok "the server starts again"
	where="after a server restart"
fi
body "$work/s5" S-5 2
now=$(date +%s)
code=$(std "$new" msg_S1 "$now" "$work/s5")
check "msg_S1 again with order S-5, $where: 200 ($code)" [ "$code" = 200 ] &&
	grep -q '"order_id":"S-1"' "$work/resp"
check "S-5 is not stored" [ "$(stored S-5)" = 0 ]
check "S-1 is still stored once" [ "$(stored S-1)" = 1 ]

# At the same moment: each of 8 ids sent twice at once with two order_ids
# (on PostgreSQL one through each server): one order per id, the other
# request answered with it.
ports=("$port" "${port1:-$port}")
backend_pg || ports=("$port" "$port")
curls=()
for i in 1 2 3 4 5 6 7 8; do
	for k in 0 1; do
		body "$work/r$i$k" "R-$i-$k" 2
		sig=$(pysign "$new" "msg_R$i" "$now" "$work/r$i$k")
		curl -s -o "$work/rr$i$k" -w '%{http_code}\n' -X POST \
			-H "webhook-id: msg_R$i" -H "webhook-timestamp: $now" \
			-H "webhook-signature: $sig" --data-binary "@$work/r$i$k" \
			"http://127.0.0.1:${ports[$k]}/webhook/orders" >"$work/rc$i$k" &
		curls+=($!)
	done
done
wait "${curls[@]}"
codes=$(cat "$work"/rc?? | sort | uniq -c | awk '{ printf "%s×%s ", $1, $2 }')
check "16 requests at once: 8 × 201 and 8 × 200 ($codes)" [ "$codes" = "8×200 8×201 " ]
check "8 orders stored, one per id" \
	[ "$(backend_sql "SELECT count(*) FROM orders WHERE order_id LIKE 'R-%'")" = 8 ] &&
	[ "$(backend_sql "SELECT count(DISTINCT w.webhook_id) FROM webhook_ids w JOIN orders o USING (order_id) WHERE w.webhook_id LIKE 'msg_R%'")" = 8 ]
tap_done
