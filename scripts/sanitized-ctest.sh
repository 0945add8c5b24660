#!/usr/bin/env bash
# Runs tests of a sanitizer build (make test-sanitize, make test-tsan) so that any report fails the
# run, including reports from the netwatch binaries the kernel tests start as child processes (the
# tests stop those with SIGTERM and do not look at how they exited): every sanitizer writes its
# reports to BUILD/sanitizer-reports/ (log_path), and a non-empty directory fails the run.
#   scripts/sanitized-ctest.sh BUILD_DIR all|ci
# all: every unit and kernel test. ci: the unit tests and the kernel tests that run the real agent
# (its reader thread, HTTP threads and snapshot store): what make test runs, within CI's budget.
set -uo pipefail
build=$(cd "${1:?usage: sanitized-ctest.sh BUILD_DIR all|ci}" && pwd)
scope=${2:-all}
reports=$build/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
chmod 1777 "$reports"  # tests run some binaries as nobody

# halt_on_error: the first report ends the process (UBSan is built with -fno-sanitize-recover).
# detect_leaks: LeakSanitizer at exit; its report also goes to the file.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:halt_on_error=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
# second_deadlock_stack: both stacks of a lock-order inversion. TSan's runtime cannot map its
# shadow with the kernel's full mmap randomisation (vm.mmap_rnd_bits > 28 on newer kernels):
# setarch -R turns randomisation off for these processes only.
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:second_deadlock_stack=1"

agent_tests='AgentE2E|AgentRestart|AgentSecurity|AgentPodLabels|AgentConcurrency|Overload|Bounds|PrometheusE2E|SeriesBudgetE2E.six'
cd "$build"
start=$SECONDS
status=0
if [ "$scope" = ci ]; then
  setarch "$(uname -m)" -R ctest --output-on-failure --no-tests=error -j1 -L unit || status=1
  setarch "$(uname -m)" -R ctest --output-on-failure --no-tests=error -j1 -L kernel -R "$agent_tests" || status=1
else
  setarch "$(uname -m)" -R ctest --output-on-failure --no-tests=error -j1 -L 'unit|kernel' || status=1
fi
echo "sanitized tests ($scope): $((SECONDS - start)) s"
if [ -n "$(ls -A "$reports")" ]; then
  echo "FAIL: sanitizer reports in $reports:"
  for f in "$reports"/*; do
    echo "==== $f"
    head -60 "$f"
  done
  status=1
fi
exit $status
