#!/usr/bin/env bash
# bench/nat/run.sh [BUILD_DIR]: transport-udp through two NATs with an
# hlcore hub (LAB.md's two homes, tests/lib/netlab.py homes_lab()): per NAT
# combination (service home / client home: cone/cone, cone/symmetric,
# symmetric/cone, symmetric/symmetric), TRIALS (20) fresh clients each
# fetch the service's URL with only hubs: configured. Prints connection
# success, direct-path and relayed rates (router counters), median and worst time to
# first byte. Root only (network namespaces). See bench/README.md, "NAT".
#
# BUILD_DIR: an existing build with hlcore and plugins/ (e.g. build);
# without it, a Release build is made in bench/nat/build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lab.sh"
RUNS=${TRIALS:-20} lab_bench nat transport-udp.so "${1:-$here/build}" ip iptables-legacy curl python3 cmake turnserver
