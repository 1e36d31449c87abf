// How many processes of a cgroup the kernel's OOM killer has killed: the OOMKilled exit reason.
#ifndef BERTH_RUNTIME_CGROUPS_OOM_H_
#define BERTH_RUNTIME_CGROUPS_OOM_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/cgroups/mode.h"

namespace berth::cgroups {

// The oom_kill counter of memory.oom_control (v1, kernels >= 4.13; 0 on older ones) or
// memory.events (v2). Read it before runc deletes the cgroup. NotFound naming the file when the
// cgroup is gone.
absl::StatusOr<uint64_t> ReadOomKillCount(const std::string& cgroups_path, CgroupMode mode,
                                          const std::string& root = kCgroupRoot);

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_OOM_H_
