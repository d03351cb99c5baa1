#!/usr/bin/env bash
# run_cluster.sh - `make run-cluster`: the several-server topology on one
# host, in the foreground: a local PostgreSQL (the system of record),
# redis-server, AFFILIATE_SERVERS (2) affiliate-servers on that one
# database, one bridge with every server's URL, and AFFILIATE_WORKERS (2)
# workers serving them all. Ctrl-C stops them all.
#
# The data stays in AFFILIATE_CLUSTER_DIR (./data-cluster) across runs: a
# second run starts the same PostgreSQL cluster again (initdb only the
# first time), with the same secrets. Inside it:
#   pg/           the PostgreSQL cluster (initdb), its socket and log
#   pg_password   the database password (0600), also in the servers' URI
#   secrets       the webhook and worker secrets every server must share
#   server1/ ...  each server's data folder and log
# It is apart from `make run`'s ./data (SQLite), which it never touches.
#
# PostgreSQL refuses to run as root: as root, it runs as `postgres` (made
# by Debian's package), else `nobody`, as tests/pg.sh does; the cluster
# folder is then 0711 so that user can reach pg/ (nothing in it can be
# listed or read by others). Durable as a deployment: fsync and
# synchronous_commit on. Ports (all on 127.0.0.1): AFFILIATE_PG_PORT
# (5432), AFFILIATE_REDIS_PORT (6379, a Redis already answering there is
# used), AFFILIATE_CLUSTER_PORT (5555: server i listens on PORT + 3(i-1),
# its jobs on the next port, its results on the one after),
# AFFILIATE_BRIDGE_LISTEN (127.0.0.1:8080).
set -u
bin=${1:-build/bin}
dir=${AFFILIATE_CLUSTER_DIR:-data-cluster}
pg_bin=${AFFILIATE_PG_BIN:-/usr/lib/postgresql/15/bin}
pg_port=${AFFILIATE_PG_PORT:-5432}
redis_port=${AFFILIATE_REDIS_PORT:-6379}
base_port=${AFFILIATE_CLUSTER_PORT:-5555}
n_servers=${AFFILIATE_SERVERS:-2}
workers=${AFFILIATE_WORKERS:-2}
bridge_listen=${AFFILIATE_BRIDGE_LISTEN:-127.0.0.1:8080}
pids=()    # the platform's processes, stopped first
pg_pid=    # the postmaster, stopped last (fast shutdown)
redis_pid=

die() {
	echo "run-cluster: $*" >&2
	exit 1
}
for v in pg_port redis_port base_port n_servers workers; do
	case ${!v} in '' | *[!0-9]*) die "$v must be a number (${!v})" ;; esac
done
[ "$n_servers" -ge 1 ] && [ "$n_servers" -le 16 ] || die "AFFILIATE_SERVERS must be 1..16"
[ -x "$pg_bin/postgres" ] || die "no PostgreSQL in $pg_bin (apt-get install postgresql-15, or set AFFILIATE_PG_BIN)"
for b in affiliate-server affiliate-bridge affiliate-worker; do
	[ -x "$bin/$b" ] || die "$bin/$b is missing; build first"
done

# Who PostgreSQL runs as, and how to run its programs as that user.
as=(setpriv)
pg_user=
if [ "$(id -u)" = 0 ]; then
	pg_user=postgres
	getent passwd postgres >/dev/null || pg_user=nobody
	as+=(--reuid="$pg_user" --regid="$(id -g "$pg_user")" --clear-groups)
fi

if [ ! -d "$dir" ]; then
	(umask 077 && mkdir -p "$dir") || exit 1
fi
dir=$(cd "$dir" && pwd)
if [ -n "$pg_user" ]; then
	# The postgres user must pass through every folder above pg/.
	chmod 0711 "$dir" || exit 1
	d=$dir
	while [ "$d" != / ]; do
		d=$(dirname "$d")
		if ! "${as[@]}" test -x "$d"; then
			die "$pg_user cannot reach $d (so not $dir/pg): set AFFILIATE_CLUSTER_DIR elsewhere (e.g. /var/tmp/affiliate-cluster)"
		fi
	done
else
	chmod 0700 "$dir" || exit 1
fi

# The secrets every server shares (what one server accepts, all must):
# made once, kept with the data. A variable already set wins.
if [ ! -s "$dir/secrets" ]; then
	(umask 077 && {
		echo "webhook=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
		echo "worker=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
	} >"$dir/secrets") || exit 1
fi
export AFFILIATE_WEBHOOK_SECRET=${AFFILIATE_WEBHOOK_SECRET:-$(sed -n 's/^webhook=//p' "$dir/secrets")}
export AFFILIATE_WORKER_SECRET=${AFFILIATE_WORKER_SECRET:-$(sed -n 's/^worker=//p' "$dir/secrets")}

# stop [STATUS]: everything this script started, then exit STATUS (0):
# a start that failed (die) keeps its 1.
stop() {
	local rc=${1:-0}
	trap - INT TERM EXIT
	echo "run-cluster: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	# The database last, once nothing writes to it: a fast shutdown
	# (open transactions roll back, committed ones stay).
	[ -z "$redis_pid" ] || kill -TERM "$redis_pid" 2>/dev/null
	[ -z "$pg_pid" ] || kill -INT "$pg_pid" 2>/dev/null
	wait
	echo "run-cluster: stopped; the data stays in $dir"
	exit "$rc"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

# ---- PostgreSQL: initdb the first time, then the same cluster again.
if [ ! -s "$dir/pg/data/PG_VERSION" ]; then
	echo "run-cluster: new PostgreSQL cluster in $dir/pg (initdb)"
	rm -rf "$dir/pg"
	(umask 077 && mkdir -p "$dir/pg") || exit 1
	(umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/pg_password") || exit 1
	cp "$dir/pg_password" "$dir/pg/pwfile"
	[ -z "$pg_user" ] || chown -R "$pg_user:$(id -g "$pg_user")" "$dir/pg"
	if ! "${as[@]}" "$pg_bin/initdb" -D "$dir/pg/data" -U affiliate \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/pg/pwfile" \
		-E UTF8 --locale=C >"$dir/pg/initdb.log" 2>&1; then
		rm -f "$dir/pg/pwfile"
		cat "$dir/pg/initdb.log" >&2
		die "initdb failed (log above)"
	fi
	rm -f "$dir/pg/pwfile"
	new_cluster=1
else
	echo "run-cluster: the PostgreSQL cluster in $dir/pg again"
	new_cluster=0
fi
[ -s "$dir/pg_password" ] || die "$dir/pg_password is missing: the database's password is lost (remove $dir/pg to start over)"
pg_pw=$(cat "$dir/pg_password")
if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
	die "something already answers on 127.0.0.1:$pg_port: set AFFILIATE_PG_PORT"
fi
# In a session of its own, so Ctrl-C (SIGINT to the terminal's process
# group) does not stop it under the servers: stop() stops it last. Its
# parent-death signal stops it should this script be killed outright.
setsid "${as[@]}" --pdeathsig QUIT "$pg_bin/postgres" -D "$dir/pg/data" \
	-c port="$pg_port" -c listen_addresses=127.0.0.1 \
	-c unix_socket_directories="$dir/pg" \
	-c fsync=on -c synchronous_commit=on -c full_page_writes=on \
	-c logging_collector=off >>"$dir/pg/postgres.log" 2>&1 &
pg_pid=$!
for i in $(seq 1 600); do # 60 s: crash recovery after a hard stop included
	"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
	kill -0 "$pg_pid" 2>/dev/null || i=600
	if [ "$i" = 600 ]; then
		tail -n 20 "$dir/pg/postgres.log" >&2
		die "PostgreSQL did not start (its log: $dir/pg/postgres.log)"
	fi
	sleep 0.1
done
uri="postgresql://affiliate:$pg_pw@127.0.0.1:$pg_port/affiliate"
if [ "$new_cluster" = 1 ] ||
	! "$pg_bin/psql" -qAt "${uri%/*}/postgres" -c "SELECT 1 FROM pg_database WHERE datname = 'affiliate'" | grep -q 1; then
	"$pg_bin/psql" -qAt "${uri%/*}/postgres" -c "CREATE DATABASE affiliate" ||
		die "cannot create the database affiliate"
fi

# ---- Redis: shared by the servers (catalog cache, order copy, rate limits).
if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
	echo "run-cluster: using the Redis already on port $redis_port"
else
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
		--appendonly no --loglevel warning &
	redis_pid=$!
fi

# ---- The servers, one after the other: the first applies the schema and
# the seed (the others would wait on its advisory lock anyway).
export AFFILIATE_DB=$uri
export AFFILIATE_REDIS=${AFFILIATE_REDIS:-127.0.0.1:$redis_port}
rpc=() jobs=() results=()
for i in $(seq 1 "$n_servers"); do
	p=$((base_port + 3 * (i - 1)))
	rpc+=("tcp://127.0.0.1:$p")
	jobs+=("tcp://127.0.0.1:$((p + 1))")
	results+=("tcp://127.0.0.1:$((p + 2))")
	(umask 077 && mkdir -p "$dir/server$i") || exit 1
	"$bin/affiliate-server" --listen "${rpc[-1]}" --data-dir "$dir/server$i" \
		--jobs "${jobs[-1]}" --results "${results[-1]}" &
	pids+=($!)
	for _ in $(seq 1 300); do # 30 s: the first start migrates
		AFFILIATE_URL=${rpc[-1]} "$bin/affiliate" --timeout 1000 health >/dev/null 2>&1 && break
		kill -0 "${pids[-1]}" 2>/dev/null || die "affiliate-server $i exited at start (its messages above)"
		sleep 0.1
	done
done
list() { local IFS=,; echo "$*"; }

for _ in $(seq 1 "$workers"); do
	"$bin/affiliate-worker" --jobs "$(list "${jobs[@]}")" \
		--results "$(list "${results[@]}")" &
	pids+=($!)
done
# --shared-db: the servers share one database, so a webhook or keyed call
# whose server died after it was sent may go on to another one.
"$bin/affiliate-bridge" --listen "$bridge_listen" --server "$(list "${rpc[@]}")" \
	--shared-db 1 &
pids+=($!)

case $bridge_listen in
*[!0-9]*) http=$bridge_listen ;;   # ADDR:PORT
*) http=127.0.0.1:$bridge_listen ;; # a port alone: every address
esac
case $http in 0.0.0.0:* | \[::\]:*) http=127.0.0.1:${http##*:} ;; esac
echo "run-cluster: started: PostgreSQL on 127.0.0.1:$pg_port, Redis on $AFFILIATE_REDIS,"
for i in $(seq 1 "$n_servers"); do
	echo "  server $i: RPC ${rpc[i - 1]}, jobs ${jobs[i - 1]}, results ${results[i - 1]}"
done
echo "  bridge: http://$http ($workers workers on every server)"
echo "run-cluster: the data is in $dir (a second run reuses it); try:"
echo "  AFFILIATE_URL=$(list "${rpc[@]}") $bin/affiliate advertisers list --editor 1"
echo "  curl 'http://$http/advertisers?editor_id=1'"
echo "  psql -h 127.0.0.1 -p $pg_port -U affiliate affiliate   # password in $dir/pg_password"
# Any process dying takes the others down: a half-running cluster misleads.
wait -n
echo "run-cluster: a process exited"
stop
