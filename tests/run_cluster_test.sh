#!/usr/bin/env bash
# run_cluster_test.sh - `make run-cluster` (scripts/run_cluster.sh) as an
# operator runs it, on free ports and a fresh cluster folder: PostgreSQL,
# Redis, two servers on the one database, the bridge with both URLs and a
# worker come up; an order posted through the bridge is stored (201); the
# hint names the real addresses; Ctrl-C (SIGINT to the process group)
# stops everything, PostgreSQL included. A second run reuses the cluster:
# no initdb, and the same order is a duplicate (200), so the data and the
# webhook secret were kept.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:?}
work=$(mktemp -d /tmp/affiliate-runcl-XXXXXX)
chmod 0755 "$work" # as root, PostgreSQL's user must pass through it
run_pid=
. "$(dirname "$0")/tap.sh"

cleanup() {
	[ -n "$run_pid" ] && kill -9 -- "-$run_pid" 2>/dev/null
	# The postmaster dies with run_cluster.sh (its parent-death signal);
	# wait for it before removing its folder.
	for _ in $(seq 1 100); do
		pgrep -f "postgres -D $work/" >/dev/null || break
		sleep 0.1
	done
	rm -rf "$work"
}
trap cleanup EXIT

pg_port=$(free_port)
redis_port=$(free_port)
http_port=$(free_port)
# pick_base: six consecutive ports from base (two servers x RPC, jobs,
# results) that nothing answers on and that are none of the three above.
# Picked again for each run: other tests running beside this one take
# random ports of the same range, and one took a server's jobs port
# between the two runs once (the second run's server could not listen).
pick_base() {
	for _ in $(seq 1 50); do
		base=$(shuf -i 20000-29000 -n 1)
		busy=0
		for p in $(seq "$base" $((base + 5))); do
			case " $pg_port $redis_port $http_port " in *" $p "*) busy=1 ;; esac
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && busy=1
		done
		[ "$busy" = 0 ] && break
	done
}
pick_base

# run_cluster LOG: starts run_cluster.sh in its own process group (as in
# a terminal) and waits up to 60 s for its "started" line.
run_cluster() {
	set -m
	AFFILIATE_CLUSTER_DIR="$work/cluster" AFFILIATE_PG_PORT=$pg_port \
		AFFILIATE_REDIS_PORT=$redis_port AFFILIATE_CLUSTER_PORT=$base \
		AFFILIATE_BRIDGE_LISTEN="127.0.0.1:$http_port" AFFILIATE_WORKERS=1 \
		bash "$SRC/scripts/run_cluster.sh" "$BIN" >"$1" 2>&1 &
	run_pid=$!
	set +m
	for _ in $(seq 1 600); do
		# The summary's last line: the lines before it are all out.
		grep -q "run-cluster: started" "$1" &&
			grep -q "psql -h 127.0.0.1" "$1" && return 0
		kill -0 "$run_pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 30 "$1"
	return 1
}

# stop_cluster: Ctrl-C; 0 when run_cluster.sh and the postmaster are gone
# within 20 s, run_cluster.sh having exited 0.
stop_cluster() {
	local rc=1
	kill -INT -- "-$run_pid"
	for _ in $(seq 1 200); do
		kill -0 "$run_pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$run_pid" 2>/dev/null; then
		wait "$run_pid"
		rc=$?
	fi
	run_pid=
	for _ in $(seq 1 100); do
		pgrep -f "postgres -D $work/" >/dev/null || break
		sleep 0.1
	done
	[ "$rc" = 0 ] && ! pgrep -f "postgres -D $work/" >/dev/null &&
		! pgrep -f "$work/cluster/server" >/dev/null
}

post_order() { # post_order FILE: the status of the signed order in FILE
	local sig
	sig=$(AFFILIATE_WEBHOOK_SECRET=$(sed -n 's/^webhook=//p' "$work/cluster/secrets") \
		"$BIN/affiliate" webhook sign "$1") || return 1
	curl -s -o "$work/body" -w '%{http_code}' -H "X-Partner-Signature: $sig" \
		--data-binary @"$1" "http://127.0.0.1:$http_port/webhook/orders"
}
printf '{"order_id":"RC-1","advertiser_id":2,"user_id":1,"amount":10.00,"commission":1.00}' \
	>"$work/order.json"

check "run_cluster.sh starts" run_cluster "$work/run1.log"
check "with a new PostgreSQL cluster" grep -q "new PostgreSQL cluster in $work/cluster/pg" "$work/run1.log"
check "two servers, each on its own addresses" grep -q "server 2: RPC tcp://127.0.0.1:$((base + 3)), jobs tcp://127.0.0.1:$((base + 4)), results tcp://127.0.0.1:$((base + 5))" "$work/run1.log"
check "both on the one database" [ "$(grep -c "server: store postgresql://.*127.0.0.1:$pg_port/affiliate" "$work/run1.log")" = 2 ]
check "the hint names the bridge" grep -qxF "  curl 'http://127.0.0.1:$http_port/advertisers?editor_id=1'" "$work/run1.log"
check "and both servers for the CLI" grep -qF "AFFILIATE_URL=tcp://127.0.0.1:$base,tcp://127.0.0.1:$((base + 3)) " "$work/run1.log"
check "and where the data is" grep -q "the data is in $work/cluster" "$work/run1.log"
for s in "$base" $((base + 3)); do
	AFFILIATE_URL="tcp://127.0.0.1:$s" "$BIN/affiliate" health >/dev/null 2>&1
	check "the server on :$s answers" [ $? = 0 ]
done
code=$(curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$http_port/advertisers/2?editor_id=1")
check "the bridge answers from the seeded database (200)" [ "$code" = 200 ]
check "a new signed order through the bridge is 201" [ "$(post_order "$work/order.json")" = 201 ]
check "the cluster folder is not readable by others" \
	bash -c "[ -z \"\$(find '$work/cluster' -maxdepth 1 -perm /044)\" ]"
check "the secrets file is 0600" [ "$(stat -c %a "$work/cluster/secrets")" = 600 ]
check "Ctrl-C stops everything, PostgreSQL last" stop_cluster
check "PostgreSQL shut down cleanly" grep -q "database system is shut down" "$work/cluster/pg/postgres.log"

pick_base
check "a second run starts" run_cluster "$work/run2.log"
check "on the same cluster (no initdb)" grep -q "the PostgreSQL cluster in $work/cluster/pg again" "$work/run2.log"
check "the order is still there: the same again is 200" [ "$(post_order "$work/order.json")" = 200 ]
check "Ctrl-C stops it again" stop_cluster
tap_done
