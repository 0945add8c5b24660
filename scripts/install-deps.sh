#!/usr/bin/env bash
# Installs the Debian packages netwatch needs to build, run and test, and only the missing ones.
# Shared by `make`, CI (.ci/run) and the Dockerfile so the three cannot drift apart.
set -euo pipefail

# protoc, libprotobuf and Prometheus's metrics.proto (the Go package installs the .proto): the
# protobuf exposition, which is how a Prometheus scrapes native histograms.
build_pkgs=(
  build-essential cmake ninja-build pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  prometheus-cpp-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libcap-dev libssl-dev
  libmicrohttpd-dev libgnutls28-dev
  protobuf-compiler libprotobuf-dev golang-github-prometheus-client-model-dev
)
# Tests and benchmarks (make test runs every benchmark's smoke mode): GoogleTest, GMock and Google
# Benchmark build them (cmake -DNETWATCH_TESTS=ON, which the Makefile passes); bpftrace is the peer the
# probes are measured against, wrk loads /metrics, valgrind's callgrind counts instructions.
# libclang-rt-14-dev holds libFuzzer and clang's sanitizer runtimes: clang only recommends it, and
# recommends are not installed.
test_pkgs=(libgtest-dev libgmock-dev libbenchmark-dev iproute2 nftables iperf3 curl tmux prometheus python3 python3-yaml nodejs unzip openssl bpftrace wrk valgrind
  libclang-rt-14-dev)
# The HTTP hardening test (tests/e2e/http_hardening_test.cpp): slow headers, body and read.
test_pkgs+=(slowhttptest)
# The kernel matrix (tests/kernels): Debian's kernels booted under qemu from an initramfs.
test_pkgs+=(qemu-system-x86 busybox-static kmod)
# The container test (tests/container/) and `make image`: podman runs the chart's pod with runc
# (podman's default crun refuses hybrid cgroup hosts); catatonit is the infra ("pause") container
# podman builds locally, since no registry is reachable; mmdebstrap makes the bookworm base image
# from Debian's packages; iptables and the CNI plugins are podman's bridge network. setpriv
# (util-linux) and capsh (libcap2-bin) start the agent with exactly the chart's capabilities.
test_pkgs+=(podman runc catatonit containernetworking-plugins iptables mmdebstrap libcap2-bin util-linux)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--build-only" ] || want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make ...) to install them" >&2
  exit 2
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
