#!/usr/bin/env bash
# Runs every berth test: unit tests and integration tests with real runc, conmon, CNI and a
# loopback registry, built by g++ with ASan + UBSan (berthd too: a sanitizer report in its log
# fails the test that ran it); then everything built by clang-14 with -Werror=thread-safety
# (every ABSL_GUARDED_BY checked) and libFuzzer + ASan + UBSan instrumentation, and every fuzz
# target of that build run for $FUZZ_SECONDS (default 20) each. Needs root. Tests run one at a
# time: they share the host's cgroups and CNI.
#   BERTH_TEST_STAGES picks stages (default "asan fuzz"; "gcc" runs the same suite on the plain
#   g++ build, as it is shipped, including the checks that mean nothing under ASan: glibc's heap
#   trimming and berthd's RSS under load; "clang" is the thread-safety build without
#   sanitizers); extra args go to the asan and gcc stages' `bazel test`.
set -uo pipefail
cd "$(dirname "$0")/.."
stages=${BERTH_TEST_STAGES:-asan fuzz}
rc=0
# No bazel-* convenience links: a later stage with another output base would otherwise walk
# into the links an earlier one left (they point into a different output base).
nolinks=--symlink_prefix=/
run() {
  echo "=== $*"
  "$@" || rc=1
}
for stage in $stages; do
  case $stage in
    gcc)
      run bazel test $nolinks --jobs=2 --local_test_jobs=1 --test_output=errors //... "$@" ;;
    asan)
      # Own output directory (--platform_suffix): the g++ build's cache survives.
      run bazel test $nolinks --config=asan --jobs=2 --local_test_jobs=1 --test_output=errors \
        --test_tag_filters=-fuzz //... "$@" ;;
    clang)
      # A different C++ toolchain needs its own output base; -Werror=thread-safety checks every
      # ABSL_GUARDED_BY.
      run bazel --output_base=/root/.cache/bazel-clang build $nolinks --config=clang --jobs=2 //... ;;
    fuzz)
      # One clang-14 build serves both checks: --config=fuzz includes --config=clang, so building
      # //... with it is the thread-safety build, and the fuzz targets reuse its objects (a
      # separate clang stage would compile everything a third time).
      run bazel --output_base=/root/.cache/bazel-fuzz build $nolinks --config=fuzz --jobs=2 //...
      run bazel --output_base=/root/.cache/bazel-fuzz test $nolinks --config=fuzz --jobs=2 \
        --local_test_jobs=1 --build_tests_only --test_output=errors \
        --test_env=FUZZ_SECONDS="${FUZZ_SECONDS:-20}" //... ;;
    *) echo "unknown stage $stage"; rc=1 ;;
  esac
done
exit $rc
