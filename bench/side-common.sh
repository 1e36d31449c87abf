# Shared by bench/containerd-side.sh and bench/berth-side.sh (sourced, not run).

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

# start_registry DIR: Debian's docker-registry on a free loopback port, data under DIR (which
# must exist); prints host:port. DIR/registry.pid is for stop_pidfile.
start_registry() {
  local d="$1" host
  [ -n "$d" ] && [ -d "$d" ] || { echo "start_registry: no directory" >&2; return 1; }
  host="127.0.0.1:$(free_port)"
  mkdir -p "$d/registry-data"
  printf 'version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: %s}\n' \
    "$d/registry-data" "$host" >"$d/registry.yml"
  setsid docker-registry serve "$d/registry.yml" >"$d/registry.log" 2>&1 </dev/null &
  echo $! >"$d/registry.pid"
  wait_for 30 curl -fsS "http://$host/v2/" ||
    { echo "docker-registry did not start:" >&2; cat "$d/registry.log" >&2; return 1; }
  echo "$host"
}

# stop_pidfile FILE: SIGTERM the process it names, SIGKILL after 10 s, remove the file.
stop_pidfile() {
  local f="$1" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

# unmount_below DIR: lazily unmounts everything mounted below DIR, deepest first.
unmount_below() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print length($5), $5}' /proc/self/mountinfo |
    sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
