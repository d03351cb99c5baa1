#!/usr/bin/env bash
# catalog_admin_test.sh - issue 18's catalog management and orders in
# detail, as an admin and editors use them over REST, against the real
# redis-server, affiliate-server (AFFILIATE_AUTH=on), affiliate-bridge and
# affiliate-worker on free loopback ports, on either backend (tests/
# backend.sh; test_catalog_admin_pg on PostgreSQL):
#   - POST/PATCH /advertisers, POST/PATCH /editors, PUT/DELETE
#     /editors/{id}/advertisers/{advertiser_id}: 201/200 with the stored
#     row, 400 naming the field and rule, 404 for unknown ids, 401 without
#     a key, 403 for an editor's key; a read right after each change (its
#     cached copy warmed just before, in Redis) shows the change;
#   - GET /orders/{order_id} and GET /applications/{id} with their
#     history, scoped (another editor's: 404);
#   - an order's currency defaults to its advertiser's; another currency
#     is refused (400 FAILED_PRECONDITION) unless the advertiser allows
#     it; expected_commission beside the partner's commission, and
#     ?commission_mismatch=true lists the orders where they differ;
#   - a new order may arrive approved or declined directly (README).
# And the CLI's catalog commands (cli/cli_catalog.c) against the same
# server.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-catalog-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

redis_port=$(free_port)
http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
B="http://127.0.0.1:$http_port"

"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key \
	>"$work/admin" 2>"$work/create.log" || { not_ok "--create-admin-key"; tap_done; exit; }
admin=$(cat "$work/admin")
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
	--loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
AFFILIATE_AUTH=on "$BIN/affiliate-server" --listen "$rpc_url" \
	--data-dir "$work/data" --redis "127.0.0.1:$redis_port" \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	>"$work/server.log" 2>&1 &
pids+=($!)
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$rpc_url" \
	>"$work/bridge.log" 2>&1 &
pids+=($!)
"$BIN/affiliate-worker" --jobs "ipc://$work/jobs.sock" \
	--results "ipc://$work/results.sock" --data-dir "$work/data" \
	--review-delay 10 >"$work/worker.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" "server: ready" || exit 1
wait_for "$work/bridge.log" "bridge: listening" || exit 1

cli() { # cli KEY ARGS...: output in $work/out, exit status returned
	local key=$1
	shift
	AFFILIATE_KEY=$key "$BIN/affiliate" --url "$rpc_url" "$@" >"$work/out" 2>"$work/err"
}
cli "$admin" keys create --editor 1
ed1=$(sed -n 's/^  "token": "\(.*\)"$/\1/p' "$work/out")
cli "$admin" keys create --editor 2
ed2=$(sed -n 's/^  "token": "\(.*\)"$/\1/p' "$work/out")
check "editor keys for editors 1 and 2" bash -c "[ -n '$ed1' ] && [ -n '$ed2' ]"

# expect NAME KEY STATUS METHOD PATH [BODY] [GREP...]: the status, then
# each fixed string in the body ($work/body).
expect() {
	local name=$1 key=$2 want=$3 method=$4 path=$5 body=${6-}
	shift 5
	[ $# -gt 0 ] && shift
	local args=(-s -o "$work/body" -w '%{http_code}' -X "$method")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	[ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
	local got
	got=$(curl "${args[@]}" "$B$path")
	if [ "$got" != "$want" ]; then
		not_ok "$name: $method $path → $got, wanted $want: $(cat "$work/body")"
		return
	fi
	for pat in "$@"; do
		if ! grep -qF -- "$pat" "$work/body"; then
			not_ok "$name: '$pat' not in: $(cat "$work/body")"
			return
		fi
	done
	ok "$name"
}

# ---- catalog management ----
new='{"name":"Book Nook","category":"books","currency":"GBP","commission_rate_bps":825,"website":"https://booknook.example"}'
expect "POST /advertisers without a key: 401" "" 401 POST /advertisers "$new" '"code":"UNAUTHENTICATED"'
expect "POST /advertisers with an editor's key: 403" "$ed1" 403 POST /advertisers "$new" '"code":"PERMISSION_DENIED"'
expect "POST /advertisers (admin): 201 with the new row" "$admin" 201 POST /advertisers "$new" \
	'{"id":25,"name":"Book Nook","category":"books","currency":"GBP","commission_rate_bps":825,"status":"active","website":"https://booknook.example","cookie_days":30,' \
	'"allow_other_currencies":false}'
expect "GET /advertisers/25 reads it" "$admin" 200 GET /advertisers/25 "" '"name":"Book Nook"'
bad() { # bad NAME BODY MESSAGE: POST /advertisers refused with 400
	expect "400: $1" "$admin" 400 POST /advertisers "$2" '"code":"INVALID_ARGUMENT"' "$3"
}
bad "currency not ISO 4217" '{"name":"X","category":"c","currency":"eur"}' \
	'currency must be an ISO 4217 code: three capital letters such as EUR'
bad "currency missing" '{"name":"X","category":"c"}' 'currency is required'
bad "rate over 10000 bps" '{"name":"X","category":"c","currency":"EUR","commission_rate_bps":10001}' \
	'commission_rate_bps must be from 0 to 10000 (basis points: 750 is 7.50 %), not 10001'
bad "negative rate" '{"name":"X","category":"c","currency":"EUR","commission_rate_bps":-1}' \
	'commission_rate_bps must be from 0 to 10000'
bad "status not active|paused" '{"name":"X","category":"c","currency":"EUR","status":"closed"}' \
	'status must be'
bad "blank name" '{"name":"  ","category":"c","currency":"EUR"}' 'name must be 1 to 200 characters, not blank'
bad "website not http(s)" '{"name":"X","category":"c","currency":"EUR","website":"ftp://x"}' \
	'website must be empty or an http:// or https:// URL'
bad "cookie_days over 3650" '{"name":"X","category":"c","currency":"EUR","cookie_days":4000}' \
	'cookie_days must be from 1 to 3650, not 4000'
bad "an unknown field" '{"name":"X","category":"c","currency":"EUR","colour":"red"}' "unknown field 'colour'"
bad "rate not an integer" '{"name":"X","category":"c","currency":"EUR","commission_rate_bps":"high"}' \
	'commission_rate_bps must be an integer'

# A read cached (the server's reply cache in Redis) just before the
# change must show the change right after it.
expect "GET /advertisers/2 (cached)" "$ed1" 200 GET /advertisers/2 "" '"commission_rate_bps":650'
expect "GET /advertisers/2 again (from the cache)" "$ed1" 200 GET /advertisers/2 "" '"commission_rate_bps":650'
expect "PATCH /advertisers/2: only the fields given change" "$admin" 200 PATCH /advertisers/2 \
	'{"commission_rate_bps":700,"cookie_days":45}' \
	'"id":2,"name":"Alpine Gear Co","category":"outdoor","currency":"CHF","commission_rate_bps":700,"status":"active","website":"https://alpinegearco.example","cookie_days":45,"created_at":"2026-01-01T00:00:00Z"'
check "and updated_at moved" bash -c "! grep -qF '\"updated_at\":\"2026-01-01T00:00:00Z\"' '$work/body'"
expect "the next read shows the new rate at once" "$ed1" 200 GET /advertisers/2 "" '"commission_rate_bps":700' '"cookie_days":45'
expect "PATCH pauses a programme" "$admin" 200 PATCH /advertisers/3 '{"status":"paused"}' '"status":"paused"'
expect "the list shows it paused at once" "$admin" 200 GET "/advertisers?limit=3" "" '"id":3,"name":"CampFire Supplies","category":"outdoor","currency":"EUR","commission_rate_bps":1000,"status":"paused"'
expect "PATCH an unknown advertiser: 404" "$admin" 404 PATCH /advertisers/999 '{"status":"paused"}' \
	'"code":"NOT_FOUND"' '"message":"no advertiser with id 999"'
expect "PATCH with nothing to change: 400" "$admin" 400 PATCH /advertisers/2 '{}' \
	'nothing to change: give at least one field (update_mask)'
expect "PATCH with the id in the body: 400" "$admin" 400 PATCH /advertisers/2 '{"id":3,"name":"Y"}' \
	'id is given in the path, not in the body'
expect "PATCH a bad value: 400, nothing changed" "$admin" 400 PATCH /advertisers/2 \
	'{"commission_rate_bps":100,"currency":"Swiss francs"}' 'currency must be an ISO 4217 code'
expect "the rate is still 700" "$admin" 200 GET /advertisers/2 "" '"commission_rate_bps":700'
expect "PATCH with an editor's key: 403" "$ed1" 403 PATCH /advertisers/2 '{"status":"paused"}' '"code":"PERMISSION_DENIED"'

expect "POST /editors: 201" "$admin" 201 POST /editors '{"name":"New Blog","website":"https://newblog.example"}' \
	'{"id":7,"name":"New Blog","website":"https://newblog.example","created_at":"'
expect "POST /editors without a name: 400" "$admin" 400 POST /editors '{"website":"https://x.example"}' \
	'name must be 1 to 200 characters'
expect "PATCH /editors/7" "$admin" 200 PATCH /editors/7 '{"website":"https://newblog.example/fr"}' \
	'"id":7,"name":"New Blog","website":"https://newblog.example/fr"'
expect "PATCH /editors/99: 404" "$admin" 404 PATCH /editors/99 '{"name":"Z"}' '"message":"no editor with id 99"'

expect "editor 7 may join nothing yet (cached)" "$admin" 200 GET "/advertisers?editor_id=7" "" '[]'
expect "PUT /editors/7/advertisers/25: eligible" "$admin" 200 PUT /editors/7/advertisers/25 "" \
	'{"editor_id":7,"advertiser_id":25,"eligible":true}'
expect "the list shows it at once" "$admin" 200 GET "/advertisers?editor_id=7" "" '[{"id":25,"name":"Book Nook"'
expect "PUT again changes nothing: 200" "$admin" 200 PUT /editors/7/advertisers/25 "" '"eligible":true'
expect "editor 7 may apply now" "$admin" 202 POST /applications '{"advertiser_id":25,"editor_id":7}' '"status":"pending"'
expect "DELETE /editors/7/advertisers/24 (never granted): 200" "$admin" 200 DELETE /editors/7/advertisers/24 "" '"eligible":false'
expect "DELETE /editors/7/advertisers/25: revoked" "$admin" 200 DELETE /editors/7/advertisers/25 "" \
	'{"editor_id":7,"advertiser_id":25,"eligible":false}'
expect "the list is empty again at once" "$admin" 200 GET "/advertisers?editor_id=7" "" '[]'
expect "PUT for an unknown advertiser: 404" "$admin" 404 PUT /editors/7/advertisers/99 "" '"message":"no advertiser with id 99"'
expect "PUT for an unknown editor: 404" "$admin" 404 PUT /editors/99/advertisers/1 "" '"message":"no editor with id 99"'
expect "PUT with an editor's key: 403" "$ed1" 403 PUT /editors/1/advertisers/25 "" '"code":"PERMISSION_DENIED"'
expect "OPTIONS names the new methods" "" 204 OPTIONS /advertisers/2 ""
curl -s -o /dev/null -D "$work/head" -X OPTIONS "$B/advertisers/2"
check "Allow: GET, HEAD, PATCH, OPTIONS" grep -q "^Allow: GET, HEAD, PATCH, OPTIONS" "$work/head"

# ---- orders in detail ----
post_order() { # post_order NAME STATUS BODY GREP...: a signed webhook
	local name=$1 want=$2 body=$3 sig got
	shift 3
	printf '%s' "$body" >"$work/order.json"
	sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign "$work/order.json")
	got=$(curl -s -o "$work/body" -w '%{http_code}' -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$B/webhook/orders")
	if [ "$got" != "$want" ]; then
		not_ok "$name: → $got, wanted $want: $(cat "$work/body")"
		return
	fi
	for pat in "$@"; do
		grep -qF -- "$pat" "$work/body" || { not_ok "$name: '$pat' not in $(cat "$work/body")"; return; }
	done
	ok "$name"
}
# 49.99 at 7.00 %: 3.4993, rounded half up to 3.50; the partner says 4.00.
post_order "an order without a currency takes its advertiser's (CHF)" 201 \
	'{"order_id":"C-1","advertiser_id":2,"editor_id":1,"amount":49.99,"commission":4.00}' \
	'"currency":"CHF"' '"commission":4.00' '"expected_commission":3.50' '"status":"pending"'
post_order "an order in the programme's currency" 201 \
	'{"order_id":"C-2","advertiser_id":2,"editor_id":1,"amount":10.00,"commission":0.70,"currency":"CHF"}' \
	'"commission":0.70' '"expected_commission":0.70'
post_order "another currency is refused: 400" 400 \
	'{"order_id":"C-3","advertiser_id":2,"editor_id":1,"amount":10,"commission":1,"currency":"EUR"}' \
	'"code":"FAILED_PRECONDITION"' "advertiser 2's programme is in CHF and takes no order in EUR"
expect "and is not stored" "$admin" 404 GET /orders/C-3 "" '"message":"no order with order_id C-3"'
expect "an admin allows other currencies for advertiser 2" "$admin" 200 PATCH /advertisers/2 \
	'{"allow_other_currencies":true}' '"allow_other_currencies":true'
post_order "then the same order is taken" 201 \
	'{"order_id":"C-3","advertiser_id":2,"editor_id":1,"amount":10,"commission":1,"currency":"EUR"}' \
	'"currency":"EUR"' '"expected_commission":0.70'
# 0.05 at 5.00 % (advertiser 19): 0.0025 -> 0.00 (half up of 0.25 cent).
post_order "an order may arrive approved directly (README)" 201 \
	'{"order_id":"C-4","advertiser_id":19,"editor_id":2,"amount":0.05,"commission":0,"status":"approved"}' \
	'"status":"approved"' '"currency":"EUR"' '"expected_commission":0.00'
post_order "a resend without the currency is the same order: 200" 200 \
	'{"order_id":"C-1","advertiser_id":2,"editor_id":1,"amount":49.99,"commission":4.00}' '"order_id":"C-1"'
post_order "C-1 moves to approved" 200 \
	'{"order_id":"C-1","advertiser_id":2,"editor_id":1,"amount":49.99,"commission":4.00,"status":"approved"}' \
	'"status":"approved"'
expect "GET /orders/C-1 with its history (admin)" "$admin" 200 GET /orders/C-1 "" \
	'"order_id":"C-1","advertiser_id":2,"editor_id":1,"amount":49.99,"commission":4.00,"currency":"CHF","status":"approved"' \
	'"expected_commission":3.50,"events":[{"status":"pending","at":"' '},{"status":"approved","at":"'
expect "GET /orders/C-4: one event, approved" "$admin" 200 GET /orders/C-4 "" '"events":[{"status":"approved","at":"'
check "C-4 has exactly one event" bash -c "[ \$(grep -o '\"status\":' '$work/body' | wc -l) = 2 ]"
expect "editor 1 reads its own order" "$ed1" 200 GET /orders/C-1 "" '"order_id":"C-1"'
expect "editor 1 cannot see editor 2's: 404" "$ed1" 404 GET /orders/C-4 "" '"message":"no order with order_id C-4"'
expect "an unknown order: 404" "$admin" 404 GET /orders/nope "" '"code":"NOT_FOUND"'
expect "orders whose commission differs (admin)" "$admin" 200 GET "/orders?commission_mismatch=true" "" \
	'"order_id":"C-1"' '"order_id":"C-3"'
check "only C-1 and C-3" bash -c "[ \$(grep -o '\"order_id\":' '$work/body' | wc -l) = 2 ]"
expect "the same for editor 2's key: none" "$ed2" 200 GET "/orders?commission_mismatch=true" "" '[]'
expect "with a status filter" "$admin" 200 GET "/orders?commission_mismatch=true&status=approved" "" '"order_id":"C-1"'
check "only C-1" bash -c "[ \$(grep -o '\"order_id\":' '$work/body' | wc -l) = 1 ]"
expect "the whole list still has all four" "$admin" 200 GET "/orders" "" '"order_id":"C-4"'
check "four orders" bash -c "[ \$(grep -o '\"order_id\":' '$work/body' | wc -l) = 4 ]"

# An application's history: pending, then the worker's decision.
expect "editor 1 applies to advertiser 5" "$ed1" 202 POST /applications '{"advertiser_id":5}' '"status":"pending"'
app=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$work/body")
for _ in $(seq 1 100); do
	curl -s -H "Authorization: Bearer $ed1" "$B/applications/$app" >"$work/app"
	grep -qE '"events":\[\{[^]]*\},\{"status":"(approved|rejected)"' "$work/app" && break
	sleep 0.05
done
check "GET /applications/$app: its history, pending then decided" \
	grep -qE '"events":\[\{"status":"pending","reason":"","at":"[^"]*"\},\{"status":"(approved|rejected)"' "$work/app"
expect "editor 2 cannot see it: 404" "$ed2" 404 GET "/applications/$app" "" "\"message\":\"no application with id $app\""

# ---- the CLI ----
cli "$admin" advertisers create name="Tea Time" category=food currency=GBP commission_rate_bps=900 allow_other_currencies=true
check "affiliate advertisers create: exit 0, id 26" bash -c "[ $? = 0 ] && grep -q '\"id\": 26' '$work/out' && grep -q '\"allow_other_currencies\": true' '$work/out'"
cli "$admin" advertisers update 26 commission_rate_bps=950
check "advertisers update changes the rate only" bash -c "grep -q '\"commission_rate_bps\": 950' '$work/out' && grep -q '\"name\": \"Tea Time\"' '$work/out'"
cli "$admin" advertisers update 26 colour=red
check "an unknown field: usage error (exit 2)" bash -c "[ $? = 2 ] && grep -q \"has no field 'colour'\" '$work/err'"
cli "$admin" advertisers update 26 commission_rate_bps=20000
check "a bad value: exit 1, INVALID_ARGUMENT" bash -c "[ $? = 1 ] && grep -q INVALID_ARGUMENT '$work/out'"
cli "$admin" editors create name="CLI Editor"
check "editors create: id 8" grep -q '"id": 8' "$work/out"
cli "$admin" editors update 8 website=https://cli.example
check "editors update" grep -q '"website": "https://cli.example"' "$work/out"
cli "$admin" eligibility grant 8 26
check "eligibility grant 8 26" grep -q '"eligible": true' "$work/out"
cli "$admin" eligibility revoke 8 26
check "eligibility revoke 8 26" grep -q '"eligible": false' "$work/out"
cli "$ed1" eligibility grant 1 26
check "an editor's key: exit 1, PERMISSION_DENIED" bash -c "[ $? = 1 ] && grep -q PERMISSION_DENIED '$work/out'"
cli "$ed1" orders get C-1
check "orders get C-1 (editor 1)" grep -q '"expected_commission": 3.50' "$work/out"
cli "$admin" orders list --mismatch
check "orders list --mismatch: C-1 and C-3" bash -c "[ \$(grep -c '\"order_id\"' '$work/out') = 2 ]"
check "the server logs who changed the catalog" grep -q "catalog: advertiser 2 changed by key 1" "$work/server.log"

tap_done
