#!/usr/bin/env bash
# bench/quic/run.sh [BUILD_DIR]: transport-udp (QUIC) against transport-tls
# over the same nginx, in a two-namespace veth lab at MTU 1500: bulk MiB/s
# and CPU s/GiB of the pair, keep-alive req/s, first byte of a new tunnel,
# RSS per idle tunnel; then a table with the ratios and issue 10's targets.
# Root only (network namespaces). Knobs: BULK_MIB (512), BULK_RUNS (3),
# WRK_SECONDS (10), WRK_CONNS (32), FB_RUNS (51), IDLE_CONNS (1000),
# BENCH_PARTS ("bulk rps fb idle"), LOSS (e.g. 1%: packet loss each way;
# needs ethtool and iptables-legacy), KINDS (quic or tls: one path only).
# See bench/README.md, "QUIC".
#
# BUILD_DIR: an existing build with hlcore and plugins/ (e.g. build);
# without it, a Release build is made in bench/quic/build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lab.sh"
lab_bench quic transport-udp.so "${1:-$here/build}" ip curl wrk nginx python3 cmake
