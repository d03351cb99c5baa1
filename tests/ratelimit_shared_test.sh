#!/usr/bin/env bash
# ratelimit_shared_test.sh - rate limits and key revocation across servers
# (issue 14), with the real processes: one redis-server, two
# affiliate-server processes on one database (the same SQLite file: the
# key checks read it per call, and SQLite's WAL lets two processes of one
# host read and write it; as test_ratelimit_shared_pg, one PostgreSQL
# database, as a cluster's servers share it) and one affiliate-bridge in front of each. Server
# B runs under Debian's faketime 2 hours ahead of A.
#  - the per-key limit (burst 10, one call in 100 s, so that a loaded
#    host's slow calls refill nothing) counts the calls on both servers
#    together: 5 on A and 5 on B take the 10 tokens, the 11th, on B, is
#    429 with Retry-After ~100 and RateLimit-Remaining 0, and so is the
#    next on A; 24 calls at once over both pass 10 exactly; the bucket
#    lives in Redis under the database's id and survives SCRIPT FLUSH (one
#    EVAL); B's clock, 2 h ahead, changes nothing (the bucket uses Redis's
#    TIME: test_cache_limit shows the refill on it);
#  - Redis stalled (SIGSTOP): every call is still answered, after at most
#    the cache's timeout;
#  - Redis stopped: each server limits on its own again (10 more on A,
#    then 429; 10 more on B, then 429), every call answered, and each
#    server's log says so once, not per call or per thread; Redis back:
#    each server says once that the limits are shared again;
#  - a key revoked through server A is refused (401) by server B on the
#    next call, and a key revoked in the database from outside (sqlite3,
#    or psql) is refused by both at once.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-xlimit-XXXXXX)
pids=()
redis_pid=
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}" $redis_pid; do kill -9 "$p" 2>/dev/null; done
	backend_stop # before wait: PostgreSQL is a child too
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
# The servers' store: AFFILIATE_TEST_BACKEND (tests/backend.sh).
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }
BACKEND_DATA_DIR=$work/data

bail() { not_ok "$1"; tap_done; exit; }

libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$libfaketime" ] || bail "libfaketime.so.1 is installed (faketime)"
preload=$libfaketime
asan=$(ldd "$BIN/affiliate-server" 2>/dev/null | awk '/libasan/ { print $3 }')
[ -n "$asan" ] && preload="$asan $libfaketime"

redis_port=$(free_port)
start_redis() {
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
		--appendonly no --loglevel warning >>"$work/redis.log" 2>&1 &
	redis_pid=$!
	for _ in $(seq 1 100); do
		redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.05
	done
	return 1
}
start_redis || bail "redis-server starts"

"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key \
	>"$work/admin" 2>"$work/create.log" || bail "--create-admin-key"
admin=$(cat "$work/admin")

# start NAME [PRELOAD FAKETIME [FLAGS...]]: a server on the shared
# database and a bridge in front of it; the bridge's port in port_NAME.
start() {
	local n=$1 port pre=${2:-} ft=${3:-}
	shift $(($# < 3 ? $# : 3))
	port=$(free_port)
	AFFILIATE_AUTH=on AFFILIATE_RATE_LIMIT=0.01/10 LD_PRELOAD=$pre \
		FAKETIME=$ft "$BIN/affiliate-server" "$@" \
		--listen "ipc://$work/rpc-$n.sock" --data-dir "$work/data" \
		--redis "127.0.0.1:$redis_port" --jobs "ipc://$work/jobs-$n.sock" \
		--results "ipc://$work/results-$n.sock" >"$work/server-$n.log" 2>&1 &
	pids+=($!)
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$port" \
		--server "ipc://$work/rpc-$n.sock" >"$work/bridge-$n.log" 2>&1 &
	pids+=($!)
	wait_for "$work/server-$n.log" "server: ready" &&
		wait_for "$work/bridge-$n.log" "bridge: listening" || return 1
	printf -v "port_$n" %s "$port"
}
start A || bail "server A and its bridge start"
start B "$preload" "+2h" || bail "server B (faketime +2h) and its bridge start"
check "server A says the limits are shared in redis" \
	grep -q "rate limits count in redis 127.0.0.1:$redis_port" "$work/server-A.log"

cli() { # cli SERVER KEY ARGS...: output in $work/out
	local n=$1 key=$2
	shift 2
	AFFILIATE_KEY=$key "$BIN/affiliate" --url "ipc://$work/rpc-$n.sock" "$@" \
		>"$work/out" 2>"$work/err"
}
token() { sed -n 's/^  "token": "\(aff_[^"]*\)",\{0,1\}$/\1/p' "$work/out"; }
cli A "$admin" keys create --editor 2 || bail "an editor key"
editor=$(token)
cli A "$admin" keys create --editor 3 || bail "a second editor key"
editor3=$(token)
cli A "$admin" keys create --editor 4 || bail "a third editor key"
editor4=$(token)
cli A "$admin" keys create --editor 5 || bail "a fourth editor key"
editor5=$(token)
cli A "$admin" keys create --editor 6 || bail "a fifth editor key"
editor6=$(token)
eid=${editor#aff_}
eid=${eid%%_*}

# call SERVER KEY: GET /advertisers/2 through SERVER's bridge; prints the
# status, headers in $work/head.
call() {
	local p="port_$1"
	curl -s -o "$work/body" -D "$work/head" -w '%{http_code}' \
		-H "Authorization: Bearer $2" "http://127.0.0.1:${!p}/advertisers/2"
}
header() { # header NAME: its value in $work/head
	tr -d '\r' <"$work/head" | sed -n "s/^$1: //Ip" | head -1
}

# The burst of 10 over both servers, then the 11th on B and a 12th on A.
codes="" remaining=""
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8 9 10; do
	if [ $((i % 2)) = 1 ]; then n=A; else n=B; fi
	codes+="$(call $n "$editor") "
	remaining+="$(header RateLimit-Remaining) "
done
c11=$(call B "$editor")
retry11=$(header Retry-After)
rem11=$(header RateLimit-Remaining)
c12=$(call A "$editor")
retry12=$(header Retry-After)
ms=$((($(date +%s%N) - t0) / 1000000))
check "10 calls alternating A and B (B 2 h ahead) are 200 ($codes)" \
	[ "$codes" = "200 200 200 200 200 200 200 200 200 200 " ]
check "RateLimit-Remaining counts down over both servers ($remaining)" \
	[ "$remaining" = "9 8 7 6 5 4 3 2 1 0 " ]
check "the 11th, on B, is 429 (got $c11, ${ms} ms for 12 calls)" [ "$c11" = 429 ]
check "with Retry-After: ~100 and RateLimit-Remaining: 0 ($retry11, $rem11)" \
	[ "$retry11" -ge 80 -a "$retry11" -le 100 -a "$rem11" = 0 ]
check "and the 12th, on A, is 429 with Retry-After ~100 ($c12, $retry12)" \
	[ "$c12" = 429 -a "$retry12" -ge 80 -a "$retry12" -le 100 ]
check "the JSON error says RESOURCE_EXHAUSTED" \
	grep -q '"code":"RESOURCE_EXHAUSTED"' "$work/body"
db_id=$(backend_sql "SELECT value FROM meta WHERE key = 'db_id'")
check "the bucket is in redis under the database's id (aff:$db_id:rl:k:$eid)" \
	bash -c "redis-cli -p $redis_port exists 'aff:$db_id:rl:k:$eid' | grep -qx 1"

# Atomic: 24 calls at once, 8 in flight, half on each server, with a
# fresh key's bucket: 10 pass, never the 20 two separate counts would.
t0=$(date +%s%N)
for i in $(seq 1 24); do
	if [ $((i % 2)) = 1 ]; then echo "$port_A"; else echo "$port_B"; fi
done | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
	-H "Authorization: Bearer $editor6" "http://127.0.0.1:{}/advertisers/2" \
	>"$work/par"
ms=$((($(date +%s%N) - t0) / 1000000))
n200=$(grep -c '^200$' "$work/par")
n429=$(grep -c '^429$' "$work/par")
check "24 calls at once over both servers: $n200 pass, $n429 are 429 (${ms} ms)" \
	[ "$n200" = 10 -a "$n429" = 14 ]

# Redis lost its scripts (SCRIPT FLUSH, as after a restart): EVALSHA is
# NOSCRIPT, and the one call that finds it so sends the script with EVAL.
evals() { redis-cli -p "$redis_port" info commandstats |
	sed -n 's/^cmdstat_eval:calls=\([0-9]*\).*/\1/p'; }
e0=$(evals)
redis-cli -p "$redis_port" script flush >/dev/null
c=$(call A "$editor4")
r=$(header RateLimit-Remaining)
c2=$(call B "$editor4")
r2=$(header RateLimit-Remaining)
e1=$(evals)
check "after SCRIPT FLUSH the calls still count in redis ($c $r, $c2 $r2)" \
	[ "$c" = 200 -a "$r" = 9 -a "$c2" = 200 -a "$r2" = 8 ]
check "with one EVAL between them (EVAL calls ${e0:-0} -> $e1)" \
	[ "$e1" = $((${e0:-0} + 1)) ]

# Redis stalled (SIGSTOP: connections open, no answer) for the whole
# loop: a call waits at most the cache's timeout (200 ms by default), is
# decided here, and answered (an unbounded wait would hang until the
# bridge's deadline: 504). The slack is for a loaded host.
# (One call first, so the reply is in the server's in-process cache: the
# calls below then ask Redis for the limit only.)
call A "$editor5" >/dev/null
kill -STOP "$redis_pid"
slow=""
worst=0
paid=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
		-H "Authorization: Bearer $editor5" "http://127.0.0.1:$port_A/advertisers/2")
	slow+="$t, "
	ms=$(awk -v t="${t#* }" 'BEGIN { printf "%d", t * 1000 }')
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$ms" -ge 190 ] && paid=$((paid + 1))
	[ "${t% *}" = 200 ] || worst=99999
done
kill -CONT "$redis_pid"
check "redis stalled: every call is 200 within 200 ms + 1800 ms of slack (worst $worst ms: $slow)" \
	[ "$worst" -lt 2000 ]
# One call at a time asks the stalled Redis again (after 100, 200, 400 ms
# ...), the others do not wait on it (before: each of 4 threads after its
# own backoff, so every call here paid 200 ms).
check "and only some calls pay the timeout ($paid of 10 took 190 ms or more)" \
	[ "$paid" -le 5 ]
for _ in $(seq 1 40); do
	grep -q "ratelimit: the shared buckets (redis) answer again" \
		"$work/server-A.log" && break
	call A "$editor5" >/dev/null
	sleep 0.2
done
sleep 6 # every thread's backoff over (5 s at most)

# Redis stopped: each server on its own. editor3's key has a full bucket
# in both processes (never used while Redis held the count).
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null
redis_pid=
for n in A B; do
	codes=""
	for i in 1 2 3 4 5 6 7 8 9 10 11; do
		codes+="$(call $n "$editor3") "
	done
	check "redis down: server $n alone allows 10 of editor 3's calls, then 429 ($codes)" \
		[ "$codes" = "200 200 200 200 200 200 200 200 200 200 429 " ]
	ra=$(header Retry-After)
	check "with Retry-After: ~100 ($ra)" [ "$ra" -ge 90 -a "$ra" -le 100 ]
done
# More calls over both servers' threads while Redis stays down: still
# one line each (a thread that finds Redis down after its backoff, or
# another thread's failure, is the same outage).
for i in $(seq 1 20); do call A "$editor4" >/dev/null; call B "$editor4" >/dev/null; sleep 0.02; done
# (Server A also had the stall: one line for it, one for this outage.)
for n in A B; do
	want=1
	[ $n = A ] && want=2
	lines=$(grep -c "ratelimit: the shared buckets (redis) are unavailable" "$work/server-$n.log")
	check "server $n's log says once per outage that it limits on its own ($lines lines, want $want)" \
		[ "$lines" = $want ]
done

start_redis || bail "redis-server starts again"
# The threads reconnect after their backoff (at most a few seconds).
for n in A B; do
	want=1
	[ $n = A ] && want=2
	for _ in $(seq 1 40); do
		call $n "$editor4" >/dev/null
		[ "$(grep -c "ratelimit: the shared buckets (redis) answer again" \
			"$work/server-$n.log")" -ge $want ] && break
		sleep 0.2
	done
	lines=$(grep -c "ratelimit: the shared buckets (redis) answer again" "$work/server-$n.log")
	check "redis back: server $n's log says once that the limits are shared again ($lines, want $want)" \
		[ "$lines" = $want ]
done
sleep 6 # every thread's backoff over (5 s at most)
cli A "$admin" keys create --editor 1 || bail "a sixth editor key"
editor7=$(token)
codes="" remaining=""
for i in 1 2 3 4 5 6 7 8 9 10 11; do
	if [ $((i % 2)) = 1 ]; then n=A; else n=B; fi
	codes+="$(call $n "$editor7") "
	remaining+="$(header RateLimit-Remaining) "
done
check "and the limit counts both servers together again ($codes)" \
	[ "$codes" = "200 200 200 200 200 200 200 200 200 200 429 " ]
check "(remaining $remaining)" [ "$remaining" = "9 8 7 6 5 4 3 2 1 0 0 " ]

# Revocation: through A, seen by B on the next call (a second key of
# editor 2's, its bucket full).
cli A "$admin" keys create --editor 2 || bail "a second key for editor 2"
editor2b=$(token)
rid=${editor2b#aff_}
rid=${rid%%_*}
c=$(call B "$editor2b")
check "editor 2's second key works on B before it is revoked ($c)" [ "$c" = 200 ]
cli A "$admin" keys revoke "$rid"
check "keys revoke $rid through server A: exit 0" [ $? = 0 ]
c=$(call B "$editor2b")
check "server B refuses the revoked key at once: 401 ($c)" [ "$c" = 401 ]
check "saying the key is not valid" grep -q '"code":"UNAUTHENTICATED"' "$work/body"
c=$(call A "$editor2b")
check "and so does server A ($c)" [ "$c" = 401 ]
# Revoked in the database from outside (an operator, a script): both at once.
id3=${editor3#aff_}
id3=${id3%%_*}
# (Its bucket in Redis is full: it was used only while Redis was down.)
ca=$(call A "$editor3")
cb=$(call B "$editor3")
check "editor 3's key works on A and B before ($ca $cb)" \
	[ "$ca" = 200 -a "$cb" = 200 ]
# Revoked at 2026-01-01T00:00:00Z, in the column's Unix seconds.
backend_sql "UPDATE api_keys SET revoked_at = 1767225600 WHERE id = $id3" \
	>/dev/null
ca=$(call A "$editor3")
cb=$(call B "$editor3")
check "a key revoked in the database is refused by A and B at once ($ca $cb)" \
	[ "$ca" = 401 -a "$cb" = 401 ]
# A third server with --rate-limit-shared off counts in its own memory:
# editor 1's key, whose bucket in Redis is empty, gets its 10 there.
start C "" "" --rate-limit-shared off || bail "server C starts"
check "server C says its limits count in this process" \
	grep -q "rate limits count in this process (AFFILIATE_RATE_LIMIT_SHARED=off)" \
	"$work/server-C.log"
codes=""
for i in 1 2 3 4 5 6 7 8 9 10 11; do codes+="$(call C "$editor7") "; done
check "and allows editor 1's key its own 10, then 429 ($codes)" \
	[ "$codes" = "200 200 200 200 200 200 200 200 200 200 429 " ]
for n in A B C; do
	check "server $n logged no error" \
		bash -c "! grep -E 'ERROR|sanitizer' '$work/server-$n.log'"
done
tap_done
