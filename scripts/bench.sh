#!/usr/bin/env bash
# Builds berth's benchmarks and runs them: berthd on temporary directories with a loopback
# registry, every figure next to its baseline from the same run. Prints tables; the lifecycle
# figures also go to a JSON file for comparisons across commits.
#   bash scripts/bench.sh [json-out]      (default /tmp/berth-bench.json; needs root, like the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/berth-bench.json}"
bazel build //bench:lifecycle_bench //bench:stats_bench
(cd bazel-bin/bench/lifecycle_bench.runfiles/berth &&
  ../../lifecycle_bench --runs=20 --pods=100 --list_counts=10,100,1000 --json_out="$out")
bazel-bin/bench/stats_bench
echo "lifecycle figures as JSON: $out"
