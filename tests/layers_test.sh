#!/usr/bin/env bash
# layers_test.sh SRC LAYER... - test_layers: the tree keeps the layer
# rules (layers.sh), and layers.sh does see a break of them: copies of the
# tree with an upward include, an include from lib/ and a circle inside
# one layer must each fail, naming what is wrong.
set -u
SRC=${1:?}
shift
layers=("$@")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/affiliate-layers-XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$here/tap.sh"

out=$(bash "$here/layers.sh" "$SRC" "${layers[@]}" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] && ok "the tree: no upward include, no circle" ||
	not_ok "the tree breaks the layer rules"

fresh() { rm -rf "$work/t" && mkdir -p "$work/t" &&
	cp -r "$SRC/services" "$SRC/lib" "$work/t/"; }
# inject FILE LINE: LINE goes before the first #include of the copy's FILE.
inject() {
	sed -i "0,/^#include/s//${2//\//\\/}\n#include/" "$work/t/$1"
	grep -qF "$2" "$work/t/$1"
}
# refused NAME PATTERN: the copy fails the check, saying PATTERN.
refused() {
	out=$(bash "$here/layers.sh" "$work/t" "${layers[@]}" 2>&1)
	if [ $? -ne 0 ] && grep -q "$2" <<<"$out"; then
		ok "$1 is refused"
	else
		not_ok "$1 passed the check: $out"
	fi
}

fresh && inject services/store/store.h '#include "rpc.h"' &&
	refused "store including rpc.h" 'store.h (layer store) includes rpc.h'
fresh && inject services/policy/auth.c '#include "rpc.h"' &&
	refused "policy including rpc.h (the old auth/rpc circle)" \
		'auth.c (layer policy) includes rpc.h of layer rpc'
fresh && inject services/rpc/rpc.h '#include "auth.h"' &&
	refused "rpc including auth.h" 'rpc.h (layer rpc) includes auth.h'
fresh && inject lib/aff_util.h '#include "store.h"' &&
	refused "lib including store.h" "includes store.h of the server's layer"
fresh && inject services/cache/lcache.h '#include "cache.h"' &&
	inject services/cache/cache.h '#include "lcache.h"' &&
	refused "a circle inside the cache layer" 'include circle'
tap_done
