#!/usr/bin/env bash
# Formats every tracked C++ file with clang-format-14 and .clang-format; --check only lists the
# files that differ (exit 1 when there are any).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format-14 --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
      echo "not formatted: $f"
      bad=1
    fi
  done
  exit $bad
fi
clang-format-14 --style=file -i "${files[@]}"
