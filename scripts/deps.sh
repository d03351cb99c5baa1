#!/usr/bin/env bash
# deps.sh [fuzz] [valgrind] [bench] - installs the Debian packages the project needs
# that are missing (apt-get, when root), or prints the apt-get line to run
# (when not). The named extras are for `make fuzz`, `make valgrind` and
# `make bench` (the seed's stack, a Python peer) only,
# so `make test` does not pull in a second compiler.
set -eu
pkgs=(
	build-essential cmake pkg-config
	libprotobuf-c-dev protobuf-c-compiler
	libnng-dev libsqlite3-dev libhiredis-dev libcivetweb-dev
	libssl-dev libjansson-dev libcmocka-dev
	redis-server
	# for the README's wire example and its test
	protobuf-compiler nng-utils
	# test_clock_skew: processes whose wall clocks are off the server's
	faketime
	# for the benchmarks (make bench)
	wrk iproute2
	# test_jobs steps the server's wall clock with libfaketime
	faketime
	# PostgreSQL (issue 14): the client library, and the server binaries
	# that tests start themselves (tests/testutil_pg.c, tests/pg.sh).
	# Nothing here starts a server: `make run` stays on SQLite.
	postgresql-15 libpq-dev
	# the shell tests read and change stored rows with the sqlite3 shell
	sqlite3
	# test_metrics checks a live /metrics scrape with promtool
	prometheus
)
for extra in "$@"; do
	case $extra in
	# clang's libFuzzer runtime is only a Recommends of clang, which
	# --no-install-recommends skips.
	fuzz) pkgs+=(clang libclang-rt-dev) ;;
	valgrind) pkgs+=(valgrind) ;;
	# make bench only: the seed's stack it measures beside the bridge
	# (tests/bench/bench.sh, ../shared/peer).
	bench) pkgs+=(python3-flask python3-sqlalchemy python3-redis python3-rq gunicorn) ;;
	*) echo "deps: unknown extra '$extra' (fuzz, valgrind, bench)" >&2; exit 2 ;;
	esac
done
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "deps: missing packages; run:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
