#!/usr/bin/env bash
# cli_test.sh - the real binaries, as a user runs them: affiliate-server on
# an ipc:// address with a fresh database, the `affiliate` CLI against it,
# the README's protoc --encode | nngcat | protoc --decode call, bad flags,
# and a clean stop on SIGTERM.
set -u
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:?}
work=$(mktemp -d /tmp/affiliate-cli-XXXXXX)
url="ipc://$work/rpc.sock"
server_pid=
. "$(dirname "$0")/tap.sh"

cleanup() {
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

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
AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign "$work/body.json" >"$work/out" 2>"$work/err"
check "webhook sign prints 64 hex digits" grep -qE '^[0-9a-f]{64}$' "$work/out"
AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --timestamp "$work/body.json" >"$work/out" 2>"$work/err"
check "webhook sign --timestamp prints t=...,v1=..." grep -qE '^t=[0-9]+,v1=[0-9a-f]{64}$' "$work/out"
AFFILIATE_DATA_DIR="$work/nowhere" "$BIN/affiliate" webhook sign "$work/body.json" >/dev/null 2>"$work/err"
check "webhook sign without a secret exits 1" [ $? = 1 ]
check "health exits 0" run_cli 0 health
check "health says SERVING" grep -q '"status": "SERVING"' "$work/out"

check "advertisers list --editor 1 exits 0" run_cli 0 advertisers list --editor 1
ids=$(grep -o '^      "id": [0-9]*' "$work/out" | grep -o '[0-9]*$' | tr '\n' ' ')
# The seed: editor E may join advertiser A unless (A + 2E) % 3 == 0.
want="2 3 5 6 8 9 11 12 14 15 17 18 20 21 23 24 "
check "editor 1 sees exactly the advertisers it may join ($ids)" [ "$ids" = "$want" ]

check "advertisers list exits 0" run_cli 0 advertisers list --limit 5
check "a page of 5 says where the next starts" grep -q '"next_after": 5' "$work/out"

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
check "a non-numeric id is a usage error (exit 2)" run_cli 2 advertisers get abc
check "an unknown command is a usage error" run_cli 2 frobnicate
check "no command is a usage error" run_cli 2
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
