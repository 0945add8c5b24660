#!/usr/bin/env bash
# Makes the Dockerfile's base image (FROM debian:bookworm-slim) present in podman's local storage,
# so that `podman build --pull=never` works on a machine without a reachable registry:
#   1. already there: nothing to do;
#   2. a registry answers: podman pull;
#   3. otherwise: mmdebstrap a minimal bookworm root from Debian's packages (the same suite and
#      the same path exclusions as the official slim image) and `podman import` it under the
#      name FROM resolves to. The root's tarball is cached in $NETWATCH_CACHE_DIR (default
#      /var/cache/netwatch) and reused until removed.
# Root only (podman's system storage, mmdebstrap's root mode). Prints progress to stderr.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/deploy/podman/containers.conf}
base=docker.io/library/debian:bookworm-slim
cache=${NETWATCH_CACHE_DIR:-/var/cache/netwatch}
tarball=$cache/debian-bookworm-slim.tar
mirror=${NETWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}

podman image exists "$base" && exit 0
if timeout 120 podman pull -q "$base" >/dev/null 2>&1; then
  echo "image-base: pulled $base" >&2
  exit 0
fi
if [ ! -s "$tarball" ]; then
  echo "image-base: no registry answered; making $base with mmdebstrap (cached in $tarball)" >&2
  mkdir -p "$cache"
  # minbase: Essential and apt, like debian:bookworm-slim; the slim image's dpkg exclusions, and
  # force-unsafe-io as Docker's Debian images set it (no fsync per file: a third of the time here).
  # The options stay in the image's /etc/dpkg/dpkg.cfg.d/, so later apt installs follow them too.
  # Merged /usr by directory symlinks, as debootstrap and the official images make it; otherwise
  # mmdebstrap installs the usrmerge package, which brings perl (~46 MB).
  mmdebstrap --quiet --mode=root --format=tar --variant=minbase --dpkgopt=force-unsafe-io \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$cache/partial.tar" "$mirror" >&2
  mv "$cache/partial.tar" "$tarball"
fi
podman import --quiet --change 'CMD ["bash"]' "$tarball" "$base" >/dev/null
echo "image-base: imported $base from $tarball" >&2
