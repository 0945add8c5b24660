#!/usr/bin/env bash
# The chart's pod run for real: the image built with podman (the Dockerfile's runtime stage around
# this build's binary, scripts/make-image.sh), the chart rendered with helm, its DaemonSet's pod
# template played as a Pod with `podman kube play` under runc, its securityContext, volumes, args
# and env as rendered. What podman cannot take is changed by pod_from_chart.py, which prints each
# change and why it hides no defect. Checks: the agent starts under the chart's privileges and
# stays up (no restart); /healthz and /metrics answer on the pod's address; connections between two
# other containers are counted exactly, with their cgroup ids; a restart of the agent container
# continues every counter; it stops cleanly within the grace period; the chart's cleanup mode
# leaves nothing loaded. A negative control: under podman's own RuntimeDefault seccomp profile the
# agent names the seccomp denial (and podman restarts it: the restart check can fail).
#
# Isolation from whatever else runs on the host: a bpffs of its own (never /sys/fs/bpf), a podman
# network, subnet and names of its own, the traffic on that network only; all removed on exit.
# Usage: run.sh [BUILD_DIR]   (root; packages from scripts/install-deps.sh, helm from npm)
# Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed" last.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/tests/container
build=$(cd "${1:-$repo/build}" && pwd)
chart=$repo/helm/netwatch
export CONTAINERS_CONF=$repo/deploy/podman/containers.conf
id=nwct$$
net=$id
subnet=10.231.$(($$ % 200 + 20)).0/24
bpffs=/run/nwtest-bpffs-$$
port=18473 # the traffic's service port: only the test's own containers use it
work=$(mktemp -d)
base=docker.io/library/debian:bookworm-slim
started=$(date +%s)

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
expect() { # expect NAME ACTUAL WANTED
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
finish() {
  echo "# $(($(date +%s) - started)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
cleanup() {
  podman pod rm -f -t 0 "$id" "$id-default" "$id-cleanup" >/dev/null 2>&1
  podman rm -f -t 0 "$id-server" "$id-client" >/dev/null 2>&1
  podman network rm -f "$net" >/dev/null 2>&1
  if mountpoint -q "$bpffs"; then
    [ -d "$bpffs/netwatch" ] && "$build/netwatch" cleanup --pin-dir "$bpffs/netwatch" >/dev/null 2>&1
    umount "$bpffs"
  fi
  rmdir "$bpffs" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that the EXIT trap runs
elapsed() { echo $(($(date +%s%N) / 1000000 - $1)); }
now_ms() { date +%s%N | cut -b1-13; }

[ "$(id -u)" -eq 0 ] || { fail "needs root: sudo make test"; finish; }
for tool in podman /usr/sbin/runc mmdebstrap setpriv python3 bpftool curl; do
  command -v "$tool" >/dev/null || { fail "$tool missing (scripts/install-deps.sh installs it)"; finish; }
done
helm=$("$repo/scripts/install-helm.sh") || { fail "helm (scripts/install-helm.sh)"; finish; }

# ---- image ----------------------------------------------------------------------------------------

t=$(now_ms)
if out=$("$repo/scripts/make-image.sh" --from-build "$build" 2>&1); then
  ok "image built from the Dockerfile's runtime stage in $(($(elapsed "$t") / 1000)) s: ${out##*$'\n'}"
else
  fail "image build"
  echo "$out" | tail -20 | sed 's/^/    /'
  finish
fi
image=netwatch:$(awk -F'"' '/^appVersion:/ { print $2 }' "$chart/Chart.yaml")
expect "the image holds no build tree and no compiler" \
  "$(podman run --rm --network none --entrypoint /bin/sh "$image" -c 'ls /src /usr/bin/cc /usr/bin/g++ 2>/dev/null | wc -l')" 0

# ---- the pod --------------------------------------------------------------------------------------

mkdir -p "$bpffs" "$work/pods" "$work/containers" "$work/seccomp"
mount -t bpf bpf "$bpffs" || { fail "mounting a bpffs of the test's own at $bpffs"; finish; }
bpffs_fresh=$(ls -A "$bpffs") # what a fresh bpffs holds (the kernel's preload iterators, if built)
cp "$chart/files/seccomp-netwatch.json" "$work/seccomp/netwatch.json"
podman network create --subnet "$subnet" "$net" >/dev/null || { fail "podman network $net ($subnet)"; finish; }

# render MODE NAME [helm --set ...]: the chart's DaemonSet as a Pod manifest in $work/NAME.yaml.
render() {
  local name=$1
  shift
  "$helm" template nw "$chart" --namespace nwtest "$@" >"$work/$name-chart.yaml" &&
    python3 "$here/pod_from_chart.py" "$name" --node-name "$(hostname)" \
      --host-path "/sys/fs/bpf=$bpffs" --host-path "/var/log/pods=$work/pods" \
      --host-path "/var/log/containers=$work/containers" <"$work/$name-chart.yaml" >"$work/$name.yaml" 2>"$work/$name-changes.txt"
}
# For runtimes whose default profile denies bpf (podman's is containers-common's, like CRI-O's),
# the chart's documented value: its own profile, as a Localhost profile.
localhost_seccomp=(--set securityContext.seccompProfile.type=Localhost
  --set securityContext.seccompProfile.localhostProfile=netwatch.json)
play() { podman kube play --network "$net" --seccomp-profile-root "$work/seccomp" "$work/$1.yaml" >/dev/null; }
restarts() { podman inspect --format '{{.RestartCount}}' "$1-agent"; }
# logs_have CONTAINER TEXT (not `podman logs | grep -q`: with pipefail, grep's early exit fails it)
logs_have() { grep -qF -- "$2" <<<"$(podman logs "$1" 2>&1)"; }

# Negative control: the chart as it is, under podman's RuntimeDefault, which denies bpf().
render "$id-default" || { fail "helm template / pod_from_chart.py"; finish; }
play "$id-default" || { fail "podman kube play (default values)"; finish; }
for _ in $(seq 100); do
  logs_have "$id-default-agent" 'seccomp filter denies' && break
  sleep 0.2
done
line=$(podman logs "$id-default-agent" 2>&1 | grep -m1 'seccomp' || true)
if [[ $line == *"a seccomp filter denies bpf() and perf_event_open() although the capability is held"* ]]; then
  ok "under podman's RuntimeDefault the agent names the seccomp denial: ${line:0:90}..."
else
  fail "under podman's RuntimeDefault: no seccomp line in the agent's log"
  podman logs "$id-default-agent" 2>&1 | tail -5 | sed 's/^/    /'
fi
sleep 2
[ "$(restarts "$id-default")" -gt 0 ] && ok "negative control: podman counts the failing agent's restarts ($(restarts "$id-default"))" ||
  fail "negative control: a failing agent was not restarted, so 'no restart' below would prove nothing"
# It restarts at once, so removal can race with a restart: retry.
for _ in 1 2 3 4 5; do podman pod rm -f -t 0 "$id-default" >/dev/null 2>&1 && break; sleep 0.5; done

# The pod as a CRI-O or podman user deploys it: the chart with its Localhost profile.
render "$id" "${localhost_seccomp[@]}" || { fail "helm template / pod_from_chart.py"; finish; }
echo "# how the played pod differs from the kubelet's:"
sed 's/^/#   /' "$work/$id-changes.txt"
t=$(now_ms)
play "$id" || { fail "podman kube play"; finish; }
# The pod's address, as the kubelet and the Service find it (the infra container holds the netns).
pod_ip() {
  podman inspect --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" \
    "$(podman pod inspect --format '{{.InfraContainerID}}' "$id")"
}
# wait_healthy: /healthz answers on the pod's address within 20 s (the kubelet's probe, from the node).
wait_healthy() {
  local end=$((SECONDS + 20))
  ip=$(pod_ip)
  agent=http://$ip:9464
  until curl -sf --max-time 1 "$agent/healthz" >/dev/null; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}
if wait_healthy; then
  ok "/healthz answers on the pod's address $ip, $(elapsed "$t") ms after kube play"
else
  fail "/healthz on $ip"
  podman logs "$id-agent" 2>&1 | tail -20 | sed 's/^/    /'
  finish
fi
grep -q '^netwatch_build_info' <(curl -sf "$agent/metrics") && ok "/metrics answers on the pod's address" || fail "/metrics"

pid=$(podman inspect --format '{{.State.Pid}}' "$id-agent")
status=$(cat "/proc/$pid/status")
field() { awk -v f="$1:" '$1 == f { print $2 }' <<<"$status"; }
expect "the agent holds no capability once started (CapEff)" "$(field CapEff)" 0000000000000000
expect "the agent holds no capability once started (CapPrm)" "$(field CapPrm)" 0000000000000000
expect "the runtime bounded it to BPF and PERFMON (CapBnd)" "$(field CapBnd)" 000000c000000000
expect "no_new_privs" "$(field NoNewPrivs)" 1
expect "a seccomp filter is in force (the chart's Localhost profile)" "$(field Seccomp)" 2
logs=$(podman logs "$id-agent" 2>&1)
grep -q 'no file can be written, created, removed or executed from here on (Landlock)' <<<"$logs" &&
  ok "the agent forbade itself every file write (Landlock)" || fail "no Landlock line in the agent's log"
rw=$(awk '$5 ~ "^/sys/fs/cgroup/" && $6 ~ /^rw/ { n++ } END { print n + 0 }' "/proc/$pid/mountinfo")
echo "# host cgroup submounts writable in the pod (podman does not honour recursiveReadOnly): $rw"
grep -qF "\"node\":\"$(hostname)\"" <(curl -sf "$agent/api/v1/connections?limit=1") &&
  ok "NODE_NAME reaches the agent (node in /api/v1/connections)" || fail "NODE_NAME unused"

# ---- traffic between two other containers ---------------------------------------------------------

# Ground truth for bytes: each socket's own TCP_INFO (struct tcp_info: tcpi_bytes_received at offset
# 128, tcpi_bytes_sent at 200, as in <linux/tcp.h>), which is what netwatch reports, read by the
# server after the client's FIN (so it counts the FIN's sequence number, as the kernel does) and by
# the client after the server's.
server_pl='use IO::Socket::INET; $| = 1; my $s = IO::Socket::INET->new(LocalPort => '$port', Listen => 128, ReuseAddr => 1) or die $!;
while (my $c = $s->accept) { my $b; 1 while sysread($c, $b, 65536); printf "rx %d\n", unpack("Q", substr(getsockopt($c, 6, 11), 128, 8)); close $c }'
podman run -d --name "$id-server" --network "$net" --cap-drop ALL "$base" perl -e "$server_pl" >/dev/null
podman run -d --name "$id-client" --network "$net" --cap-drop ALL "$base" perl -e 'sleep 100000' >/dev/null
server_ip=$(podman inspect --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$id-server")
# Ground truth: the cgroup2 directory of each container's process, its inode the cgroup id.
cgroup2=$(findmnt -n -o TARGET -t cgroup2 | head -1)
cgroup_id() {
  local p
  p=$(podman inspect --format '{{.State.Pid}}' "$1")
  stat -c %i "$cgroup2$(awk -F: '$1 == 0 { print $3 }' "/proc/$p/cgroup")"
}
client_cg=$(cgroup_id "$id-client")
server_cg=$(cgroup_id "$id-server")
# connections N [hold]: N connections from the client to the server, 1000 bytes each; with hold,
# they stay open until /tmp/release exists in the client container.
connections() {
  podman exec ${2:+-d} "$id-client" perl -MIO::Socket::INET -e '
    my @open;
    for (1..'"$1"') {
      my $c = IO::Socket::INET->new(PeerAddr => "'"$server_ip:$port"'") or die "connect: $!";
      syswrite($c, "x" x 1000);
      push @open, $c;
      last_one($c) unless "'"${2:-}"'";
    }
    select(undef, undef, undef, 0.1) until -e "/tmp/release" or !"'"${2:-}"'";
    last_one($_) for @open;
    sub last_one {
      my $c = shift;
      return unless $c->opened;
      shutdown($c, 1);
      my $b;
      1 while sysread($c, $b, 100);
      open(my $log, ">>", "/tmp/tx") or die $!;
      printf $log "tx %d\n", unpack("Q", substr(getsockopt($c, 6, 11), 200, 8));
      close $log;
      close $c;
    }'
}
sum() { python3 "$here/scrape.py" sum "$agent/metrics" "$@"; }
kernel_rx() { podman logs "$id-server" 2>/dev/null | awk '$1 == "rx" { n += $2 } END { print n + 0 }'; }
kernel_tx() { podman exec "$id-client" cat /tmp/tx | awk '$1 == "tx" { n += $2 } END { print n + 0 }'; }
wait_sum() { # wait_sum WANT NAME LABELS...: up to 5 s for the agent's publish
  local want=$1 got
  shift
  for _ in $(seq 50); do
    got=$(sum "$@")
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
  echo "$got"
}

connections 3 hold >/dev/null
sleep 1.5
out=$(python3 "$here/scrape.py" cgroups "$agent" "$port" "$client_cg" "$server_cg" 2>&1)
expect "open connections carry the client's cgroup id ($client_cg) and the server's ($server_cg)" \
  "$(head -1 <<<"$out")" "3 outbound, 3 inbound, 0 with another cgroup id"
podman exec "$id-client" touch /tmp/release
connections 20 || fail "the client's connections"
podman exec "$id-client" rm /tmp/release
expect "outbound connects counted exactly" \
  "$(wait_sum 23 netwatch_tcp_connects_total direction=outbound port=$port result=ok peer="$server_ip")" 23
expect "inbound connects counted exactly" \
  "$(wait_sum 23 netwatch_tcp_connects_total direction=inbound port=$port result=ok)" 23
tx=$(kernel_tx) rx=$(kernel_rx)
expect "bytes sent counted exactly (the client's TCP_INFO: $tx)" \
  "$(wait_sum "$tx" netwatch_tcp_bytes_sent_total direction=outbound port=$port)" "$tx"
expect "bytes received counted exactly (the server's TCP_INFO: $rx)" \
  "$(wait_sum "$rx" netwatch_tcp_bytes_received_total direction=inbound port=$port)" "$rx"

# ---- restart --------------------------------------------------------------------------------------

expect "no restart so far" "$(restarts "$id")" 0
python3 "$here/scrape.py" counters "$agent/metrics" "$work/before.json" >/dev/null
grace=$(awk '/^terminationGracePeriodSeconds:/ { print $2 }' "$chart/values.yaml")
t=$(now_ms)
podman stop -t "$grace" "$id-agent" >/dev/null
stop_ms=$(elapsed "$t")
expect "podman stop: the agent exits 0" "$(podman inspect --format '{{.State.ExitCode}}' "$id-agent")" 0
[ "$stop_ms" -lt $((grace * 1000)) ] && ok "podman stop took $stop_ms ms (grace period ${grace} s)" ||
  fail "podman stop took $stop_ms ms: the grace period ran out"
logs_have "$id-agent" 'checkpoint stored' && ok "a checkpoint was stored at the stop" ||
  fail "no checkpoint stored"
# podman stops a played pod's infra container with its last container (kube play's exit policy),
# so the restarted agent gets a new network namespace and address; a kubelet keeps the sandbox.
# Nothing depends on it: the agent listens on 0.0.0.0 and its probes see every namespace.
old_ip=$ip
podman start "$id-agent" >/dev/null
wait_healthy && ok "the restarted agent answers (pod address $old_ip -> $ip)" ||
  { fail "the restarted agent does not answer on $ip"; podman logs --tail 10 "$id-agent" 2>&1 | sed 's/^/    /'; }
sleep 1.2 # one publish interval
out=$(python3 "$here/scrape.py" continued "$work/before.json" "$agent/metrics" 2>&1)
[ $? -eq 0 ] && ok "every counter continues across the restart ($(head -1 <<<"$out"))" ||
  { fail "counters after the restart"; sed 's/^/    /' <<<"$out"; }
connections 5 || fail "the client's connections after the restart"
expect "connects after the restart add to the count exactly" \
  "$(wait_sum 28 netwatch_tcp_connects_total direction=outbound port=$port result=ok peer="$server_ip")" 28
rx=$(kernel_rx)
expect "bytes after the restart add up exactly (the server's TCP_INFO: $rx)" \
  "$(wait_sum "$rx" netwatch_tcp_bytes_received_total direction=inbound port=$port)" "$rx"
expect "still no restart (podman's restart count)" "$(restarts "$id")" 0

# ---- stop and the documented cleanup ---------------------------------------------------------------

# What the agent left pinned: its links' programs, which must be gone after the cleanup.
progs=$(for l in "$bpffs"/netwatch/links/*; do bpftool -j link show pinned "$l" | python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])'; done)
[ -n "$progs" ] && ok "the stopped agent left its programs attached for the next one: ids $(echo $progs)" ||
  fail "no pinned links in $bpffs/netwatch"
t=$(now_ms)
podman pod stop -t "$grace" "$id" >/dev/null
stop_ms=$(elapsed "$t")
expect "podman pod stop: the agent exits 0" "$(podman inspect --format '{{.State.ExitCode}}' "$id-agent")" 0
[ "$stop_ms" -lt $((grace * 1000)) ] && ok "podman pod stop took $stop_ms ms" || fail "podman pod stop took $stop_ms ms"
podman pod rm -f "$id" >/dev/null

render "$id-cleanup" "${localhost_seccomp[@]}" --set cleanup.enabled=true || fail "render cleanup mode"
play "$id-cleanup" || fail "podman kube play (cleanup mode)"
for _ in $(seq 100); do
  logs_have "$id-cleanup-agent" 'cleanup done' && break
  sleep 0.1
done
logs_have "$id-cleanup-agent" "removed /sys/fs/bpf/netwatch" && ok "cleanup mode removed the pins" ||
  { fail "cleanup mode"; podman logs "$id-cleanup-agent" 2>&1 | tail -5 | sed 's/^/    /'; }
expect "nothing left in the bpffs" "$(ls -A "$bpffs")" "$bpffs_fresh"
left=""
for p in $progs; do
  for _ in $(seq 50); do bpftool prog show id "$p" >/dev/null 2>&1 || break; sleep 0.1; done
  bpftool prog show id "$p" >/dev/null 2>&1 && left="$left $p"
done
expect "none of the agent's programs is still loaded" "$left" ""
expect "the cleanup pod keeps running until stopped (no restart)" \
  "$(podman inspect --format '{{.State.Status}} {{.RestartCount}}' "$id-cleanup-agent")" "running 0"
podman pod stop -t "$grace" "$id-cleanup" >/dev/null
expect "the cleanup pod exits 0 at SIGTERM" "$(podman inspect --format '{{.State.ExitCode}}' "$id-cleanup-agent")" 0

finish
