#!/usr/bin/env bash
# Installs what berth needs to build, test and run on Debian 12 (as root). Idempotent.
set -euo pipefail
packages=(
  # build
  bazel-bootstrap g++ pkg-config protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libgrpc++-dev libabsl-dev librocksdb-dev libseccomp-dev libgoogle-glog-dev libgtest-dev
  libgmock-dev libcurl4-openssl-dev libarchive-dev libssl-dev nlohmann-json3-dev libboost-dev
  libtoml11-dev zlib1g-dev libsystemd-dev libyaml-cpp-dev libre2-dev
  # fuzzing and the thread-safety build: clang-14 with its sanitizer/libFuzzer runtimes
  clang-14 libclang-rt-14-dev
  # run
  runc conmon containernetworking-plugins iptables iproute2 criu
  # test: a registry on loopback, static busybox for test images, htpasswd for auth tests
  docker-registry busybox-static apache2-utils wget
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker-registry package starts a registry on :5000 as a service; berth's tests start
# their own on loopback, so the packaged one is stopped if it runs.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
