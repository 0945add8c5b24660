#!/usr/bin/env bash
# Prints, one per line, the Debian packages that hold the shared libraries BINARY loads, so the
# Dockerfile's runtime stage installs exactly what the build stage linked against and cannot drift
# from CMakeLists.txt. libc6 and libgcc-s1 are left out: every Debian image has them.
# Usage: runtime-packages.sh BINARY
set -euo pipefail
binary=${1:?usage: runtime-packages.sh BINARY}
listing=$(ldd "$binary")  # fails for a missing or static binary

pkgs=()
for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$listing"); do
  real=$(readlink -f "$lib")
  owner=""
  # Debian 12 is usr-merged: dpkg may know a library under /lib or under /usr/lib.
  for path in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    owner=$(dpkg-query -S "$path" 2>/dev/null) && break
    owner=""
  done
  [ -n "$owner" ] || { echo "runtime-packages: no Debian package holds $lib" >&2; exit 1; }
  pkgs+=("${owner%%:*}")
done
printf '%s\n' "${pkgs[@]}" | grep -vxE 'libc6|libgcc-s1' | sort -u
