#!/usr/bin/env bash
# cli_test.sh - the real binaries, as a user runs them: affiliate-server on
# an ipc:// address with a fresh database (and affiliate-bridge in front of
# it for the webhooks), the `affiliate` CLI against it with its exact
# output and exit codes (pages followed by --after, money printed exactly,
# usage errors before anything is sent, both signature forms checked
# against openssl), the README's protoc --encode | nngcat | protoc
# --decode call, bad flags, and a clean stop on SIGTERM.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:?}
work=$(mktemp -d /tmp/affiliate-cli-XXXXXX)
url="ipc://$work/rpc.sock"
server_pid=
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

bridge_pid=
cleanup() {
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
	[ -n "$bridge_pid" ] && kill -9 "$bridge_pid" 2>/dev/null
	backend_stop
	rm -rf "$work"
}
trap cleanup EXIT
# The servers' store: AFFILIATE_TEST_BACKEND (tests/backend.sh).
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

out_ids() { # the ids of the list items in the last output, "1 2 3 "
	grep -o '^      "id": [0-9]*' "$work/out" | grep -o '[0-9]*$' | tr '\n' ' '
}
# run_cli EXPECTED_EXIT ARGS...: runs the CLI, output in $work/out, $work/err
run_cli() {
	local want=$1
	shift
	"$BIN/affiliate" --url "$url" "$@" >"$work/out" 2>"$work/err"
	local got=$?
	if [ "$got" != "$want" ]; then
		echo "# affiliate $*: exit $got, wanted $want" >&2
		cat "$work/out" "$work/err" >&2
		return 1
	fi
}

"$BIN/affiliate-server" --listen "$url" --data-dir "$work/data" --redis off \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	>"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
	grep -q "server: ready" "$work/server.log" 2>/dev/null && break
	sleep 0.05
done
check "server starts and says it is ready" grep -q "server: ready" "$work/server.log"

check "the server made a webhook secret, mode 0600" \
	[ "$(stat -c %a "$work/data/webhook_secret" 2>/dev/null)" = 600 ]
check "and said where" grep -q "webhook secret made and kept in $work/data/webhook_secret" "$work/server.log"
printf '{"order_id":"C-1"}' >"$work/body.json"
secret=$(head -1 "$work/data/webhook_secret")
hmac() { # hmac TEXT: the hex HMAC-SHA256 of TEXT with $secret, by openssl
	printf '%s' "$1" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //'
}
before=$(date +%s)
AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign "$work/body.json" >"$work/out" 2>"$work/err"
check "webhook sign exits 0" [ $? = 0 ]
after=$(date +%s)
check "webhook sign prints the timestamped form by default" grep -qE '^t=[0-9]+,v1=[0-9a-f]{64}$' "$work/out"
t=$(sed -n 's/^t=\([0-9]*\),.*/\1/p' "$work/out")
check "with the time of signing" [ "${t:-0}" -ge "$before" ] && [ "${t:-0}" -le "$after" ]
check "and v1 = HMAC(secret, \"<t>.<body>\") (openssl)" \
	[ "$(cat "$work/out")" = "t=$t,v1=$(hmac "$t.{\"order_id\":\"C-1\"}")" ]
AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --plain "$work/body.json" >"$work/out" 2>"$work/err"
check "webhook sign --plain prints HMAC(secret, body) in hex (openssl)" \
	[ "$(cat "$work/out")" = "$(hmac '{"order_id":"C-1"}')" ]
AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --timestamp - <"$work/body.json" >"$work/out" 2>"$work/err"
check "--timestamp (the default now) and stdin still work" grep -qE '^t=[0-9]+,v1=[0-9a-f]{64}$' "$work/out"
AFFILIATE_DATA_DIR="$work/nowhere" "$BIN/affiliate" webhook sign "$work/body.json" >/dev/null 2>"$work/err"
check "webhook sign without a secret exits 1" [ $? = 1 ]
check "health exits 0" run_cli 0 health
check "health says SERVING" grep -q '"status": "SERVING"' "$work/out"

check "advertisers list --editor 1 exits 0" run_cli 0 advertisers list --editor 1
ids=$(out_ids)
# The seed: editor E may join advertiser A unless (A + 2E) % 3 == 0.
want="2 3 5 6 8 9 11 12 14 15 17 18 20 21 23 24 "
check "editor 1 sees exactly the advertisers it may join ($ids)" [ "$ids" = "$want" ]

check "advertisers list exits 0" run_cli 0 advertisers list --limit 5
check "a page of 5 says where the next starts" grep -q '"next_after": 5' "$work/out"
check "advertisers list --after 5 exits 0" run_cli 0 advertisers list --limit 5 --after 5
ids=$(out_ids)
check "--after 5 gives the next page ($ids)" [ "$ids" = "6 7 8 9 10 " ]
check "which says where the one after starts" grep -q '"next_after": 10' "$work/out"
# A script following next_after: every advertiser once, then the end.
all= after=0 pages=0
while [ "$pages" -lt 10 ]; do
	run_cli 0 advertisers list --limit 7 --after "$after" || break
	pages=$((pages + 1))
	all+=$(out_ids)
	after=$(sed -n 's/^  "next_after": \([0-9]*\)$/\1/p' "$work/out")
	[ "$after" = 0 ] && break
done
check "following next_after lists the 24 advertisers once in 4 pages ($pages)" \
	[ "$all" = "$(seq -s ' ' 1 24) " ] && [ "$pages" = 4 ]

check "advertisers get 2 --editor 1 exits 0" run_cli 0 advertisers get 2 --editor 1
check "and prints the advertiser" grep -q '"name": "Alpine Gear Co"' "$work/out"

check "a forbidden advertiser exits 1" run_cli 1 advertisers get 1 --editor 1
check "with a JSON error on stdout" grep -q '"code": "PERMISSION_DENIED"' "$work/out"
check "and a clear line on stderr" grep -q "PERMISSION_DENIED: editor 1 is not eligible for advertiser 1" "$work/err"

check "an unknown editor exits 1 with NOT_FOUND" run_cli 1 advertisers list --editor 99
check "NOT_FOUND in the body" grep -q '"message": "no editor with id 99"' "$work/out"
check "a negative editor is INVALID_ARGUMENT" run_cli 1 advertisers list --editor -3
check "INVALID_ARGUMENT in the body" grep -q '"code": "INVALID_ARGUMENT"' "$work/out"
check "a request id given is echoed" run_cli 1 --request-id cli-test-7 advertisers get 999
check "echoed in the error" grep -q '"request_id": "cli-test-7"' "$work/out"
check "the server logs the request id" grep -q "req=cli-test-7 rpc affiliate.v1.AdvertiserService/GetAdvertiser NOT_FOUND" "$work/server.log"

check "applications apply exits 0" run_cli 0 applications apply --editor 1 --advertiser 2
check "and prints the pending application" grep -q '"status": "pending"' "$work/out"
check "applying twice exits 1" run_cli 1 applications apply --editor 1 --advertiser 2
check "with ALREADY_EXISTS" grep -q '"code": "ALREADY_EXISTS"' "$work/out"
check "applications list --status pending" run_cli 0 applications list --status pending
check "lists it" grep -q '"advertiser_id": 2' "$work/out"
check "applications get 1" run_cli 0 applications get 1
check "an unknown application exits 1" run_cli 1 applications get 99
run_cli 0 applications apply --editor 1 --advertiser 3 && run_cli 0 applications apply --editor 1 --advertiser 5
check "applications list --limit 2 exits 0" run_cli 0 applications list --limit 2
check "a page of 2 says where the next starts" grep -q '^  "next_after": 2$' "$work/out"
check "applications list --after 2 exits 0" run_cli 0 applications list --limit 2 --after 2
ids=$(out_ids)
check "--after 2 gives the third application only ($ids)" [ "$ids" = "3 " ]
check "and the end of the list" grep -q '^  "next_after": 0$' "$work/out"

# Usage errors exit 2, say what is missing, and send nothing: the server
# never logs their request ids.
usage_case() { # usage_case NAME MESSAGE ARGS...
	local name=$1 msg=$2
	shift 2
	check "$name: exit 2" run_cli 2 --request-id "usage-$pass" "$@"
	check "$name: says '$msg'" grep -qF "affiliate: $msg" "$work/err"
}
usage_case "advertisers get without an id" "advertisers get needs an advertiser ID" advertisers get
usage_case "applications get without an id" "applications get needs an application ID" applications get
usage_case "keys revoke without an id" "keys revoke needs a key ID" keys revoke
usage_case "a non-numeric id" "advertiser id must be a positive integer, not 'abc'" advertisers get abc
usage_case "an id of 0" "application id must be a positive integer, not '0'" applications get 0
usage_case "two ids" "advertisers get takes one advertiser ID, not also '3'" advertisers get 2 3
usage_case "advertisers without a command" "advertisers needs a command: list, get" advertisers
usage_case "an unknown advertisers command" "unknown advertisers command 'delete' (list, get, create, update)" advertisers delete 2
usage_case "list with an argument" "advertisers list takes no arguments, not '7'" advertisers list 7
usage_case "apply without --advertiser" "applications apply needs --advertiser A" applications apply --editor 1
usage_case "apply without --editor and no key" "applications apply needs --editor E (or an editor's key in AFFILIATE_KEY)" applications apply --advertiser 3
usage_case "rotate without --advertiser" "webhook secret rotate needs --advertiser A" webhook secret rotate
usage_case "keys create with neither" "keys create takes --editor E or --admin" keys create
usage_case "webhook sign without a file" "webhook sign needs a FILE (or - for stdin)" webhook sign
usage_case "a non-numeric --after" "--after expects an integer, not 'x'" advertisers list --after x
usage_case "an unknown command" "unknown command 'frobnicate'" frobnicate
usage_case "no command" "no command given"
check "none of those reached the server" bash -c "! grep -q 'req=usage-' '$work/server.log'"
AFFILIATE_KEY=aff_9_0000 "$BIN/affiliate" --url "$url" applications apply --advertiser 3 >"$work/out" 2>"$work/err"
check "with AFFILIATE_KEY, apply without --editor is sent (the key names the editor): this bad key is refused, exit 1" [ $? = 1 ]
check "UNAUTHENTICATED" grep -q '"code": "UNAUTHENTICATED"' "$work/out"
# Orders through the real bridge (signed with the CLI), then listed by
# the CLI: money exactly as the API says it, from the integer cents.
http_port=$(free_port)
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$url" \
	>"$work/bridge.log" 2>&1 &
bridge_pid=$!
for _ in $(seq 1 100); do
	grep -q "bridge: listening" "$work/bridge.log" 2>/dev/null && break
	sleep 0.05
done
post_order() { # post_order BODY: prints the HTTP status
	printf '%s' "$1" >"$work/order.json"
	local sig
	sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign "$work/order.json")
	curl -s -o "$work/http.out" -w '%{http_code}' -X POST -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "http://127.0.0.1:$http_port/webhook/orders"
}
check "an order signed by webhook sign is taken (201)" \
	[ "$(post_order '{"order_id":"C-1","advertiser_id":2,"user_id":1,"amount":49.9,"commission":4.99}')" = 201 ]
check "a second (201)" \
	[ "$(post_order '{"order_id":"C-2","advertiser_id":2,"user_id":1,"amount":0.1,"commission":0.07}')" = 201 ]
check "the API says 0.10 and 0.07" grep -q '"amount":0.10,"commission":0.07,' "$work/http.out"
check "orders list exits 0" run_cli 0 orders list
check "orders list prints 49.90 exactly" grep -qx '      "amount": 49.90,' "$work/out"
check "and 4.99" grep -qx '      "commission": 4.99,' "$work/out"
check "and 0.10, 0.07" bash -c "grep -qx '      \"amount\": 0.10,' '$work/out' && grep -qx '      \"commission\": 0.07,' '$work/out'"
check "no binary double in sight" bash -c "! grep -qE '[0-9]\.[0-9]{3,}' '$work/out'"
check "orders list --limit 1 exits 0" run_cli 0 orders list --limit 1
check "a page of 1 gives the cursor" grep -qx '  "next_after": "1"' "$work/out"
check "orders list --limit 1 --after 1" run_cli 0 orders list --limit 1 --after 1
check "gives the second order" grep -qx '      "order_id": "C-2",' "$work/out"
check "and the end" grep -qx '  "next_after": ""' "$work/out"
kill -TERM "$bridge_pid"
wait "$bridge_pid"
check "the bridge stops with exit 0" [ $? = 0 ]
bridge_pid=

"$BIN/affiliate" --url "ipc://$work/nobody.sock" health >"$work/out" 2>"$work/err"
check "an unreachable server exits 1" [ $? = 1 ]
check "and says UNAVAILABLE" grep -q "UNAVAILABLE" "$work/err"

# The README's call from any language's tools: protoc and nngcat.
if command -v protoc >/dev/null && command -v nngcat >/dev/null; then
	cd "$SRC/proto"
	payload=$(printf 'id: 2 editor_id: 1' |
		protoc --encode=affiliate.v1.GetAdvertiserRequest affiliate/v1/affiliate.proto |
		od -An -tx1 -v | tr -d ' \n' | sed 's/../\\x&/g')
	printf 'service: "affiliate.v1.AdvertiserService" method: "GetAdvertiser" request_id: "demo-1" timeout_ms: 5000 payload: "%s"' "$payload" |
		protoc --encode=affiliate.v1.RequestEnvelope affiliate/v1/rpc.proto >"$work/req.bin"
	nngcat --req --connect "$url" --file "$work/req.bin" --raw >"$work/rep.bin" 2>"$work/err"
	protoc --decode=affiliate.v1.ReplyEnvelope affiliate/v1/rpc.proto <"$work/rep.bin" >"$work/rep.txt"
	check "protoc --decode reads the reply nngcat got" grep -q 'request_id: "demo-1"' "$work/rep.txt"
	check "the reply is OK (no code field) with the advertiser" \
		bash -c "! grep -q '^code:' '$work/rep.txt' && grep -q 'Alpine Gear Co' '$work/rep.txt'"
	cd - >/dev/null
else
	not_ok "protoc and nngcat are installed (make deps)"
fi

# --help of each binary names every AFFILIATE_* variable its code reads,
# those that exist only in the environment too.
for pair in affiliate-server:services affiliate-worker:worker \
	affiliate-bridge:bridge affiliate:cli; do
	prog=${pair%%:*}
	"$BIN/$prog" --help >"$work/help" 2>&1
	missing=
	for v in $(grep -ho '"AFFILIATE_[A-Z][A-Z0-9_]*"' "$SRC/${pair#*:}"/*.c | tr -d '"' | sort -u); do
		grep -q "$v" "$work/help" || missing+="$v "
	done
	check "$prog --help lists every variable it reads (missing: ${missing:-none})" [ -z "$missing" ]
done
"$BIN/affiliate-server" --help | sed -n '/^environment only/,$p' >"$work/envonly"
check "affiliate-server --help lists the secrets under 'environment only'" \
	bash -c "grep -q '^  AFFILIATE_WEBHOOK_SECRET ' '$work/envonly' && grep -q '^  AFFILIATE_WORKER_SECRET ' '$work/envonly'"

# The README's test table names every ctest test (the fuzz replays,
# named from a list, share one row).
missing=
for t in $(grep -rhoE '(affiliate_test|affiliate_script_test)\([a-z_0-9]+|add_test\(NAME [a-z_0-9]+' \
	"$SRC/tests" --include=CMakeLists.txt | sed -E 's/.*[( ]//' | sort -u); do
	grep -q "^| \`$t\` |" "$SRC/README.md" || missing+="$t "
done
check "the README's test table names every test (missing: ${missing:-none})" [ -z "$missing" ]

# Configuration errors are reported, not guessed around.
"$BIN/affiliate-server" --threads lots >/dev/null 2>"$work/err"
check "a bad flag exits 2" [ $? = 2 ]
check "and says what is wrong" grep -q "threads must be a whole number" "$work/err"
AFFILIATE_REDIS=nonsense "$BIN/affiliate-server" >/dev/null 2>"$work/err"
check "a bad environment variable exits 2" [ $? = 2 ]
check "and names it" grep -q "AFFILIATE_REDIS" "$work/err"
"$BIN/affiliate-server" --listen "bogus://x" --data-dir "$work/data2" --redis off \
	--jobs "ipc://$work/jobs2.sock" --results "ipc://$work/results2.sock" >/dev/null 2>"$work/err"
check "an invalid listen URL fails to start" [ $? = 1 ]

kill -TERM "$server_pid"
for _ in $(seq 1 100); do
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.05
done
wait "$server_pid"
rc=$?
server_pid=
check "SIGTERM stops the server with exit 0" [ "$rc" = 0 ]
check "and it says so" grep -q "server: stopped" "$work/server.log"

tap_done
