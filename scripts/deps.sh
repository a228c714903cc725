#!/usr/bin/env bash
# Installs the Debian packages xring needs to build and test, if any is missing.
set -euo pipefail

PKGS=(
	build-essential cmake pkg-config clang llvm lld libclang-rt-14-dev
	liburing-dev libcriterion-dev
	libnl-3-dev libnl-route-3-dev libxdp-dev libbpf-dev libibverbs-dev rdma-core libpcap-dev
	dpdk-dev tshark iproute2 ethtool socat iperf3 sockperf python3
	man-db groff-base
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
