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
. "$here/../lab.sh"
lab_bench dht dht.so "${1:-$here/build}" ip curl python3 cmake dhtnode
