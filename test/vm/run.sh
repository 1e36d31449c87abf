#!/usr/bin/env bash
# Runs berth's tests inside a Debian 12 VM (qemu) on a pure cgroup v2 hierarchy with systemd as
# PID 1, berthd under deploy/berthd.service, and prints "N passed, N failed" last.
#
#   bash test/vm/run.sh [--driver systemd|cgroupfs|both] [--runtime runc|crun]
#                       [--tests "//test/integration:lifecycle_test //runtime/cgroups:stats_test ..."]
#                       [--filter GTEST_FILTER] [--no-build] [--accel auto|kvm|tcg] [--timeout MIN]
#                       [--parallel] [--image-only] [--work DIR]
#
# Needs root, qemu-system-x86, debootstrap, linux-image-amd64 (for /boot/vmlinuz-* and its
# modules) and Debian's mirrors for the first run. The root filesystem is built with debootstrap
# once and cached in /var/cache/berth-vm (rebuilt when its package list changes); the VM boots it
# with snapshot=on so every run starts from the same image. berth's binaries, the test binaries
# with their runfiles and the guest script go on a second disk; results come back on that disk
# (read with debugfs, no mount) and, as a summary, on the serial console. The VM has no network
# device: every test talks to loopback inside it.
set -euo pipefail
{ # read whole before it runs: editing this file during a run does not change the run
cd "$(dirname "$0")/../.."
repo=$PWD

drivers=both
oci_runtime=runc
tests=""
filter=""
build=1
image_only=0
work=""
parallel=0
accel=auto
timeout_min=120
while [ $# -gt 0 ]; do
  case $1 in
    --driver) drivers=$2; shift 2 ;;
    --runtime) oci_runtime=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --image-only) image_only=1; build=0; shift ;;
    --accel) accel=$2; shift 2 ;;
    --timeout) timeout_min=$2; shift 2 ;;
    --parallel) parallel=1; shift ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case $drivers in both) drivers="systemd cgroupfs" ;; systemd|cgroupfs) ;; *) echo "bad --driver" >&2; exit 2 ;; esac
case $oci_runtime in runc|crun) ;; *) echo "bad --runtime" >&2; exit 2 ;; esac

default_tests="//runtime/cgroups:mode_test //runtime/cgroups:paths_test
//runtime/cgroups:resources_test //runtime/cgroups:stats_test //runtime/cgroups:cgroup_v2_test
//runtime/stats:collector_test //test/integration:cgroup_v2_test //test/integration:daemon_test
//test/integration:lifecycle_test //test/integration:security_test
//test/integration:kubelet_test //test/integration:network_test //test/integration:streaming_test"
tests=${tests:-$default_tests}
tests=$(echo $tests)

cache=/var/cache/berth-vm
# Per-run files (payload, consoles, results); another --work lets two runs go at once.
work=${work:-$cache/run}
mkdir -p "$cache" "$work"
log() { echo "[vm $(date +%H:%M:%S)] $*" >&2; }

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
[ -n "$kernel" ] || { echo "no /boot/vmlinuz-*: apt-get install linux-image-amd64" >&2; exit 1; }
kver=${kernel#/boot/vmlinuz-}
initrd=/boot/initrd.img-$kver
[ -f "$initrd" ] && [ -d "/lib/modules/$kver" ] || { echo "no initrd or modules for $kver" >&2; exit 1; }
for t in qemu-system-x86_64 debootstrap mkfs.ext4 debugfs; do
  command -v $t >/dev/null || { echo "missing $t: apt-get install -y qemu-system-x86 debootstrap e2fsprogs" >&2; exit 1; }
done

# --- build berth and the chosen tests (the bazel lock is never held while the VM runs) ---
bazel_() { flock /tmp/berth-bazel.lock bazel "$@"; }
targets="//server:berthd //runtime/pause:berth-pause $tests"
if [ $build = 1 ]; then
  log "building $targets"
  bazel_ build --symlink_prefix=/ --jobs=2 $targets
fi
# bazel's default output base is a hash of the workspace path; asking bazel info would queue behind
# every other build on the lock.
bin=${BERTH_BAZEL_BIN:-/root/.cache/bazel/_bazel_root/$(echo -n "$repo" | md5sum | cut -d' ' -f1)/execroot/berth/bazel-out/k8-fastbuild/bin}
[ -d "$bin" ] || bin=$(bazel_ info --symlink_prefix=/ bazel-bin 2>/dev/null)

# --- the package list: what the guest needs, plus the Debian packages of every library berthd
# and the test binaries load (ldd), so the guest runs the host-built binaries unchanged ---
pkgs="systemd systemd-sysv udev dbus runc conmon crun containernetworking-plugins iproute2 kmod
e2fsprogs procps util-linux uidmap iptables criu docker-registry busybox-static apache2-utils wget
libsystemd0 libcurl4 libssl3 libarchive13 libre2-9 libseccomp2 libprotobuf32 librocksdb7.8 zlib1g
libabsl20220623 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 libc-ares2 libstdc++6 libgcc-s1 libcap2
libyaml-cpp0.7 libgflags2.2"
elves=("$bin/server/berthd" "$bin/runtime/pause/berth-pause")
for t in $tests; do p=${t#//}; elves+=("$bin/${p%%:*}/${p##*:}"); done
if [ $image_only = 0 ]; then
  for e in "${elves[@]}"; do
    [ -e "$e" ] || { echo "no $e (being relinked by another build? build it, or drop --no-build)" >&2; exit 1; }
  done
fi
# The system libraries they load (ldd lists their own _solib ones' dependencies too).
syslibs=$(ls "${elves[@]}" 2>/dev/null | xargs -r ldd 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\/(usr\/)?lib/ {print $3}' | sort -u || true)
guest_stub=$(cat <<'EOF'
#!/bin/sh
# berth-vm-entry: mounts the payload disk and runs its guest script (the logic lives there, so
# changing it does not rebuild this image).
mkdir -p /berth-vm
mount /dev/vdb /berth-vm || exit 1
exec /bin/bash /berth-vm/guest.sh
EOF
)
guest_unit=$(cat <<'EOF'
[Unit]
Description=berth VM test run
After=basic.target dbus.socket systemd-udev-settle.service
Wants=dbus.socket
# The run ends the VM whatever its outcome.
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/berth-vm-entry
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
EOF
)
image_key() { (echo "$pkgs"; echo "$kver"; echo "$guest_stub"; echo "$guest_unit"; echo v1) | sha256sum | cut -c1-16; }
key=$(image_key)
base=$cache/base-$key.img
# A library the image lacks (a new dependency of berth) adds its package to the list, and so
# makes a new image; the list above normally has them all, so the key stays put.
if [ -f "$base" ] && [ -f "$base.libs" ]; then
  missing=$(for l in $syslibs; do grep -qxF "$(basename "$l")" "$base.libs" || echo "$l"; done)
  if [ -n "$missing" ]; then
    extra=$(echo "$missing" | xargs -r readlink -f | xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u)
    log "the image lacks $(echo $missing): adding $(echo $extra)"
    pkgs=$(echo $pkgs $extra | tr ' ' '\n' | sort -u | tr '\n' ' ')
    key=$(image_key); base=$cache/base-$key.img
  fi
fi

# --- the cached root filesystem ---
if [ ! -f "$base" ]; then
  root=$cache/rootfs-$key
  rm -rf "$root"
  log "debootstrap bookworm ($(echo $pkgs | wc -w) packages) into $root"
  debootstrap --variant=minbase --include="$(echo $pkgs | tr ' ' ',')" bookworm "$root" \
    http://deb.debian.org/debian > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  mkdir -p "$root/lib/modules"
  cp -a "/lib/modules/$kver" "$root/lib/modules/"
  echo berth-vm > "$root/etc/hostname"
  printf '127.0.0.1 localhost berth-vm\n::1 localhost\n' > "$root/etc/hosts"
  : > "$root/etc/machine-id"
  echo "$guest_stub" > "$root/usr/local/sbin/berth-vm-entry"
  chmod 755 "$root/usr/local/sbin/berth-vm-entry"
  echo "$guest_unit" > "$root/etc/systemd/system/berth-vm-test.service"
  ln -sf /etc/systemd/system/berth-vm-test.service \
    "$root/etc/systemd/system/multi-user.target.wants/berth-vm-test.service"
  # No login prompt, no timers or networking waits in a VM that lives for one test run.
  for u in getty@tty1.service serial-getty@ttyS0.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer e2scrub_all.timer fstrim.timer systemd-networkd-wait-online.service \
    docker-registry.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
  rm -f "$root"/var/cache/apt/archives/*.deb
  ls "$root/usr/lib/x86_64-linux-gnu" > "$base.libs"
  truncate -s 8G "$base.tmp"
  mkfs.ext4 -q -F -L berth-root -d "$root" "$base.tmp"
  mv "$base.tmp" "$base"
  rm -rf "$root"
  log "cached $base"
fi
[ $image_only = 1 ] && { echo "image: $base"; exit 0; }

# --- the payload disk: berth, the tests with their runfiles, the guest script ---
payload=$work/payload
rm -rf "$payload"
mkdir -p "$payload/bin" "$payload/tests" "$payload/results"
cp -L "$bin/server/berthd" "$bin/runtime/pause/berth-pause" "$payload/bin/"
cp deploy/berthd.service deploy/berth.toml test/vm/guest.sh "$payload/"
for tool in crictl critest; do
  p=$(command -v $tool || true)
  [ -n "$p" ] && cp -L "$p" "$payload/bin/"
done
for t in $tests; do
  p=${t#//}; pkg=${p%%:*}; name=${p##*:}
  dest="$payload/tests/${pkg//\//_}_$name"
  mkdir -p "$dest"
  # The runfiles tree is symlinks into bazel-out: copy what they point to.
  cp -rL "$bin/$pkg/$name.runfiles" "$dest/runfiles"
  echo "$t" > "$dest/label"
  echo "$pkg/$name" > "$dest/path"
done
{
  echo "drivers=\"$drivers\""
  echo "oci_runtime=$oci_runtime"
  printf 'gtest_filter=%q\n' "$filter"
} > "$payload/run.conf"
pimg=$work/payload.img
rm -f "$pimg"
size_mb=$(( $(du -sm "$payload" | cut -f1) * 2 + 512 ))
truncate -s ${size_mb}M "$pimg"
mkfs.ext4 -q -F -L berth-payload -d "$payload" "$pimg"

# --- boot: one VM per driver (the driver is a berthd setting, and a fresh VM keeps runs apart),
# each with its own copy of the payload disk; --parallel boots them at the same time ---
boot() {  # boot ACCEL DRIVER PAYLOAD_IMG CONSOLE_LOG TIMEOUT_SECONDS
  local a=$1 drv=$2 img=$3 out=$4 secs=$5 cpu=max
  [ "$a" = kvm ] && cpu=host
  rm -f "$work/qemu-$drv.pid"
  # snapshot=on: the cached root image is never written.
  timeout -k 10 "$secs" nice -n 10 qemu-system-x86_64 -accel "$a" -cpu $cpu -m 4G -smp 2 \
    -pidfile "$work/qemu-$drv.pid" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 systemd.show_status=0 panic=-1 berth.driver=$drv" \
    -nographic -no-reboot -nic none -monitor none -serial "file:$out" \
    -drive file="$base",if=virtio,format=raw,snapshot=on \
    -drive file="$img",if=virtio,format=raw </dev/null >"$work/qemu-$drv-$a.log" 2>&1
}
run_driver() {  # run_driver DRIVER: boots, waits, copies results to $work/results-DRIVER
  local driver=$1 console=$work/console-$1.log img=$work/payload-$1.img used=tcg start qpid
  rm -f "$console"
  cp --sparse=always "$pimg" "$img"
  start=$(date +%s)
  if [ "$accel" != tcg ] && [ -w /dev/kvm ] && [ ! -f "$cache/kvm-hangs-$kver" ]; then
    # A nested KVM guest can hang in early boot: give it 90 s to reach the test unit.
    log "booting with KVM ($driver)"
    boot kvm "$driver" "$img" "$console" $((timeout_min * 60)) & qpid=$!
    for _ in $(seq 90); do
      grep -q 'berth-vm: guest started' "$console" 2>/dev/null && break
      kill -0 $qpid 2>/dev/null || break
      sleep 1
    done
    if grep -q 'berth-vm: guest started' "$console" 2>/dev/null; then
      used=kvm; wait $qpid || true
    else
      if kill -0 $qpid 2>/dev/null; then
        log "KVM did not boot in 90 s: falling back to TCG (remembered in $cache/kvm-hangs-$kver)"
      else
        log "qemu -accel kvm failed ($(tail -1 "$work/qemu-$driver-kvm.log")): falling back to TCG (remembered in $cache/kvm-hangs-$kver)"
      fi
      [ -f "$work/qemu-$driver.pid" ] && kill "$(cat "$work/qemu-$driver.pid")" 2>/dev/null || true
      wait $qpid 2>/dev/null || true
      [ "$accel" = kvm ] && { echo "KVM boot failed" >&2; return 1; }
      touch "$cache/kvm-hangs-$kver"
      rm -f "$console"; cp --sparse=always "$pimg" "$img"
    fi
  fi
  if [ $used = tcg ]; then
    log "booting with TCG ($driver, runtime $oci_runtime); console in $console"
    boot tcg "$driver" "$img" "$console" $((timeout_min * 60)) ||
      log "qemu ($driver) exited with $? (124: timed out after $timeout_min min)"
  fi
  local out=$work/results-$driver
  rm -rf "$out"; mkdir -p "$out"
  debugfs -R "rdump /results $out" "$img" >/dev/null 2>&1 || true
  echo "$used $(( $(date +%s) - start ))" > "$out/vm"
  rm -f "$img"
}
if [ $parallel = 1 ]; then
  pids=()
  for driver in $drivers; do run_driver "$driver" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || true; done
else
  for driver in $drivers; do run_driver "$driver" || true; done
fi

total_pass=0; total_fail=0
summary=()
for driver in $drivers; do
  out=$work/results-$driver
  pass=$(cat "$out/results/passed" 2>/dev/null || echo 0)
  fail=$(cat "$out/results/failed" 2>/dev/null || echo 0)
  read -r used secs < "$out/vm" || true
  if [ ! -f "$out/results/done" ]; then
    log "the $driver guest did not finish its run: see $work/console-$driver.log"
    fail=$((fail + 1))
  fi
  echo "=== driver $driver ($used, ${secs}s): results in $out/results, console $work/console-$driver.log"
  cat "$out/results/summary" 2>/dev/null || true
  summary+=("driver $driver: $pass passed, $fail failed, $(cat "$out/results/skipped" 2>/dev/null || echo 0) skipped (${secs}s)")
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail))
done
printf '%s\n' "${summary[@]}"
echo "${total_pass} passed, ${total_fail} failed"
[ $total_fail = 0 ]
exit
}
