#!/usr/bin/env bash
# keys_cli_test.sh - the key commands as an operator runs them, with the
# real binaries: the first admin key from `affiliate-server
# --create-admin-key`, then `affiliate keys create|list|revoke` and
# `affiliate webhook secret rotate` and `webhook require-timestamp` with
# AFFILIATE_KEY, against a server
# with AFFILIATE_AUTH=on (ipc://, fresh database); the start line naming
# the mode; and no key or secret in the server's log.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-keys-XXXXXX)
url="ipc://$work/rpc.sock"
server_pid=
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
	backend_stop
	rm -rf "$work"
}
trap cleanup EXIT
# The servers' store: AFFILIATE_TEST_BACKEND (tests/backend.sh).
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

cli() { # cli KEY ARGS...: output in $work/out, exit status returned
	local key=$1
	shift
	AFFILIATE_KEY=$key "$BIN/affiliate" --url "$url" "$@" >"$work/out" 2>"$work/err"
}
field() { # field NAME: a top-level string or number from $work/out
	sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$work/out" | head -1
}

"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key >"$work/admin" 2>"$work/create.log"
check "--create-admin-key exits 0" [ $? = 0 ]
admin=$(cat "$work/admin")
check "and prints one aff_<id>_<64 hex> key" grep -qE '^aff_1_[0-9a-f]{64}$' "$work/admin"

AFFILIATE_AUTH=on "$BIN/affiliate-server" --listen "$url" --data-dir "$work/data" --redis off \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" --log-level debug \
	>"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
	grep -q "server: ready" "$work/server.log" 2>/dev/null && break
	sleep 0.05
done
check "the server says keys are required" grep -q "server: auth on:" "$work/server.log"

cli "" advertisers list
check "no key: exit 1" [ $? = 1 ]
check "UNAUTHENTICATED" grep -q '"code": "UNAUTHENTICATED"' "$work/out"
cli "$admin" keys create --editor 2
check "keys create --editor 2" [ $? = 0 ]
editor=$(field token)
check "prints the editor's key once" bash -c "echo '$editor' | grep -qE '^aff_2_[0-9a-f]{64}$'"
cli "$admin" keys create
check "keys create without --editor or --admin is a usage error" [ $? = 2 ]
cli "$editor" keys list
check "an editor's key cannot list keys (exit 1)" [ $? = 1 ]
check "PERMISSION_DENIED" grep -q PERMISSION_DENIED "$work/out"
cli "$editor" applications list --editor 3
check "another editor's applications: PERMISSION_DENIED" grep -q PERMISSION_DENIED "$work/out"
cli "$editor" orders list
check "its own orders: exit 0" [ $? = 0 ]
cli "$admin" keys list
check "keys list shows both keys, no secret" bash -c "grep -c '\"role\"' '$work/out' | grep -qx 2 && ! grep -q '${editor##*_}' '$work/out'"
cli "$admin" webhook secret rotate --advertiser 2
check "webhook secret rotate prints the new secret" grep -qE '"secret": "[0-9a-f]{64}"' "$work/out"
secret=$(field secret)
cli "$admin" webhook require-timestamp 2 on
check "webhook require-timestamp 2 on: exit 0" [ $? = 0 ]
check "prints the policy" bash -c "grep -qx '  \"advertiser_id\": 2,' '$work/out' && grep -qx '  \"require_timestamp\": true' '$work/out'"
cli "$editor" webhook require-timestamp 2 off
check "an editor's key cannot change it (exit 1, PERMISSION_DENIED)" bash -c "[ $? = 1 ] && grep -q PERMISSION_DENIED '$work/out'"
cli "$admin" webhook require-timestamp 99 on
check "an unknown advertiser: exit 1, NOT_FOUND" bash -c "[ $? = 1 ] && grep -q '\"message\": \"no advertiser with id 99\"' '$work/out'"
cli "$admin" webhook require-timestamp 2 maybe
check "neither on nor off: usage error (exit 2)" [ $? = 2 ]
check "saying so" grep -q "webhook require-timestamp takes on or off, not 'maybe'" "$work/err"
cli "$admin" webhook require-timestamp 2
check "no on|off: usage error (exit 2)" [ $? = 2 ]
cli "$admin" webhook require-timestamp 2 off
check "off again: exit 0" bash -c "[ $? = 0 ] && grep -qx '  \"require_timestamp\": false' '$work/out'"
check "the server logs who changed it" grep -q "webhook: advertiser 2 refuses plain signatures (by key 1)" "$work/server.log"
cli "$admin" keys revoke 2
check "keys revoke 2" grep -q '"revoked_at": "2' "$work/out"
cli "$editor" orders list
check "the revoked key fails at once" grep -q UNAUTHENTICATED "$work/out"

check "no key or secret in the server's log" bash -c \
	"! grep -qE '${admin##*_}|${editor##*_}|$secret' '$work/server.log' '$work/create.log'"

kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
tap_done
