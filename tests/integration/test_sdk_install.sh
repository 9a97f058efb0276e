#!/bin/bash
# The SDK as a third party gets it: install the project into a temporary
# prefix, check that the headers, hardline-plugin.pc and the CMake package
# are there and say what they should, then build tests/sdk-example (an
# out-of-tree transport) against that prefix alone, once with
# find_package(Hardline) + hardline_add_plugin() and once with plain
# pkg-config, and check that it exports only the descriptor.
#
# Env (set by ctest): HL_SOURCE_DIR, HL_BUILD_DIR, HLCORE.
set -euo pipefail

: "${HL_SOURCE_DIR:?set HL_SOURCE_DIR to the source tree}"
HL_BUILD_DIR=${HL_BUILD_DIR:-}
CC=${CC:-cc}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

for tool in cmake pkg-config nm timeout "$CC"; do
	command -v "$tool" >/dev/null || {
		echo "SKIP: $tool is not installed"
		exit 77
	}
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hl-sdk-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# Bounded steps; a failure shows the step's log.
run() {
	local name=$1
	shift
	echo "== $name"
	if ! timeout "$STEP_TIMEOUT" "$@" >"$tmp/$name.log" 2>&1; then
		tail -n 40 "$tmp/$name.log" >&2
		fail "$name: '$*' failed (log above)"
	fi
}

# 1. Configure, build and install the project into the prefix.
run configure cmake -S "$HL_SOURCE_DIR" -B "$tmp/b" \
	-DCMAKE_INSTALL_PREFIX="$prefix" -DHL_TESTS=OFF
run build cmake --build "$tmp/b" -j2
run install cmake --install "$tmp/b"

# 2. The installed SDK.
header=$prefix/include/hardline/plugin.h
[ -f "$header" ] || fail "no $header after install"
cmp -s "$header" "$HL_SOURCE_DIR/core/include/hardline/plugin.h" ||
	fail "$header differs from core/include/hardline/plugin.h"
util=$prefix/include/hardline/util.h
[ -f "$util" ] || fail "no $util (the SDK's helpers) after install"
cmp -s "$util" "$HL_SOURCE_DIR/core/include/hardline/util.h" ||
	fail "$util differs from core/include/hardline/util.h"
# The protocol document the header points a third party at.
doc=$prefix/share/doc/hardline/protocol.md
[ -f "$doc" ] || fail "no $doc after install"
cmp -s "$doc" "$HL_SOURCE_DIR/docs/protocol.md" ||
	fail "$doc differs from docs/protocol.md"
grep -q "share/doc/hardline/protocol.md" "$header" ||
	fail "$header does not say where the protocol document is installed"

pc=$(find "$prefix" -name hardline-plugin.pc -print -quit)
[ -n "$pc" ] || fail "no hardline-plugin.pc under $prefix"
pcdir=$(dirname "$pc")
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

abi_major=$(sed -n 's/^#define HL_ABI_MAJOR \([0-9]*\)$/\1/p' "$header")
abi_minor=$(sed -n 's/^#define HL_ABI_MINOR \([0-9]*\)$/\1/p' "$header")
if [ -z "$abi_major" ] || [ -z "$abi_minor" ]; then
	fail "cannot read HL_ABI_MAJOR/HL_ABI_MINOR from $header"
fi
version=$(pkg-config --modversion hardline-plugin) ||
	fail "pkg-config --modversion hardline-plugin failed"
[ "$version" = "$abi_major.$abi_minor" ] ||
	fail "hardline-plugin.pc says Version $version, the header's ABI is $abi_major.$abi_minor"
echo "hardline-plugin version $version"

plugindir=$(pkg-config --variable=plugindir hardline-plugin) ||
	fail "pkg-config --variable=plugindir hardline-plugin failed"
case $plugindir in
"$prefix"/*) ;;
*) fail "plugindir is '$plugindir', expected a directory under $prefix" ;;
esac
if [ -d "$HL_SOURCE_DIR/plugins/transport-tls" ] &&
	[ ! -f "$plugindir/transport-tls.so" ]; then
	fail "plugindir $plugindir does not hold the installed transport-tls.so"
fi
echo "plugindir $plugindir"

cflags=$(pkg-config --cflags hardline-plugin) ||
	fail "pkg-config --cflags hardline-plugin failed"
case " $cflags " in
*" -I$prefix/include "*) ;;
*) fail "pkg-config --cflags hardline-plugin gives '$cflags', without -I$prefix/include" ;;
esac

cmake_config=$(find "$prefix" -name HardlineConfig.cmake -print -quit)
[ -n "$cmake_config" ] || fail "no HardlineConfig.cmake under $prefix"
[ -f "$(dirname "$cmake_config")/HardlinePlugin.cmake" ] ||
	fail "HardlinePlugin.cmake is not installed beside $cmake_config"

# 3. The example plugin, against the installed SDK only (no path into the
# source or build tree).
example=$HL_SOURCE_DIR/tests/sdk-example
run example-configure cmake -S "$example" -B "$tmp/ex" \
	-DCMAKE_PREFIX_PATH="$prefix"
run example-build cmake --build "$tmp/ex" -j2
so=$tmp/ex/transport-example.so
[ -f "$so" ] || fail "the example build made no $so"
if grep -rq -- "$HL_SOURCE_DIR/core" "$tmp/ex/CMakeFiles" 2>/dev/null; then
	fail "the example build used headers from the source tree"
fi

# Only the descriptor is exported.
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ && $3 != "_init" && $3 != "_fini" { print $3 }')
[ "$exported" = "hardline_plugin" ] ||
	fail "$so exports '${exported//$'\n'/ }', expected only hardline_plugin"

# The same source with plain pkg-config, as a Makefile would.
# shellcheck disable=SC2046
run example-pkgconfig "$CC" -std=c11 -Wall -Wextra -Werror -shared -fPIC \
	-fvisibility=hidden $(pkg-config --cflags hardline-plugin libevent_openssl) \
	"$example/transport-example.c" -o "$tmp/pc-transport-example.so" \
	$(pkg-config --libs hardline-plugin libevent_openssl)
nm -D --defined-only "$tmp/pc-transport-example.so" | grep -q ' hardline_plugin$' ||
	fail "the pkg-config build does not export hardline_plugin"

# 4. The installed hlcore routes a real tunnel through the example plugin
# alone: a serving node and a browsing node, both with only
# transport-example.so in their plugin_dir, and a real HTTP backend.
hlcore=$prefix/bin/hlcore
[ -x "$hlcore" ] || fail "no $hlcore after install"
command -v python3 >/dev/null && command -v curl >/dev/null || {
	echo "SKIP: the routing step needs python3 and curl"
	exit 77
}
mkdir -p "$tmp/pd" "$tmp/site" "$tmp/srv" "$tmp/cli"
cp "$so" "$tmp/pd/"
echo "tunnelled through transport-example" >"$tmp/site/index.html"
read -r p_backend p_tunnel p_proxy < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
python3 -m http.server "$p_backend" --bind 127.0.0.1 --directory "$tmp/site" \
	>"$tmp/backend.log" 2>&1 &
pids+=($!)
cat >"$tmp/srv/hl.yaml" <<EOC
state_dir: $tmp/srv/state
proxy: { listen: "off" }
plugin_dir: $tmp/pd
plugins:
  transport-example: { listen: "127.0.0.1:$p_tunnel" }
services:
  site: { target: "127.0.0.1:$p_backend", password: none }
EOC
url=$("$hlcore" -c "$tmp/srv/hl.yaml" url site) || fail "hlcore url failed"
hash=${url#http://-}
hash=${hash%%.*}
cat >"$tmp/cli/hl.yaml" <<EOC
state_dir: $tmp/cli/state
proxy: { listen: "127.0.0.1:$p_proxy" }
plugin_dir: $tmp/pd
plugins:
  transport-example: {}
peers:
  $hash: ["127.0.0.1:$p_tunnel"]
EOC
"$hlcore" -c "$tmp/srv/hl.yaml" >"$tmp/srv.log" 2>&1 &
pids+=($!)
"$hlcore" -c "$tmp/cli/hl.yaml" >"$tmp/cli.log" 2>&1 &
pids+=($!)
page=
for _ in $(seq 1 50); do
	page=$(curl -fsS --max-time 5 -H "Host: -$hash.localhost:$p_proxy" \
		"http://127.0.0.1:$p_proxy/" 2>/dev/null) && break
	sleep 0.2
done
if [ "$page" != "tunnelled through transport-example" ]; then
	tail -n 20 "$tmp/srv.log" "$tmp/cli.log" >&2
	fail "no page through transport-example (got '$page')"
fi
grep -q "transport-example" "$tmp/cli.log" ||
	fail "the browsing node's log does not show transport-example loaded"
echo "PASS: SDK installed (ABI $version); an out-of-tree transport built against it carries a real tunnel"
