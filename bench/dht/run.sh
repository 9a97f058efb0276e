#!/usr/bin/env bash
# bench/dht/run.sh [BUILD_DIR]: time to first byte for a service the client
# finds only through OpenDHT, in the three-node dhtnode lab
# (tests/lib/netlab.py), median of RUNS fresh clients (default 15): with a
# DHT node of the client's own, through an OpenDHT HTTP proxy, and from a
# peers: entry for comparison. Root only (network namespaces). See
# bench/dht/README.md.
#
# BUILD_DIR: an existing build with hlcore and plugins/dht.so (e.g. build);
# without it, a Release build is made in bench/dht/build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$here/build}
RUNS=${RUNS:-15}

[ "$(id -u)" -eq 0 ] || { echo "bench/dht: needs root (network namespaces)" >&2; exit 2; }
for t in ip curl python3 cmake dhtnode; do
	command -v "$t" >/dev/null || { echo "bench/dht: $t is missing (Debian: apt-get install ${t/ip/iproute2})" >&2; exit 2; }
done
if [ ! -x "$build/hlcore" ] || [ ! -f "$build/plugins/dht.so" ]; then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF >/dev/null
	cmake --build "$build" -j"$(nproc)" >/dev/null
fi
exec timeout 600 python3 "$here/bench.py" "$build/hlcore" "$RUNS"
