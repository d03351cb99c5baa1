#!/usr/bin/env bash
# rpc_cli_test.sh - `affiliate rpc` against a real affiliate-server: a
# request in text format, the reply printed in text format (a plain one, a
# nested and repeated one, one from stdin), error statuses (exit 1, the
# reason on stderr, a payload that came with the error on stdout), bad text
# and unknown names (exit 2, nothing sent); and, with protoc, the bytes
# --hex shows are protoc --encode's and the text is protoc --decode's.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d /tmp/affiliate-rpc-XXXXXX)
server_pid=
. "$(dirname "$0")/tap.sh"
cleanup() {
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

url="ipc://$work/rpc.sock"
"$BIN/affiliate-server" --listen "$url" --data-dir "$work/data" --redis off \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	>"$work/server.log" 2>&1 &
server_pid=$!
wait_for "$work/server.log" "server: ready" || exit 1

rpc() { # rpc ARGS...: stdout to $work/out, stderr to $work/err; sets rc
	"$BIN/affiliate" --url "$url" "$@" >"$work/out" 2>"$work/err"
	rc=$?
}
has() { grep -qxF -- "$1" "$work/out"; }

rpc rpc
check "rpc alone lists the services and methods" \
	bash -c "grep -qx 'affiliate.v1.OrderService' '$work/out' &&
		grep -qx '  GetAdvertiser(affiliate.v1.GetAdvertiserRequest) returns (affiliate.v1.Advertiser)' '$work/out'"

# Every service a proto file declares (the server registers each): the
# CLI's list is kept by hand, so a new service must be added to it.
for svc in $(sed -n 's/^service \([A-Za-z]*\) {$/\1/p' "$SRC"/proto/affiliate/v1/*.proto); do
	grep -qx "affiliate.v1.$svc" "$work/out" || { not_ok "rpc lists $svc (declared in proto/)"; continue; }
	ok "rpc lists $svc"
done
rpc rpc ReportService GetEarnings 'from: "2026-01-01", to: "2026-01-31", group_by: "status"'
check "ReportService.GetEarnings answers through rpc (exit 0)" [ "$rc" = 0 ]

rpc rpc AdvertiserService GetAdvertiser 'id: 2'
check "GetAdvertiser id: 2 exits 0" [ "$rc" = 0 ]
check "and prints the advertiser in text format" \
	bash -c "grep -qx 'name: \"Alpine Gear Co\"' '$work/out' && grep -qx 'commission_rate_bps: 650' '$work/out'"

rpc --hex rpc affiliate.v1.AdvertiserService ListAdvertisers 'editor_id: 1, limit: 2'
check "ListAdvertisers exits 0" [ "$rc" = 0 ]
check "shows the request's bytes" has "# request payload: 4 bytes: 08 01 10 02"
check "prints the repeated nested reply" \
	bash -c "[ \$(grep -cx 'advertisers {' '$work/out') = 2 ] && grep -qx '  id: 3' '$work/out' &&
		grep -qx '}' '$work/out' && grep -qx 'next_after: 3' '$work/out'"
# The bytes and the text are protoc's own, when protoc is here.
if command -v protoc >/dev/null; then
	(cd "$SRC/proto" && printf 'editor_id: 1, limit: 2' |
		protoc --encode=affiliate.v1.ListAdvertisersRequest affiliate/v1/affiliate.proto) |
		od -An -tx1 -v | tr -s ' \n' ' ' | sed 's/^ //; s/ $//' >"$work/req.hex"
	check "the request bytes are protoc --encode's" \
		grep -qxF "# request payload: 4 bytes: $(cat "$work/req.hex")" "$work/out"
	sed -n 's/^# reply payload: [0-9]* bytes: //p' "$work/out" | tr ' ' '\n' |
		sed 's/^/\\x/' | tr -d '\n' >"$work/rep.esc"
	printf "$(cat "$work/rep.esc")" >"$work/rep.bin"
	(cd "$SRC/proto" && protoc --decode=affiliate.v1.ListAdvertisersResponse \
		affiliate/v1/affiliate.proto <"$work/rep.bin") >"$work/protoc.txt"
	grep -v '^#' "$work/out" >"$work/ours.txt"
	check "the reply text is protoc --decode's, to the byte ($(wc -l <"$work/protoc.txt") lines)" cmp -s "$work/ours.txt" "$work/protoc.txt"
else
	not_ok "protoc is installed (make deps-dev)"
fi

echo 'id: 3  # from stdin' | "$BIN/affiliate" --url "$url" rpc AdvertiserService GetAdvertiser - >"$work/out" 2>&1
check "a request from stdin ('-')" has 'name: "CampFire Supplies"'
rpc rpc HealthService Check
check "no text: the empty request" has "status: SERVING"

rpc rpc AdvertiserService GetAdvertiser 'id: 999'
check "an error status exits 1" [ "$rc" = 1 ]
check "with the status and reason on stderr" grep -q "NOT_FOUND (5): no advertiser with id 999" "$work/err"
check "and nothing on stdout" [ ! -s "$work/out" ]
rpc rpc ApplicationService Apply 'advertiser_id: 2 editor_id: 1'
check "Apply exits 0" [ "$rc" = 0 ]
check "prints the pending application" has 'status: "pending"'
rpc rpc ApplicationService Apply 'advertiser_id: 2 editor_id: 1'
check "Apply again exits 1 with ALREADY_EXISTS" bash -c "[ $rc = 1 ] && grep -q 'ALREADY_EXISTS (6)' '$work/err'"
check "and prints the application in the way" bash -c "grep -qx 'id: 1' '$work/out' && grep -qx 'advertiser_id: 2' '$work/out'"

n_calls=$(grep -c "rpc affiliate.v1" "$work/server.log")
check "the server logs each call ($n_calls so far)" [ "$n_calls" = 8 ]
rpc rpc AdvertiserService GetAdvertiser 'id: "2"'
check "bad text exits 2" [ "$rc" = 2 ]
check "saying where and why" grep -qF "the request is not a valid affiliate.v1.GetAdvertiserRequest in text format: line 1, column 5: id is not a string field" "$work/err"
rpc rpc AdvertiserService GetAdvertiser 'id: 2 nme: "x"'
check "an unknown field is named" grep -qF "line 1, column 7: no field 'nme' in affiliate.v1.GetAdvertiserRequest" "$work/err"
rpc rpc AdvertiserService GetAdvertisers 'id: 2'
check "an unknown method exits 2 and lists the service's" bash -c "[ $rc = 2 ] && grep -qx '  GetAdvertiser' '$work/err'"
rpc rpc NoService Get
check "an unknown service exits 2" bash -c "[ $rc = 2 ] && grep -q \"no service 'NoService'\" '$work/err'"
check "none of these was sent" [ "$(grep -c 'rpc affiliate.v1' "$work/server.log")" = "$n_calls" ]

tap_done
