#!/usr/bin/env bash
# backup_test.sh - affiliate-server --backup FILE on a live database, over
# the real processes (affiliate-server, affiliate-bridge, curl on free
# loopback ports; the SQLite file in a temp folder): four clients post new
# signed orders through the bridge while the backup runs; every order
# acknowledged (201) before the backup began is in the copy, which passes
# integrity_check and is 0600; the copy restored (server stopped, file
# replaced, -wal and -shm removed) serves those orders through the bridge.
# A backup never overwrites a file, --backup needs a FILE, and a
# PostgreSQL --db is told to use pg_dump.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-backup-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

wait_for_seconds=10 # wait_for (tap.sh)

secret=backup-test-secret
export AFFILIATE_WEBHOOK_SECRET=$secret
http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
B="http://127.0.0.1:$http_port"
db="$work/data/affiliate.db"

start_stack() {
	: >"$work/server.log"
	: >"$work/bridge.log"
	"$BIN/affiliate-server" --listen "$rpc_url" --data-dir "$work/data" \
		--redis off --jobs "ipc://$work/jobs.sock" \
		--results "ipc://$work/results.sock" >>"$work/server.log" 2>&1 &
	server_pid=$!
	pids+=($server_pid)
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" \
		--server "$rpc_url" >>"$work/bridge.log" 2>&1 &
	bridge_pid=$!
	pids+=($bridge_pid)
	wait_for "$work/server.log" "server: ready" || exit 1
	wait_for "$work/bridge.log" "bridge: listening" || exit 1
}
stop_stack() {
	kill -TERM "$bridge_pid" "$server_pid"
	wait "$bridge_pid" "$server_pid" 2>/dev/null
}

# sign BODY: the plain signature form (hex HMAC-SHA256 of the raw body).
sign() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1; }

# loader K: posts new signed orders (plain signature form) one after the
# other until $work/stop exists; each acknowledged order_id, with the
# answer's status, goes to acked.K as soon as its answer is read.
loader() {
	local k=$1 i=0 body sig code
	while [ ! -e "$work/stop" ]; do
		i=$((i + 1))
		body="{\"order_id\":\"bk-$k-$i\",\"advertiser_id\":1,\"editor_id\":1,\"amount\":12.34,\"commission\":1.23}"
		sig=$(sign "$body")
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
			-H "Content-Type: application/json" \
			-H "X-Partner-Signature: $sig" --data-binary "$body" "$B/webhook/orders")
		[ "$code" = 201 ] && echo "bk-$k-$i" >>"$work/acked.$k"
	done
}

start_stack
for k in 1 2 3 4; do
	: >"$work/acked.$k"
	loader "$k" &
	pids+=($!)
done
# Until 20 orders are acknowledged (15 s at most): a fixed 1.5 s gave
# 19 on a loaded host under the sanitizers, where each order is a curl
# and an openssl process.
for _ in $(seq 150); do
	[ "$(cat "$work"/acked.? | wc -l)" -ge 20 ] && break
	sleep 0.1
done
# What was acknowledged before the backup began.
cat "$work"/acked.? | sort -u >"$work/before.txt"
"$BIN/affiliate-server" --data-dir "$work/data" --backup "$work/copy.db" \
	>"$work/backup.log" 2>&1
rc=$?
sleep 0.5
touch "$work/stop"
wait "${pids[@]: -4}" 2>/dev/null
cat "$work"/acked.? | sort -u >"$work/all.txt"
before=$(wc -l <"$work/before.txt")
all=$(wc -l <"$work/all.txt")
echo "# $before orders acknowledged before the backup, $all in all"

check "the backup exits 0 under load ($(tail -n 1 "$work/backup.log"))" [ "$rc" = 0 ]
check "at least 20 orders acknowledged before it began" [ "$before" -ge 20 ]
check "the copy passes integrity_check" \
	[ "$(sqlite3 "$work/copy.db" 'PRAGMA integrity_check')" = ok ]
check "the copy is 0600" [ "$(stat -c %a "$work/copy.db")" = 600 ]
check "no .tmp left beside it" [ ! -e "$work/copy.db.tmp" ]
sqlite3 "$work/copy.db" "SELECT order_id FROM orders WHERE order_id LIKE 'bk-%'" |
	sort -u >"$work/in-copy.txt"
missing=$(comm -23 "$work/before.txt" "$work/in-copy.txt" | wc -l)
check "every order acknowledged before the backup is in the copy (missing: $missing)" \
	[ "$missing" = 0 ]
extra=$(comm -13 "$work/all.txt" "$work/in-copy.txt" | wc -l)
check "the copy holds no order that was never acknowledged ($extra)" [ "$extra" -le 4 ]

# A second backup to the same file is refused; the file is unchanged.
sum=$(md5sum <"$work/copy.db")
"$BIN/affiliate-server" --data-dir "$work/data" --backup "$work/copy.db" \
	>"$work/backup2.log" 2>&1
rc=$?
same=no
[ "$(md5sum <"$work/copy.db")" = "$sum" ] && same=yes
check "a backup never overwrites a file (exit $rc, unchanged: $same)" \
	[ "$rc" = 1 -a "$same" = yes ]
check "... and says so" grep -q "never overwrites" "$work/backup2.log"
"$BIN/affiliate-server" --data-dir "$work/data" --backup >"$work/backup3.log" 2>&1
rc=$?
check "--backup without a FILE exits 2 ($rc)" [ "$rc" = 2 ]
check "... naming what is missing" grep -q "needs the FILE" "$work/backup3.log"
"$BIN/affiliate-server" --db "postgresql://nobody@127.0.0.1:1/none" \
	--backup "$work/pg.db" >"$work/backup4.log" 2>&1
rc=$?
check "a PostgreSQL database is refused (exit $rc), nothing written" \
	[ "$rc" = 1 -a ! -e "$work/pg.db" ]
check "... told to use pg_dump" grep -q "pg_dump" "$work/backup4.log"

# Restore: stop, replace the file, remove -wal and -shm, start.
stop_stack
rm -f "$db-wal" "$db-shm"
cp "$work/copy.db" "$db"
start_stack
n_copy=$(wc -l <"$work/in-copy.txt")
first=$(head -n 1 "$work/before.txt")
code=$(curl -s -o "$work/body" -w '%{http_code}' "$B/orders?editor_id=1&limit=500")
listed=$(grep -o '"order_id":"bk-[^"]*"' "$work/body" | wc -l)
check "the restored database serves its orders (GET /orders $code, $listed listed)" \
	[ "$code" = 200 -a "$listed" -ge $((n_copy < 500 ? n_copy : 500)) ]
check "the restored server holds exactly the copy's orders" \
	[ "$(sqlite3 "$db" "SELECT count(*) FROM orders WHERE order_id LIKE 'bk-%'")" = "$n_copy" ]
body="{\"order_id\":\"$first\",\"advertiser_id\":1,\"editor_id\":1,\"amount\":12.34,\"commission\":1.23}"
sig=$(sign "$body")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Partner-Signature: $sig" \
	-H "Content-Type: application/json" --data-binary "$body" "$B/webhook/orders")
check "an order acknowledged before the backup is a duplicate after the restore ($code)" \
	[ "$code" = 200 ]
stop_stack
tap_done
