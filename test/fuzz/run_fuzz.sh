#!/usr/bin/env bash
# Runs one berth fuzz target: replays the seeds (g++ build) or fuzzes for $FUZZ_SECONDS from
# them (--config=fuzz). Usage: run_fuzz.sh <binary> <seed files...>
set -euo pipefail
bin=$1
shift
scratch=${TEST_TMPDIR:-$(mktemp -d)}/corpus
mkdir -p "$scratch"
seeds=${TEST_TMPDIR:-$(mktemp -d)}/seeds
mkdir -p "$seeds"
for f in "$@"; do cp "$f" "$seeds/"; done
artifacts=${TEST_UNDECLARED_OUTPUTS_DIR:-$(mktemp -d)}/
exec "$bin" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=25 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts" "$scratch" "$seeds"
