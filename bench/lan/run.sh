#!/usr/bin/env bash
# bench/lan/run.sh [BUILD_DIR]: time to first byte for a LAN service the
# client has never heard of (discovery-lan), median of RUNS fresh clients
# (default 15), in a namespace lab; the same through a peers: entry for
# comparison. Root only (network namespaces). See bench/lan/README.md.
#
# BUILD_DIR: an existing build with hlcore and plugins/ (e.g. build);
# without it, a Release build is made in bench/lan/build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$here/build}
RUNS=${RUNS:-15}

[ "$(id -u)" -eq 0 ] || { echo "bench/lan: needs root (network namespaces)" >&2; exit 2; }
for t in ip curl python3 cmake; do
	command -v "$t" >/dev/null || { echo "bench/lan: $t is missing" >&2; exit 2; }
done
if [ ! -x "$build/hlcore" ] || [ ! -f "$build/plugins/discovery-lan.so" ]; then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF >/dev/null
	cmake --build "$build" -j"$(nproc)" >/dev/null
fi
exec timeout 600 python3 "$here/bench.py" "$build/hlcore" "$RUNS"
