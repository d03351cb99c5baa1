#!/usr/bin/env bash
# deps.sh - installs the Debian packages the project needs that are missing
# (apt-get, when root), or prints the apt-get line to run (when not).
set -eu
pkgs=(
	build-essential cmake pkg-config
	libprotobuf-c-dev protobuf-c-compiler
	libnng-dev libsqlite3-dev libhiredis-dev libcivetweb-dev
	libssl-dev libjansson-dev libcmocka-dev
	redis-server
	# for the README's wire example and its test
	protobuf-compiler nng-utils
	# for the benchmarks (make bench)
	wrk iproute2
)
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
