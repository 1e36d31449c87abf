#!/usr/bin/env bash
# install-on-host.sh — installs berth onto the node from inside the berth-installer DaemonSet pod
# (privileged, hostPID, host directories mounted under /host), starts it through the host's
# systemd, then sleeps so the pod stays Running. Safe to run any number of times.
set -euo pipefail

# Overridable so the script can be exercised against a scratch directory (test/deploy does).
HOST_ROOT="${HOST_ROOT:-/host}"
BERTH_SRC="${BERTH_SRC:-/opt/berth}"
# How a command reaches the host: PID 1's namespaces (hostPID makes PID 1 the host's init).
read -r -a HOST_EXEC <<<"${HOST_EXEC:-nsenter -t 1 -m -u -i -n -p --}"
# Set to 1 to return after installing instead of sleeping (tests, one-shot jobs).
BERTH_INSTALL_ONESHOT="${BERTH_INSTALL_ONESHOT:-0}"

log() { echo "berth-installer: $*"; }

sha() { if [ -f "$1" ]; then sha256sum "$1" | cut -d' ' -f1; else echo absent; fi; }

# Copies $1 to $2 with mode $3 unless $2 already has the same content. Writes a temporary file
# next to the target and renames it: overwriting a running berthd in place fails (ETXTBSY), and a
# rename never leaves a half-written binary behind. Returns 0 if it changed anything, 1 if not.
install_file() {
  local src="$1" dst="$2" mode="$3"
  if [ "$(sha "$src")" = "$(sha "$dst")" ]; then
    log "unchanged: ${dst#"$HOST_ROOT"}"
    return 1
  fi
  mkdir -p "$(dirname "$dst")"
  install -m "$mode" "$src" "$dst.berth-new"
  mv -f "$dst.berth-new" "$dst"
  log "installed: ${dst#"$HOST_ROOT"}"
  return 0
}

host() { "${HOST_EXEC[@]}" "$@"; }

for f in bin/berthd bin/berth-pause berth.toml cni/10-berth.conflist systemd/berthd.service; do
  [ -f "$BERTH_SRC/$f" ] || { log "missing $BERTH_SRC/$f in the installer image"; exit 1; }
done

restart=0
# Binaries: a new berthd needs a restart; a new berth-pause is picked up by the next pod.
if install_file "$BERTH_SRC/bin/berthd" "$HOST_ROOT/usr/local/bin/berthd" 0755; then restart=1; fi
install_file "$BERTH_SRC/bin/berth-pause" "$HOST_ROOT/usr/local/bin/berth-pause" 0755 || true

# Configuration belongs to the node's operator once it exists: never overwritten.
if [ -e "$HOST_ROOT/etc/berth/berth.toml" ]; then
  log "kept existing /etc/berth/berth.toml"
else
  install_file "$BERTH_SRC/berth.toml" "$HOST_ROOT/etc/berth/berth.toml" 0644 || true
fi

# Pod network: only when the node has none, so an existing CNI (Calico, flannel...) wins.
if compgen -G "$HOST_ROOT/etc/cni/net.d/*.conf*" >/dev/null; then
  log "kept existing CNI configuration in /etc/cni/net.d"
else
  install_file "$BERTH_SRC/cni/10-berth.conflist" "$HOST_ROOT/etc/cni/net.d/10-berth.conflist" 0644 || true
fi
if ! compgen -G "$HOST_ROOT/opt/cni/bin/bridge" >/dev/null && ! host test -x /usr/lib/cni/bridge; then
  log "warning: no CNI bridge plugin in /opt/cni/bin or /usr/lib/cni (install containernetworking-plugins)"
fi

mkdir -p "$HOST_ROOT/var/lib/berth" "$HOST_ROOT/run/berth"

# A changed unit file takes effect only through daemon-reload plus a restart.
if install_file "$BERTH_SRC/systemd/berthd.service" "$HOST_ROOT/etc/systemd/system/berthd.service" 0644; then
  restart=1
fi

# berthd links Debian 12's shared libraries (gRPC, RocksDB, abseil...): say which ones the node
# lacks instead of letting the unit fail in a loop.
missing_libs="$(host ldd /usr/local/bin/berthd 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')"
if [ -n "${missing_libs// /}" ]; then
  log "berthd cannot run on this node, missing shared libraries: $missing_libs(see docs/OPERATIONS.md)"
  exit 1
fi

was_active=0
if host systemctl is-active --quiet berthd; then was_active=1; fi
log "systemctl daemon-reload; systemctl enable --now berthd"
host systemctl daemon-reload
host systemctl enable --now berthd
if [ "$restart" = 1 ] && [ "$was_active" = 1 ]; then
  # KillMode=process: only berthd restarts, running containers are kept and re-adopted.
  log "berthd or its unit changed while running: systemctl restart berthd"
  host systemctl restart berthd
fi
log "done: $(host /usr/local/bin/berthd --version 2>/dev/null || echo 'berthd installed')"

if [ "$BERTH_INSTALL_ONESHOT" = 1 ]; then exit 0; fi
# Keep the DaemonSet pod Running; exit promptly when Kubernetes stops it.
trap 'exit 0' TERM INT
while true; do sleep 3600 & wait $!; done
