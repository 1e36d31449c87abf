// Which cgroup layout the host uses: v1 only, v1 with an empty v2 hierarchy (hybrid), or v2 only.
#ifndef BERTH_RUNTIME_CGROUPS_MODE_H_
#define BERTH_RUNTIME_CGROUPS_MODE_H_

#include <string>

#include "absl/status/statusor.h"

namespace berth::cgroups {

inline constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

enum class CgroupMode {
  kLegacy,   // tmpfs at the root, one v1 hierarchy per controller
  kHybrid,   // as kLegacy, plus a controller-less v2 hierarchy at <root>/unified (systemd's)
  kUnified,  // cgroup2 at the root
};

const char* CgroupModeName(CgroupMode mode);  // "v1", "hybrid", "v2"

// From the filesystem types at `root` and `root`/unified (statfs: CGROUP2_SUPER_MAGIC, TMPFS).
// FailedPrecondition naming `root` when it is neither.
absl::StatusOr<CgroupMode> DetectCgroupMode(const std::string& root = kCgroupRoot);

// Whether the memory controller can limit swap (v1: memory.memsw.* exist, i.e. swapaccount=1;
// v2: memory.swap.max exists in some child of the root). Without it runc refuses a swap limit.
bool SwapControllerAvailable(CgroupMode mode, const std::string& root = kCgroupRoot);

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_MODE_H_
