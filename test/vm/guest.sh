#!/bin/bash
# Inside the berth test VM (test/vm/run.sh): installs berthd under deploy/berthd.service with the
# cgroup driver named on the kernel command line, runs each test binary from the payload disk,
# leaves logs, gtest XML and a summary in /berth-vm/results, and returns (the unit powers off).
set -u
P=/berth-vm
R=$P/results
mkdir -p "$R"
exec > >(tee -a "$R/guest.log") 2>&1
echo "berth-vm: guest started"
. "$P/run.conf"
driver=$(sed -n 's/.*berth\.driver=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "berth-vm: kernel $(uname -r); /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup);" \
  "controllers: $(cat /sys/fs/cgroup/cgroup.controllers); driver $driver; runtime $oci_runtime"
echo "berth-vm: $(runc --version | head -1); $(crun --version | head -1); $(conmon --version | head -1)"

passed=0 failed=0 skipped=0
: > "$R/summary"
note() {  # note PASS|FAIL NAME DETAIL
  echo "$1 $2: $3" | tee -a "$R/summary"
  echo "berth-vm: $1 $2: $3"
}

# The VM has no network device (nothing leaves it); a node has one besides lo, and a test of
# host-network pods counts them: a dummy interface stands in, with no route anywhere.
ip link add berth-vm0 type dummy && ip link set berth-vm0 up

# --- berthd as the node runs it: deploy/berthd.service, Type=notify, Delegate=yes ---
install -m 755 "$P"/bin/* /usr/local/bin/
mkdir -p /etc/berth /etc/cni/net.d
sed -e "s/^cgroup_driver = .*/cgroup_driver = \"$driver\"/" \
  -e "s/^runtime_path = .*/runtime_path = \"$oci_runtime\"/" "$P/berth.toml" > /etc/berth/berth.toml
# crun as a second runtime handler (RunPodSandbox.runtime_handler = "crun").
printf '\n[runtime.handlers.crun]\nruntime_path = "crun"\n' >> /etc/berth/berth.toml
echo '{"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]}' > /etc/cni/net.d/10-lo.conflist
cp "$P/berthd.service" /etc/systemd/system/
systemctl daemon-reload
t0=$(date +%s)
if systemctl start berthd.service && systemctl is-active --quiet berthd.service; then
  note PASS berthd.service "started (Type=notify: READY=1 after $(( $(date +%s) - t0 )) s), $(systemctl show -p ControlGroup berthd.service)"
  passed=$((passed + 1))
else
  note FAIL berthd.service "did not start"
  systemctl status --no-pager berthd.service
  journalctl -u berthd.service --no-pager | tail -40
  failed=$((failed + 1))
fi

# --- the test binaries ---
run_test() {  # run_test DIR
  local d=$1 name label bin log xml secs p f s
  label=$(cat "$d/label"); name=$(basename "$d"); bin=$(cat "$d/path")
  log=$R/$name.log; xml=$R/$name.xml
  local tmp=/var/tmp/berth-tests/$name
  rm -rf "$tmp"; mkdir -p "$tmp"
  local args=(--gtest_output=xml:"$xml")
  [ -n "$gtest_filter" ] && args+=(--gtest_filter="$gtest_filter")
  echo "berth-vm: running $label"
  local t0=$(date +%s)
  (cd "$d/runfiles/berth" && env TEST_TMPDIR="$tmp" TEST_SRCDIR="$d/runfiles" RUNFILES_DIR="$d/runfiles" \
    TEST_WORKSPACE=berth BERTH_TEST_CGROUP_DRIVER="$driver" BERTH_TEST_RUNTIME_PATH="$oci_runtime" \
    BERTH_VM=1 timeout -k 30 3600 "./$bin" "${args[@]}") > "$log" 2>&1
  local rc=$?
  secs=$(( $(date +%s) - t0 ))
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  p=${p:-0} f=${f:-0} s=${s:-0}
  if ! grep -q '^\[==========\] .* ran\.' "$log"; then
    f=$((f + 1))  # crashed or timed out: no gtest closing line
    note FAIL "$label" "exit $rc without gtest's closing line, $p passed, $f failed ($secs s)"
  elif [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
    note FAIL "$label" "$p passed, $f failed, $s skipped ($secs s): $(sed -n '/, listed below:/,$p' "$log" | sed -n 's/^\[  FAILED  \] \([A-Za-z][^ ]*\).*/\1/p' | tr '\n' ' ')"
    [ "$f" -eq 0 ] && f=1
  else
    note PASS "$label" "$p passed, 0 failed, $s skipped ($secs s)"
  fi
  if [ "$s" -ne 0 ]; then
    grep -B1 -A3 '^\[  SKIPPED \] [A-Za-z]' "$log" | grep -v '^\[ *RUN\|^--' | head -20 >> "$R/skips-$name" || true
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}
# The v2 tests talk to the berthd.service instance as well (BERTH_VM_SYSTEM_SOCKET); everything
# else starts its own berthd, with the system one stopped so nothing else holds cgroups.
for d in "$P"/tests/*; do
  case $(cat "$d/label") in *cgroup_v2_test) BERTH_VM_SYSTEM_SOCKET=/run/berth/berth.sock run_test "$d" ;; esac
done
export BERTH_VM_SYSTEM_SOCKET=
systemctl stop berthd.service
for d in "$P"/tests/*; do
  case $(cat "$d/label") in *cgroup_v2_test) ;; *) run_test "$d" ;; esac
done
export -n BERTH_VM_SYSTEM_SOCKET

echo "$passed" > "$R/passed"; echo "$failed" > "$R/failed"; echo "$skipped" > "$R/skipped"
journalctl -b --no-pager > "$R/journal.log" 2>&1 || true
echo "berth-vm: done: $passed passed, $failed failed, $skipped skipped"
touch "$R/done"
sync
