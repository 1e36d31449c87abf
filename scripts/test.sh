#!/usr/bin/env bash
# Runs every berth test: unit tests and integration tests with real runc, conmon, CNI and a
# loopback registry. Needs root. Tests run one at a time: they share the host's cgroups and CNI.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bazel test --jobs=2 --local_test_jobs=1 --test_output=errors //... "$@"
