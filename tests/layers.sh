#!/usr/bin/env bash
# layers.sh SRC LAYER... - the include rules of the server's layers (see
# README, ARCHITECTURE), checked on the sources: fails on
#  - an upward include: a file of a layer including a header of a layer
#    that is not below it (the layers it may use, and theirs, as
#    services/CMakeLists.txt declares them);
#  - any include of a services/ header from lib/, bridge/, worker/ or cli/
#    (those are below or beside the server, never above it);
#  - an include circle among the headers of services/ and lib/.
# Each LAYER is NAME:DIR:DEP,DEP (DIR under services/). The files at the
# top of services/ are the composition root, which may include anything.
#
# The build already refuses most of these (each layer's include path holds
# only its own folder and those below), but a header reached through a
# relative path or a path added later would slip through; this reads the
# #include lines themselves.
set -u
SRC=${1:?usage: layers.sh SRC NAME:DIR:DEPS...}
shift
cd "$SRC" || exit 2

declare -A dir_of deps_of layer_of_header
names=()
for spec in "$@"; do
	IFS=: read -r name dir deps <<<"$spec"
	names+=("$name")
	dir_of[$name]=$dir
	deps_of[$name]=${deps//,/ }
done
[ ${#names[@]} -gt 0 ] || { echo "layers: no layers given"; exit 2; }

# The layers name may use: its own, its dependencies and theirs.
closure() {
	local seen=" $1 " todo=($1) n d
	while [ ${#todo[@]} -gt 0 ]; do
		n=${todo[0]}
		todo=("${todo[@]:1}")
		for d in ${deps_of[$n]}; do
			case "$seen" in *" $d "*) continue ;; esac
			seen+="$d "
			todo+=("$d")
		done
	done
	echo "$seen"
}

# Which layer each header of services/ belongs to.
for name in "${names[@]}"; do
	while IFS= read -r h; do
		b=$(basename "$h")
		if [ -n "${layer_of_header[$b]:-}" ]; then
			echo "layers: $b is in two layers (${layer_of_header[$b]}, $name)"
			exit 1
		fi
		layer_of_header[$b]=$name
	done < <(find "services/${dir_of[$name]}" -name '*.h')
done
for h in services/*.h; do
	[ -e "$h" ] && layer_of_header[$(basename "$h")]=server
done

# "FILE INCLUDE" lines (the include's basename) for the quoted includes
# of the .c and .h files under the given folders: one grep for them all.
includes() {
	find "$@" -name '*.[ch]' -print0 |
		xargs -0 -r grep -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' |
		sed 's/^\([^:]*\):.*"\([^"]*\)".*/\1 \2/; s| [^ ]*/\([^/ ]*\)$| \1|'
}

fails=0
for name in "${names[@]}"; do
	allowed=$(closure "$name")
	while read -r f inc; do
		l=${layer_of_header[$inc]:-}
		[ -n "$l" ] || continue
		case "$allowed" in *" $l "*) continue ;; esac
		echo "layers: $f (layer $name) includes $inc of layer $l," \
			"which is not below it"
		fails=$((fails + 1))
	done < <(includes "services/${dir_of[$name]}")
done
for top in lib bridge worker cli; do
	[ -d "$top" ] || continue
	while read -r f inc; do
		l=${layer_of_header[$inc]:-}
		[ -n "$l" ] || continue
		echo "layers: $f ($top/) includes $inc of the server's layer $l"
		fails=$((fails + 1))
	done < <(includes "$top")
done

# Circles: every header-to-header include as an edge, for tsort.
declare -A known
while IFS= read -r h; do known[$(basename "$h")]=1; done \
	< <(find services lib -name '*.h')
edges=$(for h in "${!known[@]}"; do echo "$h $h"; done
	includes services lib | while read -r f inc; do
		case "$f" in *.h) ;; *) continue ;; esac
		[ -n "${known[$inc]:-}" ] && echo "${f##*/} $inc"
	done)
if ! out=$(tsort <<<"$edges" 2>&1 >/dev/null) || [ -n "$out" ]; then
	echo "layers: include circle among headers:"
	echo "$out"
	fails=$((fails + 1))
fi

if [ $fails -ne 0 ]; then
	echo "layers: $fails violation(s)"
	exit 1
fi
echo "layers: ${#names[@]} layers, no upward include, no circle"
