#!/usr/bin/env bash
# Instructions per event of the userspace path (issue 6, target 4: <= 150), counted by callgrind,
# which counts the same instructions on every run however busy the machine is. netwatch_replay
# --fixed-events=N turns collection on only around the reader's drains of the N records it laid out
# in a ring buffer (set-up, event generation and the writes into the ring are not counted), so
# instructions / N is the cost of one event, reading the ring included.
#   bench/callgrind_replay.sh BUILD_DIR [--smoke]
set -euo pipefail
build=${1:?usage: callgrind_replay.sh BUILD_DIR [--smoke]}
replay=$build/bench/netwatch_replay
events=${REPLAY_EVENTS:-200000}
lives=(1000 100000 1000000)
if [ "${2:-}" = "--smoke" ]; then
  events=20000
  lives=(1000)
fi
command -v valgrind >/dev/null || { echo "callgrind_replay: valgrind is missing (scripts/install-deps.sh)" >&2; exit 2; }

echo "instructions per event (valgrind --tool=callgrind, ring read + aggregation only, $events events per run)"
printf '%-12s %10s %16s %12s %10s\n' live events instructions "per event" "<= 150"
for live in "${lives[@]}"; do
  out=$(valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=/dev/null \
        "$replay" --fixed-events="$events" --live="$live" 2>&1)
  collected=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out")
  replayed=$(sed -n 's/^replayed \([0-9]*\) events.*/\1/p' <<<"$out")
  if [ -z "$collected" ] || [ -z "$replayed" ] || [ "$replayed" -eq 0 ]; then
    echo "callgrind_replay: no count for live=$live:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v l="$live" -v e="$replayed" -v c="$collected" \
    'BEGIN { p = c / e; printf "%-12s %10d %16d %12.1f %10s\n", l, e, c, p, (p <= 150 ? "met" : "MISSED") }'
done
