// ScratchNetns through the `ip` tool (as an operator would); ProcessInNetns with setns(2).
#include "runtime/stats/scratch_netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/stats/scratch_cgroup.h"

namespace berth::engine::stats::testing {
namespace {

bool Run(const std::string& cmd, std::string* error) {
  int rc = std::system((cmd + " 2>&1").c_str());
  if (rc == 0) return true;
  *error = absl::StrCat("`", cmd, "` exited with status ", rc);
  return false;
}

}  // namespace

ScratchNetns::ScratchNetns() : name_("berth-stats-" + RandomSuffix()) {
  if (!Run("ip netns add " + name_, &error_)) return;
  added_ = true;
  const std::string ip = "ip -n " + name_ + " ";
  // Both veth ends stay inside; a static neighbour lets datagrams leave eth0 without ARP.
  for (const char* step :
       {"link set lo up", "link add eth0 type veth peer name peer0",
        "addr add 10.213.7.1/24 dev eth0", "link set peer0 up", "link set eth0 up",
        "neigh add 10.213.7.2 lladdr 02:00:00:00:07:02 dev eth0"}) {
    if (!Run(ip + step, &error_)) return;
  }
}

ScratchNetns::~ScratchNetns() {
  std::string ignored;
  if (added_) Run("ip netns del " + name_, &ignored);
}

ProcessInNetns::ProcessInNetns(const std::string& netns_path, int datagrams, int payload) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    // Only async-signal-safe calls from here: the parent may be multithreaded.
    close(fds[0]);
    int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(1);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) _exit(1);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(0x0AD50702);  // 10.213.7.2
    char buf[2048] = {};
    for (int i = 0; i < datagrams; ++i) {
      if (sendto(s, buf, payload, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != payload)
        _exit(1);
    }
    (void)!write(fds[1], "r", 1);
    for (;;) pause();
  }
  close(fds[1]);
  char c;
  ssize_t n;
  while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR) {
  }
  close(fds[0]);
  ready_ = n == 1;
}

ProcessInNetns::~ProcessInNetns() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

}  // namespace berth::engine::stats::testing
