#!/usr/bin/env bash
# Builds berth's benchmarks and runs them: berthd (bench/berth-side.sh: started before the
# client, on temporary directories, an isolated bridge network and a loopback registry), every
# figure next to its baseline from the same run. Prints tables; the lifecycle figures also go
# to a JSON file for comparisons across commits.
#
#   bash scripts/bench.sh [json-out]          berth alone (default /tmp/berth-bench.json)
#   bash scripts/bench.sh --against unix:///path/to/other.sock [--registry HOST:PORT] [json-out]
#       the same workloads on berth and on a second CRI endpoint in one run, both columns and
#       berth's figure divided by the other's. The other endpoint must mirror docker.io and
#       registry.k8s.io to the registry given (default: the `registry` file next to its socket,
#       which bench/containerd-side.sh writes); the bench pushes its images there.
#   bash scripts/bench.sh --containerd [json-out]
#       starts Debian's containerd on its own socket and directories (bench/containerd-side.sh),
#       runs --against it, and stops it.
#   Extra lifecycle_bench flags go after `--`, e.g. `-- --sections=memory --cycles=200`.
# Needs root, like the tests. Benchmarks are never part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
against=""
registry=""
containerd=0
out=/tmp/berth-bench.json
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --against) against="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --containerd) containerd=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "bench.sh: unknown flag $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done

# One bazel at a time on this machine: build under the shared lock, benchmark outside it.
flock /tmp/berth-bazel.lock bazel build --symlink_prefix=/ //bench:lifecycle_bench //bench:stats_bench \
  //server:berthd //runtime/pause:berth-pause
bin=$(flock /tmp/berth-bazel.lock bazel info --symlink_prefix=/ bazel-bin 2>/dev/null)

cleanup() {
  bash bench/berth-side.sh stop || true
  if [ "$containerd" = 1 ]; then bash bench/containerd-side.sh stop || true; fi
}
trap cleanup EXIT
if [ "$containerd" = 1 ]; then against=$(bash bench/containerd-side.sh start); fi
if [ -n "$against" ] && [ -z "$registry" ]; then
  sockdir=$(dirname "${against#unix://}")
  [ -f "$sockdir/registry" ] && registry=$(cat "$sockdir/registry")
  if [ -z "$registry" ]; then
    echo "bench.sh: --against needs --registry, the registry that endpoint mirrors to" >&2
    exit 2
  fi
fi
berth=$(bash bench/berth-side.sh start --bin "$bin" ${registry:+--registry "$registry"})
[ -n "$registry" ] || registry=$(bash bench/berth-side.sh registry)

flags=(--endpoint="$berth" --registry="$registry" --runs=20 --pods=10 --list_counts=10,100,1000
       --concurrent=100 --cycles=1000 --cycle_parallel=4 --json_out="$out")
if [ -n "$against" ]; then
  name=other
  case "$against" in *containerd*) name=containerd ;; esac
  flags+=(--against="$against" --against_name="$name")
fi
(cd "$bin/bench/lifecycle_bench.runfiles/berth" && ../../lifecycle_bench "${flags[@]}" "${extra[@]}")
"$bin/bench/stats_bench"
echo "lifecycle figures as JSON: $out"
