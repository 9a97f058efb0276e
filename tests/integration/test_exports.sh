#!/bin/bash
# Every plugin exports one symbol, the descriptor `hardline_plugin`, and
# nothing else (plugin.h: "A plugin is a shared object that exports exactly
# one data symbol"): a helper left global in one plugin could bind to a
# plugin's or a library's function of the same name, or pin an ABI nobody
# meant. Checked with `nm -D --defined-only` on every built plugin
# (<build>/plugins/*.so) and on the ABI fixtures that are meant to load
# (good, frozen-1-0, mutable); the broken fixtures are broken on purpose.
#
# Env (set by ctest): HL_BUILD_DIR. Exit 77 (skip) without nm.
set -euo pipefail

: "${HL_BUILD_DIR:?set HL_BUILD_DIR to the build tree}"
command -v nm >/dev/null || {
	echo "SKIP: nm is not installed"
	exit 77
}

GOOD_FIXTURES="good frozen-1-0 mutable"

sos=()
for so in "$HL_BUILD_DIR"/plugins/*.so; do
	[ -e "$so" ] && sos+=("$so")
done
[ "${#sos[@]}" -gt 0 ] || {
	echo "FAIL: no plugin in $HL_BUILD_DIR/plugins/ (build first)" >&2
	exit 1
}
for f in $GOOD_FIXTURES; do
	so=$HL_BUILD_DIR/tests/abi/$f.so
	[ -e "$so" ] || {
		echo "FAIL: no ABI fixture $so (build first)" >&2
		exit 1
	}
	sos+=("$so")
done

# The global symbols a .so defines, one a line. Left out: what the
# toolchain itself adds, not the plugin's code: _init, _fini, the linker's
# end markers, and the bounds of the coverage sections that the linker
# defines in a -DHL_FUZZ=ON build (__start___sancov_cntrs and the like).
exports() {
	nm -D --defined-only "$1" | awk '
		$2 ~ /^[A-Z]$/ && $3 !~ /^(_init|_fini|_edata|_end|__bss_start)$/ &&
		$3 !~ /^__(start|stop)___sancov_/ { print $3 }'
}

bad=0
for so in "${sos[@]}"; do
	syms=$(exports "$so") || {
		echo "FAIL: nm -D cannot read $so" >&2
		bad=1
		continue
	}
	extra=$(printf '%s\n' "$syms" | grep -vx 'hardline_plugin' | grep -v '^$' || true)
	if [ -n "$extra" ]; then
		echo "FAIL: $so exports more than hardline_plugin:" >&2
		printf '%s\n' "$extra" | sed 's/^/  /' >&2
		bad=1
	elif ! printf '%s\n' "$syms" | grep -qx 'hardline_plugin'; then
		echo "FAIL: $so does not export hardline_plugin" >&2
		bad=1
	else
		echo "ok: $so exports only hardline_plugin"
	fi
done
if [ "$bad" -ne 0 ]; then
	echo "FAIL: build plugins with hardline_add_plugin() (hidden visibility) and make their helpers static" >&2
	exit 1
fi
echo "PASS: ${#sos[@]} plugins export only hardline_plugin"
