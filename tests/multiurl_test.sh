#!/usr/bin/env bash
# multiurl_test.sh - one bridge and one worker in front of two real
# affiliate-server processes (each its own SQLite file, or PostgreSQL
# database as test_multiurl_pg: two systems, so
# only calls where that does not matter are compared: reads, webhook
# orders, and each server's own applications), over tcp:// on free
# loopback ports:
# - calls reach both servers (counted in each server's log and stored
#   state);
# - after kill -9 of one, every read still answers 200 from the other, at
#   once; restarted, it is back in the rotation without a bridge restart;
#   with both gone GET / answers 503;
# - a worker with two --jobs/--results lists reviews applications made on
#   both servers;
# - bad lists (an empty element, a bad URL, too many, lists that do not
#   pair up, fewer slots than servers) are refused at start, with words.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
# Every read must reach a server here (how they spread is what is
# counted): the bridges' read cache off.
export AFFILIATE_READ_CACHE=off
work=$(mktemp -d /tmp/affiliate-multiurl-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop # before wait: PostgreSQL is a child too
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
# The servers' store: AFFILIATE_TEST_BACKEND (tests/backend.sh); on
# PostgreSQL a database of its own for each of the two systems.
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }
db_a=$(backend_db_new a) && db_b=$(backend_db_new b) ||
	{ not_ok "a database for each server"; tap_done; exit; }


# The two servers share the secrets a worker and a partner use, as servers
# of one platform do.
export AFFILIATE_WORKER_SECRET=multiurl-test-worker-secret-0123
export AFFILIATE_WEBHOOK_SECRET=multiurl-test-webhook-secret-0123
for s in a b; do
	eval "rpc_$s=tcp://127.0.0.1:$(free_port)"
	eval "jobs_$s=tcp://127.0.0.1:$(free_port)"
	eval "results_$s=tcp://127.0.0.1:$(free_port)"
done
declare -A server_pid
start_server() { # start_server a|b
	local s=$1 rpc jobs results db
	eval "rpc=\$rpc_$s jobs=\$jobs_$s results=\$results_$s db=\$db_$s"
	"$BIN/affiliate-server" --listen "$rpc" --data-dir "$work/data-$s" \
		${db:+--db "$db"} \
		--redis off --jobs "$jobs" --results "$results" \
		>>"$work/server-$s.log" 2>&1 &
	server_pid[$s]=$!
	pids+=($!)
}
# How many calls of METHOD server s has logged.
calls() { # calls a|b METHOD
	grep -c "rpc affiliate.v1.[A-Za-z]*/$2 " "$work/server-$1.log"
}

start_server a
start_server b
check "server a starts" wait_for "$work/server-a.log" "server: ready"
check "server b starts" wait_for "$work/server-b.log" "server: ready"
http_port=$(free_port)
B="http://127.0.0.1:$http_port"
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" \
	--server "$rpc_a,$rpc_b" --threads 8 >"$work/bridge.log" 2>&1 &
pids+=($!)
check "the bridge starts with two servers" wait_for "$work/bridge.log" "bridge: ready"
check "and names both" grep -q "server $rpc_a,$rpc_b over one SP connection per thread" "$work/bridge.log"

not() { ! "$@"; }
# get N PATH: N GETs on one connection each; prints the statuses, sorted
# and counted ("20 200").
get() {
	for _ in $(seq 1 "$1"); do
		curl -s -o /dev/null -w '%{http_code}\n' "$B$2"
	done | sort | uniq -c | sed 's/^ *//'
}

check "20 reads through the bridge all answer 200" [ "$(get 20 '/advertisers?limit=5')" = "20 200" ]
na=$(calls a ListAdvertisers)
nb=$(calls b ListAdvertisers)
echo "# ListAdvertisers: server a $na, server b $nb"
check "both servers served some of them" [ "$na" -ge 5 ] && [ "$nb" -ge 5 ]
check "and together exactly the 20" [ $((na + nb)) = 20 ]

# Webhook orders: each stored once, on whichever server got it.
for i in $(seq 1 10); do
	printf '{"order_id":"M-%d","advertiser_id":2,"user_id":1,"amount":10.5,"commission":1.05}' "$i" >"$work/order.json"
	sig=$("$BIN/affiliate" webhook sign --plain "$work/order.json")
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$B/webhook/orders"
done >"$work/webhooks"
check "10 webhook orders all answer 201" [ "$(sort "$work/webhooks" | uniq -c | sed 's/^ *//')" = "10 201" ]
stored() { # stored a|b: the orders the server holds (its own CLI call)
	local rpc
	eval "rpc=\$rpc_$1"
	"$BIN/affiliate" --url "$rpc" orders list --limit 100 | grep -c '"order_id": "M-'
}
oa=$(stored a)
ob=$(stored b)
echo "# orders stored: server a $oa, server b $ob"
check "each server stored some" [ "$oa" -ge 1 ] && [ "$ob" -ge 1 ]
check "and together each order once" [ $((oa + ob)) = 10 ]

# The CLI takes the same list.
check "the CLI with a list answers" "$BIN/affiliate" --url "$rpc_a,$rpc_b" health
"$BIN/affiliate" --url "$rpc_a,,$rpc_b" health >/dev/null 2>"$work/err"
check "the CLI refuses an empty element before sending (exit 2)" [ $? = 2 ]
check "saying so" grep -q "an empty URL in the list" "$work/err"

# kill -9 server a: reads go on from b, each at once.
kill -9 "${server_pid[a]}"
wait "${server_pid[a]}" 2>/dev/null
nb0=$(calls b ListAdvertisers)
lines=$(wc -l <"$work/bridge.log")
out=$(get 20 '/advertisers?limit=5')
check "a killed: 20 reads still all answer 200" [ "$out" = "20 200" ]
check "all from b" [ $(($(calls b ListAdvertisers) - nb0)) = 20 ]
# What each call spent in the bridge beyond its time in server b (both
# logs name it by its request id): the wait, if any, on the dead server.
# (On a loaded host a call may wait in b's queue: that is b's time.) A
# wait on a down server would be a dial bounded at 500 ms or the 100 ms
# grace per round; under 400 ms leaves room for a host whose load average
# is ten times its cores (144 ms seen) and still catches a dial's wait.
extra=$(tail -n +$((lines + 1)) "$work/bridge.log" |
	sed -n 's/.* req=\([0-9a-f]*\) http GET .* \([0-9]*\)ms .*/\1 \2/p' | while read -r rid ms; do
		sms=$(sed -n "s/.* req=$rid rpc .* \([0-9]*\)ms.*/\1/p" "$work/server-b.log" | tail -1)
		echo $((ms - ${sms:-0}))
	done | sort -n | tail -1)
echo "# the longest a read with a dead spent in the bridge beyond b: ${extra:-?} ms"
check "none waited on the dead server (each under 400 ms beyond b's time)" [ "${extra:-999}" -lt 400 ]
check "GET / answers 200" [ "$(get 1 /)" = "1 200" ]
check "the CLI with the list answers from b" "$BIN/affiliate" --url "$rpc_a,$rpc_b" health
check "the bridge said a is down" grep -q "client: server $rpc_a is down" "$work/bridge.log"
for i in 11 12; do
	printf '{"order_id":"M-%d","advertiser_id":2,"user_id":1,"amount":10.5,"commission":1.05}' "$i" >"$work/order.json"
	sig=$("$BIN/affiliate" webhook sign --plain "$work/order.json")
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$B/webhook/orders"
done >"$work/webhooks"
check "webhooks with a dead answer 201 (b stores them)" [ "$(sort "$work/webhooks" | uniq -c | sed 's/^ *//')" = "2 201" ]

# Restarted, a is back in the rotation (after its backoff, at most 2 s).
ready_count() { # ready_count a|b N: server s has said "ready" N times
	for _ in $(seq 1 100); do
		[ "$(grep -c 'server: ready' "$work/server-$1.log")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
start_server a
check "server a restarts" ready_count a 2
na0=$(calls a ListAdvertisers)
for _ in $(seq 1 40); do
	[ "$(get 5 '/advertisers?limit=5')" = "5 200" ] || break
	[ "$(calls a ListAdvertisers)" -gt "$na0" ] && break
	sleep 0.1
done
check "reads reach the restarted a again" [ "$(calls a ListAdvertisers)" -gt "$na0" ]
check "the bridge said a answers again" grep -q "client: server $rpc_a answers again" "$work/bridge.log"
na0=$(calls a ListAdvertisers)
nb0=$(calls b ListAdvertisers)
check "20 reads all answer 200" [ "$(get 20 '/advertisers?limit=5')" = "20 200" ]
check "spread over both again" [ $(($(calls a ListAdvertisers) - na0)) -ge 5 ] && [ $(($(calls b ListAdvertisers) - nb0)) -ge 5 ]

# A call in flight when its server dies. Three bridges of one thread each
# (so the round-robin is known: a, b, then a again) keep a connection to
# both servers; a is stopped (SIGSTOP: it reads nothing), the third call
# of each goes to a and waits there, and a is killed: the read goes on to
# b (200); an Apply goes to b only from the bridge told the servers share
# a database (202), the other answers 503 (a might have applied it).
start_bridge() { # start_bridge NAME ARGS...: its port in $bport (not in
	# a $(...) subshell, so that cleanup knows its pid)
	local name=$1
	shift
	bport=$(free_port)
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$bport" --server "$rpc_a,$rpc_b" \
		--threads 1 "$@" >"$work/bridge-$name.log" 2>&1 &
	pids+=($!)
	wait_for "$work/bridge-$name.log" "bridge: ready"
}
start_bridge reads
port_r=$bport
start_bridge plain
port_p=$bport
start_bridge shared --shared-db 1
port_s=$bport
for port in $port_r $port_p $port_s; do
	curl -s -o /dev/null "http://127.0.0.1:$port/advertisers?limit=1"
	curl -s -o /dev/null "http://127.0.0.1:$port/advertisers?limit=1"
done
# Two advertisers editor 1 may join (2 is applied to already).
set -- $(curl -s "$B/advertisers?editor_id=1&limit=5" | grep -o '"id":[0-9]*' | cut -d: -f2 | grep -vx 2)
adv_p=${1:-0} adv_s=${2:-0}
kill -STOP "${server_pid[a]}"
inflight() { # inflight NAME PORT METHOD PATH [BODY]: status and body in $work/inflight-NAME
	if [ -n "${5:-}" ]; then
		curl -s -o "$work/inflight-$1.body" -w '%{http_code}' -X "$3" -H "X-Request-Id: inflight-$1" \
			--data-binary "$5" "http://127.0.0.1:$2$4" >"$work/inflight-$1"
	else
		curl -s -o "$work/inflight-$1.body" -w '%{http_code}' "http://127.0.0.1:$2$4" >"$work/inflight-$1"
	fi
}
inflight read "$port_r" GET '/advertisers?limit=5' &
inflight plain "$port_p" POST /applications '{"advertiser_id":'$adv_p',"editor_id":1}' &
inflight shared "$port_s" POST /applications '{"advertiser_id":'$adv_s',"editor_id":1}' &
sleep 0.5
kill -9 "${server_pid[a]}"
wait "${server_pid[a]}" 2>/dev/null
wait %inflight 2>/dev/null
for _ in $(seq 1 100); do
	[ -s "$work/inflight-read" ] && [ -s "$work/inflight-plain" ] && [ -s "$work/inflight-shared" ] && break
	sleep 0.05
done
check "the read in flight at a killed server answers 200 (from b)" [ "$(cat "$work/inflight-read")" = 200 ]
check "after waiting there" grep -qE "http GET /advertisers\?limit=5 200 .* ([2-9][0-9][0-9]|[0-9]{4,})ms" "$work/bridge-reads.log"
check "an Apply in flight there is not sent again: 503" [ "$(cat "$work/inflight-plain")" = 503 ]
check "saying the server is not reachable" grep -q '"message":"affiliate-server is not reachable"' "$work/inflight-plain.body"
check "nor sent to b" not grep -q "inflight-plain" "$work/server-b.log"
check "with --shared-db it goes on to b: 202" [ "$(cat "$work/inflight-shared")" = 202 ]
check "made there" grep -q '"advertiser_id":'$adv_s',' "$work/inflight-shared.body"
check "b ran it once" [ "$(grep -c "req=inflight-shared rpc .*/Apply OK" "$work/server-b.log")" = 1 ]
start_server a
check "server a restarts again" ready_count a 3

# A worker with both servers' lists reviews applications made on each.
"$BIN/affiliate-worker" --jobs "$jobs_a,$jobs_b" --results "$results_a,$results_b" \
	--concurrency 2 --review-delay 10 >"$work/worker.log" 2>&1 &
worker_pid=$!
pids+=($worker_pid)
check "the worker starts with two servers" wait_for "$work/worker.log" "worker: ready"
for s in a b; do
	eval "rpc=\$rpc_$s"
	"$BIN/affiliate" --url "$rpc" applications apply --advertiser 2 --editor 1 >"$work/apply-$s" 2>&1
	check "an application made on server $s" grep -q '"status": "pending"' "$work/apply-$s"
done
approved() { # approved a|b: application 1 of server s is approved
	local rpc
	eval "rpc=\$rpc_$1"
	"$BIN/affiliate" --url "$rpc" applications get 1 2>/dev/null | grep -q '"status": "approved"'
}
for _ in $(seq 1 100); do
	approved a && approved b && break
	sleep 0.05
done
check "the worker approved server a's application" approved a
check "and server b's" approved b
kill -TERM "$worker_pid"
wait "$worker_pid"
check "the worker stops on SIGTERM with exit 0" [ $? = 0 ]

# A result whose server has gone goes to one that is connected: a's job
# is in hand (a 1.5 s review) when a is killed, and the result reaches b
# (which, on its own database, knows no such delivery and says so; with
# one database it would apply it).
"$BIN/affiliate-worker" --jobs "$jobs_a,$jobs_b" --results "$results_a,$results_b" \
	--concurrency 2 --review-delay 1500 >"$work/worker2.log" 2>&1 &
worker_pid=$!
pids+=($worker_pid)
check "a second worker starts" wait_for "$work/worker2.log" "worker: ready"
"$BIN/affiliate" --url "$rpc_a" applications apply --advertiser "$adv_p" --editor 1 >"$work/apply-a2" 2>&1
check "another application made on server a" grep -q '"status": "pending"' "$work/apply-a2"
sleep 0.7
kill -9 "${server_pid[a]}"
wait "${server_pid[a]}" 2>/dev/null
worker_name=$(sed -n 's/.*worker: \([^ ]*\) asking .*/\1/p' "$work/worker2.log")
check "its result went to b once a was gone" \
	wait_for "$work/server-b.log" "result for job [0-9]* .*$worker_name"
kill -TERM "$worker_pid"
wait "$worker_pid"
check "that worker stops on SIGTERM with exit 0" [ $? = 0 ]

# Both gone: GET / answers 503.
kill -9 "${server_pid[a]}" "${server_pid[b]}"
wait "${server_pid[a]}" "${server_pid[b]}" 2>/dev/null
check "no server answers: GET / is 503" [ "$(get 1 /)" = "1 503" ]

# Bad lists are refused at start, with words.
refused() { # refused NAME PATTERN BINARY ARGS...: exits non-zero saying PATTERN
	local name=$1 pat=$2
	shift 2
	timeout 10 "$@" >"$work/bad.log" 2>&1
	local rv=$?
	if [ "$rv" = 0 ] || [ "$rv" = 124 ]; then
		not_ok "$name: exit $rv"
	elif ! grep -q -- "$pat" "$work/bad.log"; then
		not_ok "$name: '$pat' not in: $(cat "$work/bad.log")"
	else
		ok "$name"
	fi
}
p=$(free_port)
many=$(for i in $(seq 1 17); do printf 'tcp://127.0.0.1:%d,' $((20000 + i)); done)
refused "bridge: an empty element" "an empty URL in the list" \
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$p" --server "$rpc_a,,$rpc_b"
refused "bridge: a trailing comma" "an empty URL in the list" \
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$p" --server "$rpc_a,"
refused "bridge: a URL that is not one" "\"bogus\" (URL 2 of the list) is not an address" \
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$p" --server "$rpc_a,bogus"
refused "bridge: a URL NNG cannot dial" "cannot use server address nonsense://x" \
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$p" --server "$rpc_a,nonsense://x"
refused "bridge: 17 URLs" "more than 16 URLs" \
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$p" --server "${many%,}"
refused "worker: lists that do not pair up" "2 --jobs URLs but 1 --results URLs" \
	"$BIN/affiliate-worker" --jobs "$jobs_a,$jobs_b" --results "$results_a"
refused "worker: fewer slots than servers" "concurrency 1 is less than the 2 servers" \
	"$BIN/affiliate-worker" --jobs "$jobs_a,$jobs_b" --results "$results_a,$results_b" --concurrency 1
refused "worker: a URL NNG cannot dial" "cannot use server nonsense://x / $results_b" \
	"$BIN/affiliate-worker" --jobs "$jobs_a,nonsense://x" --results "$results_a,$results_b"
refused "worker: an empty element" "an empty URL in the list" \
	"$BIN/affiliate-worker" --jobs ",$jobs_b" --results "$results_a,$results_b"
tap_done
