// lo up by SIOCSIFFLAGS, from a thread that entered the pod's netns.
#include "network/loopback.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "util/fd.h"

namespace berth::network {

absl::Status BringUpLoopbackHere() {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  struct ifreq ifr {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) {
    return absl::InternalError(absl::StrCat("reading the flags of lo: ", strerror(errno)));
  }
  if (ifr.ifr_flags & IFF_UP) return absl::OkStatus();
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) {
    return absl::InternalError(absl::StrCat("bringing up lo: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status BringUpLoopback(const std::string& netns_path) {
  UniqueFd ns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("opening netns ", netns_path, ": ", strerror(errno)));
  }
  absl::Status result;
  // setns moves only the calling thread; this one ends right after.
  std::thread worker([&] {
    if (setns(ns.get(), CLONE_NEWNET) != 0) {
      result = absl::FailedPreconditionError(
          absl::StrCat("entering netns ", netns_path, ": ", strerror(errno)));
      return;
    }
    result = BringUpLoopbackHere();
  });
  worker.join();
  if (!result.ok())
    return absl::Status(result.code(), absl::StrCat(netns_path, ": ", result.message()));
  return absl::OkStatus();
}

}  // namespace berth::network
