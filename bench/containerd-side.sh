#!/usr/bin/env bash
# A containerd (Debian's, with its CRI plugin) for side-by-side benchmarks, on its own socket,
# root, state and config, never touching /run/containerd or /var/lib/containerd. Images come
# from a loopback registry only: docker.io and registry.k8s.io are served by it (it is their
# `server`, so there is no upstream to fall back to). Pods get the same CNI plugins as berth's
# bench (Debian's containernetworking-plugins, a loopback-only network).
#
#   bash bench/containerd-side.sh start [--registry 127.0.0.1:PORT] [--dir DIR]
#       starts containerd (and, without --registry, a docker-registry on a free loopback port)
#       and prints the CRI endpoint, unix://DIR/containerd.sock; DIR/registry holds the registry.
#   bash bench/containerd-side.sh registry [--dir DIR]    prints the registry host:port
#   bash bench/containerd-side.sh stop [--dir DIR]
#       removes every pod and container it runs, stops it (and its registry), removes DIR.
#
# Needs root and `apt-get install -y containerd docker-registry containernetworking-plugins`.
set -euo pipefail

cmd="${1:-}"
shift || true
dir=/tmp/berth-bench-containerd
registry=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    *) echo "containerd-side.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
sock="$dir/containerd.sock"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for SECONDS COMMAND...: readiness polling, not a measurement
  local n=$(( $1 * 10 )); shift
  for _ in $(seq "$n"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

start() {
  command -v containerd >/dev/null || { echo "apt-get install -y containerd" >&2; exit 1; }
  if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then
    echo "containerd-side.sh: already running on $sock" >&2
    echo "unix://$sock"
    return
  fi
  mkdir -p "$dir"/{root,state,cni,opt,certs.d/docker.io,certs.d/registry.k8s.io}
  if [ -z "$registry" ]; then
    registry="127.0.0.1:$(free_port)"
    mkdir -p "$dir/registry-data"
    cat >"$dir/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/registry-data}
  delete: {enabled: true}
http: {addr: $registry}
EOF
    setsid docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 </dev/null &
    echo $! >"$dir/registry.pid"
    wait_for 30 curl -fsS "http://$registry/v2/" ||
      { echo "docker-registry did not start:" >&2; cat "$dir/registry.log" >&2; exit 1; }
  fi
  echo "$registry" >"$dir/registry"
  for host in docker.io registry.k8s.io; do
    cat >"$dir/certs.d/$host/hosts.toml" <<EOF
# The loopback registry is the server itself: nothing is ever fetched from upstream.
server = "http://$registry"
EOF
  done
  # The same network as berth's bench: Debian's loopback plugin only.
  echo '{"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]}' >"$dir/cni/10-lo.conflist"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
EOF
  setsid containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 </dev/null &
  echo $! >"$dir/containerd.pid"
  wait_for 60 ctr --address "$sock" version ||
    { echo "containerd did not start:" >&2; tail -20 "$dir/containerd.log" >&2; exit 1; }
  echo "unix://$sock"
}

stop() {
  if [ -S "$sock" ]; then
    # Pods and containers first, through containerd itself, so shims and mounts go away.
    for ns in $(ctr --address "$sock" namespaces ls -q 2>/dev/null); do
      for t in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
        ctr --address "$sock" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
      done
      for t in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
        ctr --address "$sock" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1 || true
      done
      for c in $(ctr --address "$sock" -n "$ns" containers ls -q 2>/dev/null); do
        ctr --address "$sock" -n "$ns" containers rm "$c" >/dev/null 2>&1 || true
      done
    done
  fi
  for f in containerd registry; do
    if [ -f "$dir/$f.pid" ]; then
      pid=$(cat "$dir/$f.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$f.pid"
    fi
  done
  # Shims that outlived containerd, by the pid files containerd keeps for them.
  for f in "$dir"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  # Mounts left below the directory (rootfs, netns, shm), deepest first.
  if [ -d "$dir" ]; then
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print length($5), $5}' /proc/self/mountinfo |
      sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$dir"
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  registry) cat "$dir/registry" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
