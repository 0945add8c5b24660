#!/usr/bin/env bash
# Downloads and unpacks the kernels of kernels.txt into CACHE (default /var/cache/netwatch/kernels),
# once per machine: Debian's cloud kernel packages, fetched through a private apt configuration
# (the system's sources are left alone). For each kernel CACHE/<release>/ holds vmlinuz, the
# modules the tests load (modules/, in load order in modules/order) and the package's config.
# Prints one line per kernel: "<series> <release> <dir>".
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${NETWATCH_CACHE:-/var/cache/netwatch}/kernels}
# nftables for the loss tests: nf_tables and numgen (and whatever modprobe says they need).
modules=(nf_tables nft_numgen nft_counter)

mkdir -p "$cache/apt/lists/partial" "$cache/apt/archives/partial" "$cache/debs"
sources=$cache/apt/sources.list
: > "$sources"
while read -r series suite; do
  case "$series" in ''|'#'*) continue ;; esac
  for repo in "debian $suite" "debian-security $suite-security"; do
    set -- $repo
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/$1 $2 main" >> "$sources"
  done
done < "$here/kernels.txt"
apt_opts=(-o Dir::Etc::SourceList="$sources" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$cache/apt/lists"
  -o Dir::Cache="$cache/apt" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root -o Debug::NoLocking=1)
# A series already unpacked is used as it is (set NETWATCH_REFRESH_KERNELS=1 for the newest);
# apt is asked only for the missing ones.
# (unpacked with today's module list: a changed list unpacks again)
cached() {
  { grep -lx "${modules[*]}" "$cache/$1".*/modules/wanted 2>/dev/null || true; } | sort -V | tail -1 |
    xargs -r dirname | xargs -r dirname
}
online=0
while read -r series suite; do
  case "$series" in ''|'#'*) continue ;; esac
  [ -z "$(cached "$series")" ] || [ -n "${NETWATCH_REFRESH_KERNELS:-}" ] && online=1
done < "$here/kernels.txt"
[ $online = 0 ] || apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 || online=0

while read -r series suite; do
  case "$series" in ''|'#'*) continue ;; esac
  pkg=""
  dir=$(cached "$series")
  if [ $online = 1 ] && { [ -z "$dir" ] || [ -n "${NETWATCH_REFRESH_KERNELS:-}" ]; }; then
    # The metapackage's versions in every suite; its Depends names the image of that version.
    pkg=$(apt-cache "${apt_opts[@]}" show linux-image-cloud-amd64 2>/dev/null |
      awk -v s="$series." '/^Version:/ {v=$2} /^Depends:/ && index(v, s) == 1 {print v, $2}' |
      sort -V | tail -1 | awk '{print $2}')
  fi
  if [ -z "$pkg" ]; then
    [ -n "$dir" ] || { echo "fetch.sh: no $series kernel is cached and apt cannot resolve one" >&2; exit 1; }
    echo "$series $(basename "$dir") $dir"
    continue
  fi
  release=${pkg#linux-image-}
  dir=$cache/$release
  if [ "$(cat "$dir/modules/wanted" 2>/dev/null)" != "${modules[*]}" ]; then
    rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp/root"
    (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg" >/dev/null)
    dpkg-deb -x "$cache/debs/${pkg}"_*.deb "$dir.tmp/root"
    root=$dir.tmp/root
    [ -d "$root/lib/modules/$release" ] || root=$root/usr  # merged /usr (trixie)
    depmod -b "$root" "$release"
    mkdir -p "$dir.tmp/modules"
    # A module merged into another in this release (nft_counter into nf_tables) is not found: skipped.
    for m in "${modules[@]}"; do modprobe -d "$root" -S "$release" --show-depends "$m" 2>/dev/null || true; done |
      awk '$1 == "insmod" {print $2}' |
      while read -r ko; do
        name=$(basename "${ko%.xz}")
        case "$ko" in *.xz) xz -dc "$ko" > "$dir.tmp/modules/$name" ;; *) cp "$ko" "$dir.tmp/modules/$name" ;; esac
        grep -qx "$name" "$dir.tmp/modules/order" 2>/dev/null || echo "$name" >> "$dir.tmp/modules/order"
      done
    echo "${modules[*]}" > "$dir.tmp/modules/wanted"
    cp "$dir.tmp/root/boot/vmlinuz-$release" "$dir.tmp/vmlinuz"
    cp "$dir.tmp/root/boot/config-$release" "$dir.tmp/config"
    rm -rf "$dir.tmp/root" "$cache/debs/${pkg}"_*.deb
    mv "$dir.tmp" "$dir"
  fi
  echo "$series $release $dir"
done < "$here/kernels.txt"
