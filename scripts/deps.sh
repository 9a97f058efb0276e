#!/usr/bin/env bash
# deps.sh [build|test|bench]...: install the Debian packages a step needs,
# or, when not root, print the exact apt-get line to run.
set -euo pipefail

build=(build-essential cmake pkg-config libevent-dev libyaml-dev libssl-dev
	libsodium-dev libjansson-dev python3 curl openssl
	libminiupnpc-dev libnatpmp-dev libmicrohttpd-dev libqrencode-dev
	libopendht-c-dev libnice-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev
	libgnutls28-dev)
test=(clang libclang-rt-14-dev clang-format iproute2 procps
	iptables miniupnpd-iptables miniupnpc yggdrasil chromium nodejs npm
	dhtnode openssh-server openssh-client netcat-openbsd coturn
	python3-cryptography)
bench=(nginx-light stunnel4 wrk ethtool iptables)

want=()
for step in "$@"; do
	case "$step" in
	build) want+=("${build[@]}") ;;
	test) want+=("${build[@]}" "${test[@]}") ;;
	bench) want+=("${build[@]}" "${bench[@]}") ;;
	*) echo "deps.sh: unknown step $step" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	# Installed, or provided by what is (npm comes with NodeSource's nodejs).
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" &&
		! dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
		grep -E "ok installed\|(.*, )?$p( \(|,|\$)" >/dev/null; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "Missing Debian packages. Run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
