#!/usr/bin/env bash
# A containerd (Debian's, with its CRI plugin) for side-by-side benchmarks, on its own socket,
# root, state, runc root and config, never /var/lib/containerd or /run/containerd's socket
# (containerd 1.6 does put its shims' sockets in /run/containerd/s, whatever the state dir).
# Images come from a loopback registry only: docker.io and registry.k8s.io are served by it (it
# is their `server`, so there is no upstream to fall back to). Pods get the same CNI plugins as berth's
# bench with --cni=bridge (Debian's containernetworking-plugins, an isolated bridge).
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

. "$(dirname "$0")/side-common.sh"

start() {
  command -v containerd >/dev/null || { echo "apt-get install -y containerd" >&2; exit 1; }
  if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then
    echo "containerd-side.sh: already running on $sock" >&2
    echo "unix://$sock"
    return
  fi
  mkdir -p "$dir"/{root,state,cni,opt,certs.d/docker.io,certs.d/registry.k8s.io}
  [ -n "$registry" ] || registry=$(start_registry "$dir")
  echo "$registry" >"$dir/registry"
  for host in docker.io registry.k8s.io; do
    # The loopback registry is the server itself, so even the fallback is loopback: nothing is
    # fetched from upstream. containerd 1.6 refuses a hosts.toml without a [host] table (and
    # then falls back to the real registry), so the mirror is also listed as a host.
    cat >"$dir/certs.d/$host/hosts.toml" <<EOF
server = "http://$registry"
[host."http://$registry"]
  capabilities = ["pull", "resolve"]
EOF
  done
  # The network lifecycle_bench --cni=bridge gives berth (containerd's CRI needs an eth0 with
  # an address): Debian's bridge plugin on a bridge of its own with no host address, gateway,
  # masquerading or iptables rules, and host-local addresses; containerd adds lo itself.
  cat >"$dir/cni/10-bench.conflist" <<EOF
{"cniVersion":"1.0.0","name":"bench","plugins":[{"type":"bridge","bridge":"bbench-ctrd",
 "isGateway":false,"ipMasq":false,"ipam":{"type":"host-local",
 "ranges":[[{"subnet":"10.214.0.0/16"}]],"dataDir":"$dir/ipam"}}]}
EOF
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
  # The sandbox's oom_score_adj -998 is below what an unprivileged-resource container (like the
  # development machine) may set: runc would fail. Keep it at containerd's own, as berth does.
  restrict_oom_score_adj = true
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
        # runc's state goes here too, not to /run/containerd/runc (another containerd's).
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
EOF
  # Belt and braces: any HTTP(S) to a host other than loopback goes to a closed loopback port
  # (Go sends it to the proxy without resolving the name), so a configuration mistake can never
  # reach the network.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
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
  stop_pidfile "$dir/containerd.pid"
  stop_pidfile "$dir/registry.pid"
  # Shims that outlived containerd, by the pid files containerd keeps for them.
  for f in "$dir"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  ip link del bbench-ctrd 2>/dev/null || true
  # containerd 1.6 puts shim sockets in /run/containerd/s whatever its state directory is;
  # the shims remove theirs. Drop the directories if they are empty (and so nobody else's).
  rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  # Mounts left below the directory (rootfs, netns, shm), deepest first.
  if [ -d "$dir" ]; then
    unmount_below "$dir"
    rm -rf "$dir"
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  registry) cat "$dir/registry" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
