#!/usr/bin/env bash
# Every benchmark's smoke mode, a few seconds each (ctest bench_smoke, make bench-smoke): checks that
# each runs and prints its numbers. Timings are never judged here; targets are BENCHMARKS.md's job.
# Needs root (BPF, nftables) and the benchmark packages (scripts/install-deps.sh).
#   bench/smoke.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: smoke.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
b=$build/bench
failed=0

# run NAME PATTERN COMMAND...: the command must exit 0 and print a line matching PATTERN.
run() {
  local name=$1 pattern=$2
  shift 2
  local out start=$SECONDS
  out=$("$@" 2>&1)
  local code=$?
  if [ $code -ne 0 ] || ! grep -Eq "$pattern" <<<"$out"; then
    echo "FAIL $name (exit $code, $((SECONDS - start)) s): $*"
    echo "$out" | tail -20 | sed 's/^/    /'
    failed=$((failed + 1))
  else
    echo "ok   $name ($((SECONDS - start)) s): $(grep -E "$pattern" <<<"$out" | head -1)"
  fi
}

num='[0-9]+(\.[0-9]+)?'
run probes "^ACK +netwatch +$num" "$b/netwatch_probe_cost" --smoke
run throughput "median ratio $num" "$b/netwatch_throughput" --smoke
run churn "events lost: $num" "$b/netwatch_churn" --smoke
run replay "BM_Replay/live:1000 .*items_per_second" "$b/netwatch_replay" --benchmark_filter='live:1000$' \
  --benchmark_min_time=0.05
run replay-callgrind "^1000 +[0-9]+ +[0-9]+ +$num" "$here/callgrind_replay.sh" "$build" --smoke
run memory "RSS growth per 100k tracked, MiB +$num" "$b/netwatch_memory" --smoke
run render "BM_RenderMetricsText .*per_series" "$b/netwatch_render" --benchmark_min_time=0.01 \
  --benchmark_filter='RenderMetricsText|live:1000/'
run checkpoint "BM_RestoreCheckpoint/live:1000 " "$b/netwatch_checkpoint" --benchmark_filter='live:1000$' \
  --benchmark_min_time=0.01
run scrape "latency p99, ms +$num" "$b/netwatch_scrape" --smoke
run agent-cpu "agent CPU % per 100k events/s +$num" "$b/netwatch_agent_cpu" --smoke

[ $failed -eq 0 ] && echo "bench smoke: all passed" || echo "bench smoke: $failed failed"
exit $((failed > 0))
