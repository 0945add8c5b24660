#!/usr/bin/env bash
# The kernel matrix: boots each kernel of kernels.txt under qemu (TCG: no KVM here) from an
# initramfs holding the built netwatch, the kernel tests and nft, and runs there the kernel tests
# below, for every attach variant and transport, plus `netwatch doctor`. Prints a table
# (kernel x variant x transport: result, wall time) and "N passed, M failed"; exits non-zero on
# any failure. Usage: run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
cache=${NETWATCH_CACHE:-/var/cache/netwatch}/kernels
# What each kernel must pass: exact connect/accept/refused/ETIMEDOUT counts, retransmits against
# tcpi_total_retrans under nftables loss, RTT samples and close summaries against TCP_INFO,
# SIGTERM leaving nothing loaded, cgroup ids for pod labels, and the agent end to end; the segments
# of failed connects, closes before the handshake, the RTT histogram against TCP_INFO and the
# owners of inbound connections. Left to the host: the timing claim that reports ride on RTT
# samples (its bound is about wall time, which TCG stretches; the count it ends with is exact in
# the report tests kept here).
tests=${NW_MATRIX_TESTS:-'ConnectTest.*:FailedConnectSegmentsTest.*:ClosedBeforeEstablishedTest.*:RttHistogramTest.*:InboundOwnerTest.*:RetransmitTest.*:RetransmitReportTest.*:RttTest.*:SignalCleanupTest.sigterm*:PodLabels.*:CliTraceTest.json*:AgentE2E.*-RetransmitReportTest.retransmissions_ride_on_rtt_samples*'}
boot_timeout=${NW_MATRIX_TIMEOUT:-600}

kernels=$("$here/fetch.sh" "$cache")
work=$(mktemp -d /tmp/nw-matrix.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- the initramfs part every kernel shares: binaries at the paths the tests were built with ----
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,modules}
cp /bin/busybox "$root/bin/busybox"
add() {  # a file at its own path, and the libraries it loads
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
  ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
    [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
  done
}
add "$build/netwatch"
add "$build/tests/netwatch_kernel_tests"
# nft makes the loss; nstat, ss and bpftool read the kernel's own counts; promtool lints /metrics.
for tool in nft nstat ss bpftool promtool; do add "$(command -v "$tool")"; done
strip "$root$build/netwatch" "$root$build/tests/netwatch_kernel_tests"
ln -s "$build/netwatch" "$root/usr/bin/netwatch"
ln -s "$build/tests/netwatch_kernel_tests" "$root/usr/bin/netwatch_kernel_tests"
cp "$here/init" "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
cp /etc/protocols /etc/services "$root/etc/"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) > "$work/common.cpio"

results=$work/results
: > "$results"
failed_kernels=0
while read -r series release dir; do
  # The kernel's own modules, appended as a second archive.
  rm -rf "$work/mods" && mkdir -p "$work/mods/modules"
  cp "$dir/modules/"* "$work/mods/modules/"
  (cd "$work/mods" && find . | busybox cpio -o -H newc 2>/dev/null) | cat "$work/common.cpio" - > "$work/initrd"
  log=$work/$release.log
  start=$(date +%s)
  timeout "$boot_timeout" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 -nographic \
    -no-reboot -kernel "$dir/vmlinuz" -initrd "$work/initrd" \
    -append "console=ttyS0 quiet panic=-1 nw.filter=$tests" < /dev/null > "$log" 2>&1 || true
  secs=$(( $(date +%s) - start ))
  tr -d '\r' < "$log" > "$log.txt"
  mkdir -p "$build/kernel-matrix" && cp "$log.txt" "$build/kernel-matrix/$release.log"
  echo "== $release: ${secs}s (console log: $build/kernel-matrix/$release.log)"
  sed -n '/^nw-matrix: kernel/,/^nw-matrix: doctor/p' "$log.txt"
  grep -E '^\[ +(FAILED|OK) +\]|^nw-matrix: tests' "$log.txt" | grep -v 'listed below' || true
  # One line per combination: release variant_transport passed failed ms.
  awk -v r="$release" '
    /^\[       OK \]|^\[  FAILED  \]/ && /\([0-9]+ ms\)/ {
      # The agent end-to-end tests run `netwatch agent` with its automatic choice.
      c = "auto_auto"
      if (match($0, /(tp_btf|tracepoint)_(ringbuf|perfbuf)/)) c = substr($0, RSTART, RLENGTH)
      match($0, /\([0-9]+ ms\)/); ms = substr($0, RSTART + 1, RLENGTH - 5)
      if ($0 ~ /OK/) ok[c]++; else bad[c]++; t[c] += ms; seen[c] = 1 }
    END { for (c in seen) print r, c, ok[c] + 0, bad[c] + 0, t[c] }' "$log.txt" >> "$results"
  if ! grep -q '^nw-matrix: tests rc=0' "$log.txt" || ! grep -q '^nw-matrix: doctor rc=0' "$log.txt"; then
    failed_kernels=$((failed_kernels + 1))
    grep -q '^nw-matrix: tests rc=' "$log.txt" || echo "   $release: the tests did not finish (boot or timeout); see the log"
  fi
done <<< "$kernels"

echo
printf '%-28s %-11s %-9s %-16s %s\n' kernel variant transport result "wall time"
sort "$results" | while read -r release combo ok bad ms; do
  printf '%-28s %-11s %-9s %-16s %ss\n' "$release" "${combo%_*}" "${combo##*_}" \
    "$([ "$bad" = 0 ] && echo "pass ($ok)" || echo "FAIL ($bad of $((ok + bad)))")" "$(awk -v m="$ms" 'BEGIN {printf "%.1f", m / 1000}')"
done
passed=$(awk '{s += $3} END {print s + 0}' "$results")
failed=$(awk '{s += $4} END {print s + 0}' "$results")
echo "kernels: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$failed_kernels" = 0 ]
