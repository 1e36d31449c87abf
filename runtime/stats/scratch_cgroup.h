// Test and benchmark helper: a real v1 cgroup directory in the cpu, cpuacct, memory and pids
// hierarchies, emptied (members SIGKILLed) and removed when it goes out of scope.
#ifndef BERTH_RUNTIME_STATS_SCRATCH_CGROUP_H_
#define BERTH_RUNTIME_STATS_SCRATCH_CGROUP_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace berth::engine::stats::testing {

class ScratchCgroup {
 public:
  // `rel` is relative to each hierarchy's root and starts with '/', e.g. "/berth-stats-test-1a2b".
  // Its parent must exist (create parents first, as ScratchCgroup objects that outlive it).
  explicit ScratchCgroup(std::string rel, std::string root = "/sys/fs/cgroup");
  ~ScratchCgroup();
  ScratchCgroup(const ScratchCgroup&) = delete;
  ScratchCgroup& operator=(const ScratchCgroup&) = delete;

  const std::string& error() const { return error_; }  // "" when every directory was made
  const std::string& rel() const { return rel_; }
  bool Write(const char* controller, const char* file, const std::string& value) const;
  bool Add(pid_t pid) const;  // into every hierarchy

 private:
  std::string rel_;
  std::string root_;
  std::string error_;
  std::vector<std::string> dirs_;  // made by us, removed in reverse order
};

// A random suffix for scratch names, so parallel runs never collide.
std::string RandomSuffix();

}  // namespace berth::engine::stats::testing

#endif  // BERTH_RUNTIME_STATS_SCRATCH_CGROUP_H_
