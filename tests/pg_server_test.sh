#!/usr/bin/env bash
# pg_server_test.sh - affiliate-server on PostgreSQL, end to end, with the
# real binaries: a database that cannot be reached stops the start with
# the reason (exit non-zero); then two servers share one PostgreSQL
# database (a real server started here, tests/pg.sh), each behind its own
# bridge, one worker attached to the first server only. Reads, an
# application made through the second server and approved through the
# first, one signed webhook order sent to both servers at once (201 from
# one, 200 from the other, stored once), a catalog change by psql seen by
# both, and PostgreSQL restarted under them (503, then 200 again with no
# server restart).
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-pgsrv-XXXXXX)
pids=()
loaders=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/pg.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	pg_stop # before the wait: the postmaster is a child too
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

wait_for_seconds=10 # wait_for (tap.sh)

# 1. No database to reach: the server says why and exits non-zero.
dead=$(free_port)
AFFILIATE_DB="postgresql://affiliate:DeadSecret1@127.0.0.1:$dead/nope" AFFILIATE_LOG_LEVEL=debug \
	timeout 20 "$BIN/affiliate-server" --listen "ipc://$work/x.sock" \
	--data-dir "$work/d0" --redis off --jobs "ipc://$work/xj.sock" \
	--results "ipc://$work/xr.sock" >"$work/dead.log" 2>&1
rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] &&
	grep -q "cannot connect to PostgreSQL: .*port $dead failed" "$work/dead.log"; then
	ok "an unreachable database stops the start with the reason (exit $rc)"
else
	not_ok "unreachable database: exit $rc: $(cat "$work/dead.log")"
fi
grep -q "DeadSecret1" "$work/dead.log" && not_ok "the password is in the log" ||
	ok "the password is not in the log"

pg_start || { not_ok "PostgreSQL starts"; tap_done; exit 1; }
pw=${PG_URI#postgresql://affiliate:}
pw=${pw%%@*}

# A start that fails on the database's side or on the string itself, at
# debug level: the reason, never the password. libpq quotes the string
# it cannot parse (a bad %-escape, an odd character after the host).
failed_start() { # failed_start NAME DB SECRET REASON
	AFFILIATE_DB="$2" AFFILIATE_LOG_LEVEL=debug timeout 20 "$BIN/affiliate-server" \
		--listen "ipc://$work/x.sock" --data-dir "$work/d0" --redis off \
		--jobs "ipc://$work/xj.sock" --results "ipc://$work/xr.sock" >"$work/fail.log" 2>&1
	local rc=$?
	if [ "$rc" = 0 ] || [ "$rc" = 124 ] || ! grep -q "$4" "$work/fail.log"; then
		not_ok "$1: exit $rc: $(cat "$work/fail.log")"
	elif grep -qF "$3" "$work/fail.log"; then
		not_ok "$1: the password is in the log: $(grep -F "$3" "$work/fail.log")"
	else
		ok "$1: refused with the reason, no password in the log"
	fi
}
failed_start "wrong password" "postgresql://affiliate:WrongSecret2@127.0.0.1:$PG_PORT/affiliate_test" \
	WrongSecret2 'password authentication failed for user "affiliate"'
failed_start "wrong password, key=value" \
	"host=127.0.0.1 port=$PG_PORT dbname=affiliate_test user=affiliate password=WrongSecret3" \
	WrongSecret3 'password authentication failed'
failed_start "a bad %-escape in the password" \
	"postgresql://affiliate:Bad%zzSecret4@127.0.0.1:$PG_PORT/affiliate_test" \
	zzSecret4 'cannot connect to PostgreSQL: invalid percent-encoded token'
failed_start "an odd character after the host" \
	"postgresql://affiliate:OddSecret5@[::1]x/affiliate_test" \
	OddSecret5 'cannot connect to PostgreSQL: unexpected character "x"'

http1=$(free_port)
http2=$(free_port)
start_server() { # start_server N DB
	# The conninfo in the environment, not on the command line (ps);
	# logging everything, which must still never show the password.
	AFFILIATE_DB="$2" AFFILIATE_LOG_LEVEL=debug "$BIN/affiliate-server" --listen "ipc://$work/rpc$1.sock" \
		--data-dir "$work/data" --redis off --jobs "ipc://$work/jobs$1.sock" \
		--results "ipc://$work/results$1.sock" >>"$work/server$1.log" 2>&1 &
	pids+=($!)
	eval "server$1=$!"
}
start_server 1 "$PG_URI"
wait_for "$work/server1.log" "server: ready" || exit 1
# The second as a key=value conninfo, the password quoted.
start_server 2 "host=127.0.0.1 port=$PG_PORT dbname=affiliate_test user=affiliate password='$pw'"
wait_for "$work/server2.log" "server: ready" || exit 1
grep -q "server: store postgresql://affiliate:\*\*\*@127.0.0.1:$PG_PORT/affiliate_test," "$work/server1.log" &&
	grep -q "server: store host=127.0.0.1 port=$PG_PORT dbname=affiliate_test user=affiliate password=\*\*\*," \
		"$work/server2.log" && ok "the start lines show the database, the password masked" ||
	not_ok "start lines: $(grep -h 'server: store' "$work"/server*.log)"
for n in 1 2; do
	port=$http1
	[ "$n" = 2 ] && port=$http2
	# Read cache off: "both servers see a change at once" is the
	# servers' claim; the bridges' (within 0.5 s) is test_readcache's.
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$port" --server "ipc://$work/rpc$n.sock" \
		--read-cache off >"$work/bridge$n.log" 2>&1 &
	pids+=($!)
	wait_for "$work/bridge$n.log" "bridge: listening" || exit 1
done
"$BIN/affiliate-worker" --jobs "ipc://$work/jobs1.sock" --results "ipc://$work/results1.sock" \
	--data-dir "$work/data" --review-delay 10 >"$work/worker.log" 2>&1 &
pids+=($!)
B1="http://127.0.0.1:$http1"
B2="http://127.0.0.1:$http2"
grep -q "seeded" "$work/server1.log" && ! grep -q "seeded" "$work/server2.log" &&
	ok "the first server migrated and seeded, the second found it done" ||
	not_ok "seeding: $(grep -h seeded "$work"/server*.log)"

expect() { # expect NAME STATUS METHOD URL [BODY] [GREP...]
	local name=$1 want=$2 method=$3 url=$4 body=${5-} got
	shift 4
	[ $# -gt 0 ] && shift
	local args=(-s -o "$work/body" -w '%{http_code}' -X "$method")
	[ -n "$body" ] && args+=(--data-binary "$body")
	got=$(curl "${args[@]}" "$url")
	if [ "$got" != "$want" ]; then
		not_ok "$name: $method $url → $got, wanted $want: $(cat "$work/body")"
		return
	fi
	for pat in "$@"; do
		grep -q -- "$pat" "$work/body" ||
			{ not_ok "$name: '$pat' not in $(cat "$work/body")"; return; }
	done
	ok "$name"
}

expect "GET through server 1" 200 GET "$B1/advertisers/2?editor_id=1" "" \
	'"name":"Alpine Gear Co"' '"commission_rate_bps":650'
expect "GET through server 2" 200 GET "$B2/advertisers?editor_id=1" "" '^\[{"id":2,'
expect "apply through server 2" 202 POST "$B2/applications" \
	'{"advertiser_id":2,"editor_id":1}' '"status":"pending"'
expect "the same through server 1: one open application" 409 POST "$B1/applications" \
	'{"advertiser_id":2,"editor_id":1}' '"code":"ALREADY_EXISTS"'
for _ in $(seq 1 200); do
	curl -s "$B2/applications/1" | grep -q '"status":"approved"' && break
	sleep 0.05
done
expect "approved by the worker of server 1" 200 GET "$B2/applications/1" "" \
	'"status":"approved"'

# One signed order to both servers at once: stored once.
order='{"order_id":"PG-1","advertiser_id":2,"user_id":1,"amount":49.9,"commission":4.99}'
printf '%s' "$order" >"$work/order.json"
sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --plain "$work/order.json")
for n in 1 2; do
	url=$B1
	[ "$n" = 2 ] && url=$B2
	curl -s -o "$work/wh$n" -w '%{http_code}\n' -X POST -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$url/webhook/orders" >"$work/code$n" &
done
wait %curl 2>/dev/null
for _ in $(seq 1 100); do
	[ -s "$work/code1" ] && [ -s "$work/code2" ] && break
	sleep 0.05
done
codes=$(sort "$work/code1" "$work/code2" | tr '\n' ' ')
[ "$codes" = "200 201 " ] && ok "one order at both servers at once: 201 and 200" ||
	not_ok "one order at both servers: $codes $(cat "$work/wh1" "$work/wh2")"
expect "the order, once, exact to the cent" 200 GET "$B1/orders" "" \
	'^\[{"order_id":"PG-1","advertiser_id":2,"editor_id":1,"amount":49.90'
n=$(grep -o '"order_id"' "$work/body" | wc -l)
[ "$n" = 1 ] && ok "one order listed" || not_ok "$n orders listed"

# A catalog change by psql: both servers see it at once.
"$PG_BIN/psql" -qAt "$PG_URI" -c "UPDATE advertisers SET name = 'Renamed' WHERE id = 2" ||
	not_ok "psql update"
expect "server 1 sees the catalog change" 200 GET "$B1/advertisers/2?editor_id=1" "" '"name":"Renamed"'
expect "server 2 sees the catalog change" 200 GET "$B2/advertisers/2?editor_id=1" "" '"name":"Renamed"'

# PostgreSQL restarts under both servers: 503 while it is down, then
# served again without restarting a server.
as=(setpriv)
if [ "$(id -u)" = 0 ]; then
	u=postgres
	getent passwd postgres >/dev/null || u=nobody
	as+=(--reuid="$u" --regid="$(id -g "$u")" --clear-groups)
fi
kill -INT "$PG_PID" 2>/dev/null
wait "$PG_PID" 2>/dev/null
expect "database down: 503" 503 GET "$B1/applications/1" "" '"code":"UNAVAILABLE"'
# Load while it is down (8 clients, 2 s, each call a connection attempt
# on some handler thread): at most one "cannot reach" line a second per
# server, each saying how many it left out.
down0=$(cat "$work/server1.log" | wc -l)
t_end=$(($(date +%s%N) / 1000000 + 2000))
for c in $(seq 1 8); do
	(while [ $(($(date +%s%N) / 1000000)) -lt "$t_end" ]; do
		curl -s -o /dev/null "$B1/applications/1"
		curl -s -o /dev/null "$B2/orders"
	done) &
	loaders+=($!)
done
wait "${loaders[@]}"
n=$(tail -n +"$((down0 + 1))" "$work/server1.log" | grep -c "cannot reach PostgreSQL")
left=$(tail -n +"$((down0 + 1))" "$work/server1.log" | grep "cannot reach PostgreSQL" |
	sed -n 's/.*, \([0-9]*\) not logged).*/\1/p' | awk '{s += $1} END {print s + 0}')
[ "$n" -ge 1 ] && [ "$n" -le 4 ] && [ "$left" -ge 20 ] &&
	ok "database down under load: $n 'cannot reach' lines in 2 s, $left left out" ||
	not_ok "database down under load: $n 'cannot reach' lines, $left left out: $(tail -n +"$((down0 + 1))" "$work/server1.log" | head -20)"
"${as[@]}" --pdeathsig QUIT "$PG_BIN/postgres" -D "$PG_DIR/data" \
	-c port="$PG_PORT" -c unix_socket_directories="$PG_DIR" \
	-c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
	-c full_page_writes=on -c shared_buffers=16MB -c logging_collector=off \
	>>"$PG_DIR/postgres.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 200); do
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
	sleep 0.05
done
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$B1/applications/1")" = 200 ] && break
	sleep 0.05
done
expect "database back: served again by server 1" 200 GET "$B1/applications/1" "" '"status":"approved"'
expect "database back: served again by server 2" 200 GET "$B2/orders" "" '"order_id":"PG-1"'
# A WARNING the database sends a server's session (a trigger here) goes
# to the server's log as a warn line, not raw on stderr through libpq's
# default notice processor.
"$PG_BIN/psql" -qAt "$PG_URI" -c "CREATE FUNCTION aff_test_warn() RETURNS trigger
	LANGUAGE plpgsql AS \$\$BEGIN RAISE WARNING 'aff-test-warning %', NEW.order_id;
	RETURN NEW; END\$\$; CREATE TRIGGER aff_test_warn BEFORE INSERT ON orders
	FOR EACH ROW EXECUTE FUNCTION aff_test_warn()" || not_ok "psql trigger"
printf '%s' '{"order_id":"PG-2","advertiser_id":2,"user_id":1,"amount":10,"commission":1}' \
	>"$work/order2.json"
sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --plain "$work/order2.json")
got=$(curl -s -o "$work/body" -w '%{http_code}' -X POST -H "X-Partner-Signature: $sig" \
	--data-binary @"$work/order2.json" "$B2/webhook/orders")
[ "$got" = 201 ] && ok "database back: a new webhook order stored (201)" ||
	not_ok "database back: new order: $got $(cat "$work/body")"
grep -q "warn store: PostgreSQL says: WARNING: aff-test-warning PG-2" "$work/server2.log" &&
	ok "a WARNING from the database is a warn line in the log" ||
	not_ok "the WARNING is not logged: $(grep -h aff-test "$work"/server*.log)"
# Every server session ended from the database side while idle (as a
# crash or a failover does): the next calls are served on new sessions.
"$PG_BIN/psql" -qAt "$PG_URI" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE application_name = 'affiliate-server'" >/dev/null || not_ok "psql terminate"
sleep 0.2
for _ in 1 2 3 4 5 6 7 8; do
	curl -s -o /dev/null "$B1/applications/1"
	curl -s -o /dev/null "$B2/orders"
done
expect "sessions ended by the database: served again" 200 GET "$B1/applications/1" "" '"status":"approved"'
# Everything a server wrote is a log line (libpq's notices, such as the
# FATAL of a connection the database ended, go through the log too).
raw=$(grep -hvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z affiliate-server\[[0-9]+\] (debug|info|warn|error) ' \
	"$work"/server1.log "$work"/server2.log)
[ -z "$raw" ] && ok "the servers wrote only log lines" || not_ok "raw lines in a server's log: $raw"
# After all of it (starts, debug lines, the database down and back, sessions
# ended): the password is nowhere in what the servers wrote.
grep -lF "$pw" "$work"/server*.log "$work"/bridge*.log "$work"/worker.log &&
	not_ok "the password is in a log" || ok "the password is in no log"
kill -0 "$server1" && kill -0 "$server2" && ok "both servers lived through it" ||
	not_ok "a server died: $(tail -5 "$work"/server*.log)"

tap_done
