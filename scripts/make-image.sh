#!/usr/bin/env bash
# Builds the agent image with podman: `make image`, and tests/container.
#   make-image.sh [TAG]                    the Dockerfile as it is (build stage compiles in the image)
#   make-image.sh --from-build DIR [TAG]   only the Dockerfile's runtime stage, around DIR/netwatch
#                                          stripped (the host is Debian 12 like the image: the same
#                                          libraries), for tests that already built the binary
# TAG defaults to netwatch:<the chart's appVersion>, the image the chart names. The base comes from
# scripts/image-base.sh (pulled, or made with mmdebstrap when no registry answers); builds run with
# --pull=never and podman's layer cache (podman's storage), so an unchanged step is not redone.
# Prints the size the image adds on top of its base last. Root only.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/deploy/podman/containers.conf}
from_build=""
if [ "${1:-}" = "--from-build" ]; then
  from_build=$(cd "${2:?--from-build needs a build directory}" && pwd)
  shift 2
fi
version=$(awk -F'"' '/^appVersion:/ { print $2 }' "$repo/helm/netwatch/Chart.yaml")
tag=${1:-netwatch:$version}

"$repo/scripts/image-base.sh"
build=(podman build --pull=never --layers --ulimit nofile=10000:10000 --ulimit nproc=1000:1000 --quiet -t "$tag")
if [ -n "$from_build" ]; then
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  strip --strip-all -o "$ctx/netwatch" "$from_build/netwatch"
  touch -r "$from_build/netwatch" "$ctx/netwatch"
  "$repo/deploy/docker/runtime-packages.sh" "$ctx/netwatch" >"$ctx/runtime-packages.txt"
  # The Dockerfile's runtime stage, its two files taken from the context instead of the build stage.
  sed -n '/^# ---- runtime/,$p' "$repo/Dockerfile" | sed 's#^COPY --from=build /src/build/#COPY #' >"$ctx/Containerfile"
  grep -q '^COPY netwatch ' "$ctx/Containerfile" || { echo "make-image: the Dockerfile's runtime stage changed shape" >&2; exit 1; }
  "${build[@]}" -f "$ctx/Containerfile" "$ctx" >/dev/null
else
  "${build[@]}" -f "$repo/Dockerfile" "$repo" >/dev/null
fi
size() { podman image inspect --format '{{.Size}}' "$1"; }
added=$(($(size "$tag") - $(size docker.io/library/debian:bookworm-slim)))
echo "make-image: $tag adds $((added / 1000000)) MB ($added bytes) to debian:bookworm-slim"
