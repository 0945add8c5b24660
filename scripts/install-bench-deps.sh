#!/usr/bin/env bash
# Installs what `make bench` needs on top of scripts/install-deps.sh, and only what is missing:
# bpftrace (the peer the probes are measured against), iperf3 and nftables (the load and the loss).
set -euo pipefail

bench_pkgs=(bpftrace iperf3 nftables bpftool)

missing=()
for p in "${bench_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-bench-deps: missing packages: ${missing[*]}; run as root (sudo make bench) to install them" >&2
  exit 2
fi
echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
