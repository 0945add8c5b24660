#!/usr/bin/env bash
# The reference documents name files that exist: every backticked path in README.md,
# BENCHMARKS.md and docs/architecture.md that starts at one of the repository's top-level
# directories must be there (placeholders such as `tests/unit/<layer>/` and globs are skipped;
# docs/benchmarks-log.md is a log and keeps the paths of its day). ctest `doc_paths`, label unit.
set -euo pipefail
cd "$(dirname "$0")/.."
top='(agent|bench|bpf|cli|cmake|deploy|docs|helm|scripts|tests|\.ci)/'
missing=0
for doc in README.md BENCHMARKS.md docs/architecture.md; do
  while IFS=: read -r line path; do
    path=${path#\`}
    path=${path%\`}
    case $path in *'<'* | *'*'* | *'{'*) continue ;; esac
    path=${path%%:*}  # file.cpp:123
    path=${path%%\?*}
    if [ ! -e "$path" ]; then
      echo "$doc:$line: \`$path\` does not exist (moved? fix the document)"
      missing=$((missing + 1))
    fi
  done < <(grep -noE "\`$top[^\` ]*\`" "$doc" || true)
done
[ "$missing" -eq 0 ] && echo "every backticked path in README.md, BENCHMARKS.md and docs/architecture.md exists"
[ "$missing" -eq 0 ]
