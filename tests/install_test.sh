#!/bin/bash
# test_install: `cmake --install` (what `make install` runs) into a DESTDIR,
# then systemd-analyze verify on the installed units: syntax, known options,
# and that each ExecStart binary exists (under --root=DESTDIR).
# usage: install_test.sh BUILD_DIR
set -u
build=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
# The prefix the build was configured with: the units' paths follow it.
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ -n "$prefix" ] || fail "no CMAKE_INSTALL_PREFIX in $build/CMakeCache.txt"
DESTDIR=$tmp cmake --install "$build" >"$tmp.log" 2>&1 || { cat "$tmp.log"; fail "cmake --install"; }
rm -f "$tmp.log"
p=$tmp$prefix
for f in bin/affiliate-server bin/affiliate-bridge bin/affiliate-worker bin/affiliate \
	 lib/systemd/system/affiliate-server.service lib/systemd/system/affiliate-bridge.service \
	 "lib/systemd/system/affiliate-worker@.service" lib/sysusers.d/affiliate.conf; do
	[ -e "$p/$f" ] || fail "$prefix/$f not installed"
done
[ -n "$(find "$tmp" -name affiliate.env.example)" ] || fail "no affiliate.env.example"
units=$p/lib/systemd/system
grep -qx "ExecStart=$prefix/bin/affiliate-server" "$units/affiliate-server.service" || fail "ExecStart path"
for u in affiliate-server.service affiliate-bridge.service affiliate-worker@.service; do
	for opt in Restart=on-failure User=affiliate ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
		   NoNewPrivileges=yes CapabilityBoundingSet= MemoryDenyWriteExecute=yes \
		   SystemCallFilter=@system-service; do
		grep -qx "$opt" "$units/$u" || fail "$u lacks $opt"
	done
done
# verify checks that each ExecStart binary exists: point the units at the
# DESTDIR copies (--root would also need the host's targets inside it).
mkdir -p "$tmp/verify"
for u in affiliate-server.service affiliate-bridge.service affiliate-worker@.service; do
	sed "s|^ExecStart=$prefix/bin/|ExecStart=$p/bin/|" "$units/$u" >"$tmp/verify/$u"
done
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp"/verify/*.service 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "systemd-analyze verify: $rc"
# An unknown option is only a warning (rc 0): any output is a failure.
[ -z "$out" ] || fail "systemd-analyze verify warned"
echo "install: ok"
