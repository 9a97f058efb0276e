#!/bin/bash
# The SDK as a third party gets it: install the project into a temporary
# prefix, check that the header, hardline-plugin.pc and the CMake package
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

echo "PASS: SDK installed (ABI $version) and an out-of-tree transport built against it"
