#!/usr/bin/env bash
# A berthd for side-by-side benchmarks, started outside the benchmark client, as a node starts
# it (before any client; see docs/BENCHMARKS.md on what sharing libraries with a client does to
# RSS), on its own socket, root and state, with the same network as bench/containerd-side.sh
# gives containerd (an isolated bridge, its own subnet) and docker.io mirrored to a loopback
# registry.
#
#   bash bench/berth-side.sh start --bin BAZEL_BIN [--registry 127.0.0.1:PORT] [--dir DIR]
#       starts BAZEL_BIN/server/berthd (and, without --registry, a docker-registry on a free
#       loopback port) and prints the CRI endpoint, unix://DIR/berth.sock.
#   bash bench/berth-side.sh stop [--dir DIR]
#       stops berthd (SIGTERM), then removes every container and pod it left with runc and
#       conmon gone, the bridge, and DIR.
set -euo pipefail

cmd="${1:-}"
shift || true
dir=/tmp/berth-bench-berth
registry=""
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) echo "berth-side.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
sock="$dir/berth.sock"
bridge=bbench-berth

. "$(dirname "$0")/side-common.sh"

start() {
  [ -x "$bin/server/berthd" ] || { echo "berth-side.sh: --bin must hold server/berthd" >&2; exit 2; }
  mkdir -p "$dir/cni"
  [ -n "$registry" ] || registry=$(start_registry "$dir")
  echo "$registry" >"$dir/registry"
  cat >"$dir/cni/10-bench.conflist" <<EOF
{"cniVersion":"1.0.0","name":"bench","plugins":[{"type":"bridge","bridge":"$bridge",
 "isGateway":false,"ipMasq":false,"ipam":{"type":"host-local",
 "ranges":[[{"subnet":"10.213.0.0/16"}]],"dataDir":"$dir/ipam"}}]}
EOF
  cat >"$dir/berth.toml" <<EOF
[network]
cni_conf_dir = "$dir/cni"
[registries."docker.io"]
mirrors = ["http://$registry"]
EOF
  setsid "$bin/server/berthd" --listen="unix://$sock" --root="$dir/root" --state_dir="$dir/run" \
    --pause_binary="$bin/runtime/pause/berth-pause" --config="$dir/berth.toml" \
    >"$dir/berthd.log" 2>&1 </dev/null &
  echo $! >"$dir/berthd.pid"
  wait_for 60 grep -q "serving CRI" "$dir/berthd.log" ||
    { echo "berthd did not start:" >&2; tail -20 "$dir/berthd.log" >&2; exit 1; }
  echo "unix://$sock"
}

stop() {
  stop_pidfile "$dir/berthd.pid"
  # What berthd left running (an aborted benchmark): containers through runc, then monitors.
  if [ -d "$dir/run/runc" ]; then
    for id in $(runc --root "$dir/run/runc" list -q 2>/dev/null); do
      runc --root "$dir/run/runc" kill "$id" KILL 2>/dev/null || true
      runc --root "$dir/run/runc" delete --force "$id" 2>/dev/null || true
    done
  fi
  for f in "$dir"/run/containers/*/conmon.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  stop_pidfile "$dir/registry.pid"
  ip link del "$bridge" 2>/dev/null || true
  if [ -d "$dir" ]; then
    unmount_below "$dir"
    rm -rf "$dir"
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  registry) cat "$dir/registry" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
