// ScratchCgroup: mkdir per hierarchy (once per real mount: cpu and cpuacct may be one), rmdir
// after killing members, retrying while the kernel still counts exiting tasks.
#include "runtime/stats/scratch_cgroup.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace berth::engine::stats::testing {
namespace {

constexpr const char* kControllers[] = {"cpu", "cpuacct", "memory", "pids"};

void KillMembers(const std::string& dir) {
  std::ifstream in(dir + "/cgroup.procs");
  pid_t pid;
  while (in >> pid) kill(pid, SIGKILL);
}

}  // namespace

std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrCat(absl::Hex(rd(), absl::kZeroPad8));
}

ScratchCgroup::ScratchCgroup(std::string rel, std::string root)
    : rel_(std::move(rel)), root_(std::move(root)) {
  std::vector<std::string> seen;
  for (const char* c : kControllers) {
    std::string mount = absl::StrCat(root_, "/", c);
    char real[PATH_MAX];
    if (realpath(mount.c_str(), real) == nullptr) {
      error_ = absl::StrCat("hierarchy ", mount, ": ", strerror(errno));
      return;
    }
    if (std::find(seen.begin(), seen.end(), real) != seen.end()) continue;
    seen.push_back(real);
    std::string dir = absl::StrCat(real, rel_);
    if (mkdir(dir.c_str(), 0755) != 0) {
      error_ = absl::StrCat("mkdir ", dir, ": ", strerror(errno));
      return;
    }
    dirs_.push_back(dir);
  }
}

ScratchCgroup::~ScratchCgroup() {
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    for (int attempt = 0; attempt < 500; ++attempt) {
      KillMembers(*it);
      if (rmdir(it->c_str()) == 0 || errno == ENOENT) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

bool ScratchCgroup::Write(const char* controller, const char* file,
                          const std::string& value) const {
  std::ofstream out(absl::StrCat(root_, "/", controller, rel_, "/", file));
  out << value;
  out.flush();
  return out.good();
}

bool ScratchCgroup::Add(pid_t pid) const {
  for (const std::string& dir : dirs_) {
    std::ofstream out(dir + "/cgroup.procs");
    out << pid;
    out.flush();
    if (!out.good()) return false;
  }
  return true;
}

}  // namespace berth::engine::stats::testing
