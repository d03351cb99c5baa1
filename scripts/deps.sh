#!/usr/bin/env bash
# deps.sh [dev] [cluster] [fuzz] [valgrind] [bench] - installs the Debian packages the project needs
# that are missing (apt-get, when root), or prints the apt-get line to run
# (when not). The named extras are `dev` (the tests and benchmarks),
# `cluster` (make run-cluster), and those for `make fuzz`, `make valgrind` and
# `make bench` (the seed's stack, a Python peer) only,
# so `make test` does not pull in a second compiler.
set -eu
# What building and running need: `make deps`, `make run`, `make install`.
pkgs=(
	build-essential cmake pkg-config
	libprotobuf-c-dev protobuf-c-compiler
	libnng-dev libsqlite3-dev libhiredis-dev libcivetweb-dev
	libssl-dev libjansson-dev
	# the worker's postbacks to editors (HTTP POST, OpenSSL's TLS)
	libcurl4-openssl-dev
	# the PostgreSQL backend is linked in (libpq); its server is not
	# needed to run on SQLite
	libpq-dev
	redis-server
	# run.sh waits for the bridge's /readyz before it says "started"
	curl
)
# `dev`: what the tests and benchmarks add (`make deps-dev`, and every
# target that builds the tests: make test, bench, valgrind, soak).
dev=(
	libcmocka-dev
	# for the README's wire example and its test
	protobuf-compiler nng-utils
	# test_clock_skew and test_jobs: processes whose wall clocks are off
	faketime
	# for the benchmarks (make bench)
	wrk iproute2
	# PostgreSQL's server binaries, which the tests start themselves
	# (tests/testutil_pg.c, tests/pg.sh)
	postgresql-15
	# the shell tests read and change stored rows with the sqlite3 shell
	sqlite3
	# test_metrics checks a live /metrics scrape with promtool
	prometheus
	# test_install checks the systemd units with systemd-analyze verify
	systemd
	# shell tests read JSON answers (jq) and compute signatures and
	# validate answers with code that is not ours (python3)
	jq python3
	# test_openapi checks live answers against /openapi.json with
	# jsonschema; test_openapi_lint runs Redocly CLI through npx
	python3-jsonschema nodejs
)
# npm (npx) unless Node.js came with its own, as NodeSource's does (its
# nodejs conflicts with Debian's npm).
command -v npx >/dev/null 2>&1 || dev+=(npm)
for extra in "$@"; do
	case $extra in
	# clang's libFuzzer runtime is only a Recommends of clang, which
	# --no-install-recommends skips.
	fuzz) pkgs+=(clang libclang-rt-dev) ;;
	valgrind) pkgs+=(valgrind) ;;
	dev) pkgs+=("${dev[@]}") ;;
	# make run-cluster: a local PostgreSQL server
	cluster) pkgs+=(postgresql-15) ;;
	# make bench only: the seed's stack it measures beside the bridge
	# (tests/bench/bench.sh, ../shared/peer).
	bench) pkgs+=(python3-flask python3-sqlalchemy python3-redis python3-rq gunicorn) ;;
	*) echo "deps: unknown extra '$extra' (dev, cluster, fuzz, valgrind, bench)" >&2; exit 2 ;;
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
