#!/usr/bin/env bash
# reports_test.sh - issue 18's earnings reports (GET /reports/earnings,
# ReportService.GetEarnings, `affiliate reports earnings`) against the
# real affiliate-server (AFFILIATE_AUTH=on) and affiliate-bridge on free
# loopback ports, on either backend (tests/backend.sh; test_reports_pg on
# PostgreSQL), with the same exact answers:
#   - signed orders of two editors in three currencies, moved pending ->
#     approved and -> declined by later webhooks; their arrival times set
#     by an operator's SQL (an update the aggregates' triggers follow), so
#     that one order at 23:30Z falls on the next day at +02:00;
#   - the exact JSON by advertiser, by UTC day, by local day at +02:00
#     and by status (money as JSON numbers with two decimals, one group
#     per currency, each status apart, a mismatched count);
#   - an editor key sees its own orders only (another editor_id: 403);
#     an unknown editor: an empty report; every bad parameter a 400 that
#     says what is accepted;
#   - the CLI's `reports earnings` prints the same report.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-reports-XXXXXX)
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
export BACKEND_DATA_DIR=$work/data

http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
B="http://127.0.0.1:$http_port"

"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key \
	>"$work/admin" 2>"$work/create.log" || { not_ok "--create-admin-key"; tap_done; exit; }
admin=$(cat "$work/admin")
AFFILIATE_AUTH=on "$BIN/affiliate-server" --listen "$rpc_url" \
	--data-dir "$work/data" --redis off \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	>"$work/server.log" 2>&1 &
pids+=($!)
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$rpc_url" \
	>"$work/bridge.log" 2>&1 &
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

post_order() { # post_order NAME STATUS BODY: a signed webhook
	local name=$1 want=$2 body=$3 sig got
	printf '%s' "$body" >"$work/order.json"
	sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign "$work/order.json")
	got=$(curl -s -o "$work/body" -w '%{http_code}' -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$B/webhook/orders")
	check "$name: $got" [ "$got" = "$want" ]
}
# Advertiser 1 takes EUR at 8 %, 2 CHF at 6.5 %, 6 GBP at 7.5 %.
post_order "E-1 (editor 1, EUR)" 201 '{"order_id":"E-1","advertiser_id":1,"editor_id":1,"amount":100.00,"commission":8.00}'
post_order "E-2 (editor 1, EUR)" 201 '{"order_id":"E-2","advertiser_id":1,"editor_id":1,"amount":50.50,"commission":4.04}'
post_order "E-3 (editor 1, CHF)" 201 '{"order_id":"E-3","advertiser_id":2,"editor_id":1,"amount":20.00,"commission":1.30}'
# 10.00 at 7.5 % is 0.75: the partner's 0.80 mismatches.
post_order "E-4 (editor 1, GBP, commission off)" 201 '{"order_id":"E-4","advertiser_id":6,"editor_id":1,"amount":10.00,"commission":0.80}'
post_order "E-5 (editor 2, EUR)" 201 '{"order_id":"E-5","advertiser_id":1,"editor_id":2,"amount":30.00,"commission":2.40}'
# When they arrived (UTC): E-2 at 23:30 on 1 March, 01:30 on 2 March at +02:00.
backend_sql "UPDATE orders SET created_at = CASE order_id
	WHEN 'E-1' THEN 1772359200 WHEN 'E-2' THEN 1772407800
	WHEN 'E-3' THEN 1772452800 WHEN 'E-4' THEN 1772452800
	ELSE 1772359200 END" >/dev/null
check "the arrival times are set" [ "$(backend_sql "SELECT count(*) FROM orders WHERE created_at < 1772500000")" = 5 ]
post_order "E-2 approved" 200 '{"order_id":"E-2","advertiser_id":1,"editor_id":1,"amount":50.50,"commission":4.04,"status":"approved"}'
post_order "E-3 declined" 200 '{"order_id":"E-3","advertiser_id":2,"editor_id":1,"amount":20.00,"commission":1.30,"status":"declined"}'

# report NAME KEY STATUS QUERY WANT: GET /reports/earnings?QUERY answers
# STATUS with exactly WANT (buckets_read, a cost figure that differs by
# backend, taken out), or containing WANT for an error.
report() {
	local name=$1 key=$2 want_status=$3 query=$4 want=$5 got args=(-s -o "$work/body" -w '%{http_code}')
	[ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
	got=$(curl "${args[@]}" "$B/reports/earnings?$query")
	if [ "$got" != "$want_status" ]; then
		not_ok "$name: $got, wanted $want_status: $(cat "$work/body")"
		return
	fi
	if [ "$want_status" = 200 ]; then
		sed 's/"buckets_read":[0-9]*,//' "$work/body" >"$work/got"
		if [ "$(cat "$work/got")" != "$want" ]; then
			not_ok "$name: $(cat "$work/got")"
			echo "#  wanted $want"
			return
		fi
	elif ! grep -qF -- "$want" "$work/body"; then
		not_ok "$name: '$want' not in $(cat "$work/body")"
		return
	fi
	ok "$name"
}
Z='{"orders":0,"amount":0.00,"commission":0.00}'
G1P='{"advertiser_id":1,"day":"","status":"","currency":"EUR","orders":2,"amount":150.50,"commission":12.04,"mismatched":0,"pending":{"orders":1,"amount":100.00,"commission":8.00},"approved":{"orders":1,"amount":50.50,"commission":4.04},"declined":'$Z'}'
G2='{"advertiser_id":2,"day":"","status":"","currency":"CHF","orders":1,"amount":20.00,"commission":1.30,"mismatched":0,"pending":'$Z',"approved":'$Z',"declined":{"orders":1,"amount":20.00,"commission":1.30}}'
G6='{"advertiser_id":6,"day":"","status":"","currency":"GBP","orders":1,"amount":10.00,"commission":0.80,"mismatched":1,"pending":{"orders":1,"amount":10.00,"commission":0.80},"approved":'$Z',"declined":'$Z'}'
report "editor 1 by advertiser (its key, editor_id filled in)" "$ed1" 200 "from=2026-03-01&to=2026-03-02" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"advertiser","tz":"UTC","groups":['"$G1P,$G2,$G6"'],"orders_counted":4}'
report "the same by the admin's key for editor_id=1" "$admin" 200 "editor_id=1&from=2026-03-01&to=2026-03-02&group_by=advertiser" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"advertiser","tz":"UTC","groups":['"$G1P,$G2,$G6"'],"orders_counted":4}'
report "one advertiser" "$ed1" 200 "advertiser_id=6&from=2026-03-01&to=2026-03-02" \
	'{"editor_id":1,"advertiser_id":6,"from":"2026-03-01","to":"2026-03-02","group_by":"advertiser","tz":"UTC","groups":['"$G6"'],"orders_counted":1}'
report "whole months, January to March (the monthly sums)" "$ed1" 200 "from=2026-01-01&to=2026-03-31" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-01-01","to":"2026-03-31","group_by":"advertiser","tz":"UTC","groups":['"$G1P,$G2,$G6"'],"orders_counted":4}'
report "15 February to 30 April (February's days, March and April)" "$ed1" 200 "from=2026-02-15&to=2026-04-30" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-02-15","to":"2026-04-30","group_by":"advertiser","tz":"UTC","groups":['"$G1P,$G2,$G6"'],"orders_counted":4}'
report "a range that ends before E-3 and E-4" "$ed1" 200 "from=2026-03-01&to=2026-03-01" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-01","group_by":"advertiser","tz":"UTC","groups":['"$G1P"'],"orders_counted":2}'

D1='{"advertiser_id":0,"day":"2026-03-01","status":"","currency":"EUR","orders":2,"amount":150.50,"commission":12.04,"mismatched":0,"pending":{"orders":1,"amount":100.00,"commission":8.00},"approved":{"orders":1,"amount":50.50,"commission":4.04},"declined":'$Z'}'
D2C='{"advertiser_id":0,"day":"2026-03-02","status":"","currency":"CHF","orders":1,"amount":20.00,"commission":1.30,"mismatched":0,"pending":'$Z',"approved":'$Z',"declined":{"orders":1,"amount":20.00,"commission":1.30}}'
D2G='{"advertiser_id":0,"day":"2026-03-02","status":"","currency":"GBP","orders":1,"amount":10.00,"commission":0.80,"mismatched":1,"pending":{"orders":1,"amount":10.00,"commission":0.80},"approved":'$Z',"declined":'$Z'}'
report "by UTC day" "$ed1" 200 "from=2026-03-01&to=2026-03-02&group_by=day" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"day","tz":"UTC","groups":['"$D1,$D2C,$D2G"'],"orders_counted":4}'
report "tz=Z is UTC" "$ed1" 200 "from=2026-03-01&to=2026-03-02&group_by=day&tz=Z" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"day","tz":"UTC","groups":['"$D1,$D2C,$D2G"'],"orders_counted":4}'
L1='{"advertiser_id":0,"day":"2026-03-01","status":"","currency":"EUR","orders":1,"amount":100.00,"commission":8.00,"mismatched":0,"pending":{"orders":1,"amount":100.00,"commission":8.00},"approved":'$Z',"declined":'$Z'}'
L2E='{"advertiser_id":0,"day":"2026-03-02","status":"","currency":"EUR","orders":1,"amount":50.50,"commission":4.04,"mismatched":0,"pending":'$Z',"approved":{"orders":1,"amount":50.50,"commission":4.04},"declined":'$Z'}'
report "at +02:00 E-2 (23:30Z) is on 2 March" "$ed1" 200 "from=2026-03-01&to=2026-03-02&group_by=day&tz=%2B02:00" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"day","tz":"+02:00","groups":['"$L1,$D2C,$L2E,$D2G"'],"orders_counted":4}'
report "at -11:00 E-1 (10:00Z) is on 28 February, out of the range" "$ed1" 200 "from=2026-03-01&to=2026-03-01&group_by=day&tz=-11:00" \
	'{"editor_id":1,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-01","group_by":"day","tz":"-11:00","groups":[{"advertiser_id":0,"day":"2026-03-01","status":"","currency":"EUR","orders":1,"amount":50.50,"commission":4.04,"mismatched":0,"pending":'$Z',"approved":{"orders":1,"amount":50.50,"commission":4.04},"declined":'$Z'}],"orders_counted":1}'

S='"advertiser_id":0,"day":"",'
report "by status, every editor (admin): editor 2's E-5 counts" "$admin" 200 "from=2026-03-01&to=2026-03-02&group_by=status" \
	'{"editor_id":0,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"status","tz":"UTC","groups":[{'"$S"'"status":"approved","currency":"EUR","orders":1,"amount":50.50,"commission":4.04,"mismatched":0,"pending":'$Z',"approved":{"orders":1,"amount":50.50,"commission":4.04},"declined":'$Z'},{'"$S"'"status":"declined","currency":"CHF","orders":1,"amount":20.00,"commission":1.30,"mismatched":0,"pending":'$Z',"approved":'$Z',"declined":{"orders":1,"amount":20.00,"commission":1.30}},{'"$S"'"status":"pending","currency":"EUR","orders":2,"amount":130.00,"commission":10.40,"mismatched":0,"pending":{"orders":2,"amount":130.00,"commission":10.40},"approved":'$Z',"declined":'$Z'},{'"$S"'"status":"pending","currency":"GBP","orders":1,"amount":10.00,"commission":0.80,"mismatched":1,"pending":{"orders":1,"amount":10.00,"commission":0.80},"approved":'$Z',"declined":'$Z'}],"orders_counted":5}'
report "editor 2's key: its own only" "$ed2" 200 "from=2026-03-01&to=2026-03-02" \
	'{"editor_id":2,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"advertiser","tz":"UTC","groups":[{"advertiser_id":1,"day":"","status":"","currency":"EUR","orders":1,"amount":30.00,"commission":2.40,"mismatched":0,"pending":{"orders":1,"amount":30.00,"commission":2.40},"approved":'$Z',"declined":'$Z'}],"orders_counted":1}'
report "editor 2's key asking for editor 1: 403" "$ed2" 403 "editor_id=1&from=2026-03-01&to=2026-03-02" \
	'"message":"this API key acts for editor 2, not editor 1"'
report "no key: 401" "" 401 "from=2026-03-01&to=2026-03-02" '"code":"UNAUTHENTICATED"'
report "an unknown editor: an empty report" "$admin" 200 "editor_id=999&from=2026-03-01&to=2026-03-02" \
	'{"editor_id":999,"advertiser_id":0,"from":"2026-03-01","to":"2026-03-02","group_by":"advertiser","tz":"UTC","groups":[],"orders_counted":0}'
bad() { report "400: $1" "$ed1" 400 "$2" "$3"; }
bad "from missing" "to=2026-03-02" '"message":"from and to are required (YYYY-MM-DD, to included)"'
bad "not a day" "from=2026-02-30&to=2026-03-02" '"message":"from must be a date YYYY-MM-DD (1970 to 9999)"'
bad "to not a date" "from=2026-03-01&to=tomorrow" '"message":"to must be a date YYYY-MM-DD (1970 to 9999)"'
bad "from after to" "from=2026-03-02&to=2026-03-01" '"message":"from must not be after to"'
bad "group_by unknown" "from=2026-03-01&to=2026-03-02&group_by=week" '"message":"group_by must be advertiser, day or status"'
bad "367 days by day" "from=2025-01-01&to=2026-01-02&group_by=day" \
	'"message":"the range from 2025-01-01 to 2026-01-02 is 367 days; at most 366 when grouped by day"'
bad "over ten years by advertiser" "from=2000-01-01&to=2026-01-01" 'at most 3660 when grouped by advertiser'
bad "a half-hour offset" "from=2026-03-01&to=2026-03-02&tz=%2B05:30" \
	'"message":"tz +05:30 is not a whole number of hours: reports keep hourly sums, so tz must be Z, UTC or a fixed offset +HH:00 / -HH:00'
bad "an IANA name" "from=2026-03-01&to=2026-03-02&tz=Europe/Paris" \
	'IANA names such as Europe/Paris are not accepted'
bad "a negative advertiser_id" "from=2026-03-01&to=2026-03-02&advertiser_id=-1" '"message":"advertiser_id must be a positive integer"'

# ---- the CLI ----
cli "$ed1" reports earnings --from 2026-03-01 --to 2026-03-02 --group-by day --tz +02:00
check "affiliate reports earnings: exit 0" [ $? = 0 ]
check "the CLI's report: tz +02:00, four groups, E-2 on 2 March" bash -c \
	"grep -q '\"tz\": \"+02:00\"' '$work/out' && [ \$(grep -c '\"day\": \"2026-03-0' '$work/out') = 4 ] && grep -q '\"orders_counted\": 4' '$work/out'"
cli "$admin" reports earnings --from 2026-03-01 --to 2026-03-02 --editor 2 --advertiser 1
check "--editor 2 --advertiser 1: E-5 alone" bash -c \
	"grep -q '\"orders_counted\": 1' '$work/out' && grep -q '\"amount\": 30.00' '$work/out'"
cli "$ed1" reports earnings --from 2026-03-01
check "--to missing: usage error (exit 2)" bash -c "[ $? = 2 ] && grep -q 'to' '$work/err'"
cli "$ed1" reports earnings --from 2026-03-01 --to 2026-03-02 --tz +05:30
check "a half-hour tz: exit 1, INVALID_ARGUMENT" bash -c "[ $? = 1 ] && grep -q INVALID_ARGUMENT '$work/out'"

tap_done
