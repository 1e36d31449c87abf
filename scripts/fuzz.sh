#!/usr/bin/env bash
# Runs the fuzz targets longer than CI does: bash scripts/fuzz.sh [seconds per target] [targets...]
# (default 600 s, every target tagged "fuzz"). Crashes land in bazel-testlogs/<target>/test.outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(bazel query 'attr(tags, "fuzz", tests(//...))' 2>/dev/null)
fi
for t in "${targets[@]}"; do
  bazel --output_base=/root/.cache/bazel-fuzz test --config=fuzz --jobs=2 --test_output=all \
    --test_timeout=$((seconds + 120)) --test_env=FUZZ_SECONDS="$seconds" "$t" 2>&1 |
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|==[0-9]+==ERROR|//)" || true
done
