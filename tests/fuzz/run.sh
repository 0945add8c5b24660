#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.cpp) with clang into build-fuzz/ and runs each
# for FUZZ_SECONDS from its checked-in seeds (tests/fuzz/corpus/<target>/); what the fuzzer finds
# goes to build-fuzz/corpus/<target>/ (libFuzzer writes to the first directory it is given) and a
# crash leaves build-fuzz/crash-* to reproduce with `build-fuzz/tests/fuzz/<target> <file>`.
# Any crash, leak, sanitizer report or seed without a target fails the run.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]      (make fuzz; ctest `fuzz` in make test)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-30}}
jobs=${JOBS:-2}
build=$src/build-fuzz
cd "$src"

targets=()
for f in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
for d in tests/fuzz/corpus/*/; do
  t=$(basename "$d")
  [ -f "tests/fuzz/$t.cpp" ] || { echo "FAIL: seeds in $d but no tests/fuzz/$t.cpp"; exit 1; }
done

start=$SECONDS
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DNETWATCH_TESTS=ON -DNETWATCH_FUZZ=ON >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
echo "fuzz build: $((SECONDS - start)) s"

failed=0
for t in "${targets[@]}"; do
  [ -d "tests/fuzz/corpus/$t" ] || { echo "FAIL $t: no seed corpus tests/fuzz/corpus/$t/"; failed=1; continue; }
  mkdir -p "$build/corpus/$t"
  t0=$SECONDS
  if out=$("$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/" "$build/corpus/$t" "tests/fuzz/corpus/$t" 2>&1); then
    echo "ok   $t ($((SECONDS - t0)) s): $(grep -E '^stat::number_of_executed_units' <<<"$out" | awk '{print $2}') runs," \
      "corpus $(ls "$build/corpus/$t" | wc -l) units"
  else
    echo "FAIL $t ($((SECONDS - t0)) s):"
    tail -40 <<<"$out" | sed 's/^/    /'
    failed=1
  fi
done
echo "fuzz: $((SECONDS - start)) s in all"
exit $failed
