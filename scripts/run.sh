#!/usr/bin/env bash
# Builds berthd and berth-pause, installs them under /usr/local/bin with the default CNI config,
# and starts berthd in the background with its embedded defaults (log: /var/log/berthd.log).
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //server:berthd //runtime/pause:berth-pause
install -m 0755 bazel-bin/server/berthd bazel-bin/runtime/pause/berth-pause /usr/local/bin/
if [ -f deploy/cni/10-berth.conflist ] && ! ls /etc/cni/net.d/*.conf* >/dev/null 2>&1; then
  install -D -m 0644 deploy/cni/10-berth.conflist /etc/cni/net.d/10-berth.conflist
fi
if [ -S /run/berth/berth.sock ] && pgrep -x berthd >/dev/null; then
  echo "berthd is already running (pid $(pgrep -x berthd)); stop it first to restart"
  exit 0
fi
nohup /usr/local/bin/berthd >>/var/log/berthd.log 2>&1 &
for _ in $(seq 50); do
  [ -S /run/berth/berth.sock ] && break
  sleep 0.1
done
if [ -S /run/berth/berth.sock ]; then
  echo "berthd is serving on unix:///run/berth/berth.sock (log: /var/log/berthd.log)"
else
  echo "berthd did not start; see /var/log/berthd.log"
  tail -20 /var/log/berthd.log
  exit 1
fi
