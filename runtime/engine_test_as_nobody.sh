#!/usr/bin/env bash
# Runs //runtime:engine_test as the unprivileged user nobody (65534), from a copy the user can
# read (bazel's output tree lives under root's 0700 home). Skips only when not started as root,
# since then the suite already runs unprivileged.
set -euo pipefail
bin="$TEST_SRCDIR/$TEST_WORKSPACE/runtime/engine_test"
if [[ $(id -u) -ne 0 ]]; then
  exec "$bin"
fi
work=$(mktemp -d /tmp/berth-engine-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/engine_test"
mkdir "$work/tmp"
chown -R 65534:65534 "$work"
chmod 0755 "$work" "$work/engine_test"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  env -i HOME="$work" TEST_TMPDIR="$work/tmp" PATH=/usr/bin:/bin \
  "$work/engine_test" --gtest_output="xml:$work/out.xml"
# The suite recorded who ran it.
grep -Eq 'euid" value="65534"|euid="65534"' "$work/out.xml" || { echo "engine_test did not run as nobody"; exit 1; }
echo "engine_test passed as uid 65534"
