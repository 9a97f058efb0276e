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
. "$here/../lab.sh"
lab_bench lan discovery-lan.so "${1:-$here/build}" ip curl python3 cmake
